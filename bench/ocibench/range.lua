-- wrk script: GET random 1 MiB (RANGE_SIZE) ranges of one blob (BLOB_PATH, BLOB_SIZE bytes),
-- at any byte offset, one `Range: bytes=a-b` per request.
local size = tonumber(os.getenv("BLOB_SIZE"))
local chunk = tonumber(os.getenv("RANGE_SIZE") or "1048576")
local path = os.getenv("BLOB_PATH")

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local start = math.random(0, size - chunk)
  return wrk.format("GET", path, { ["Range"] = string.format("bytes=%d-%d", start, start + chunk - 1) })
end
