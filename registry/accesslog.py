"""One line per request, written straight to stderr.

The logging module's record objects, handler locks and formatting cost about a fifth of a small
request (a manifest GET, a blob HEAD); a line formatted here and written with one syscall costs
a tenth of that. Lines are whole and unbuffered, so a test or a tail -f sees each at once.
"""

from __future__ import annotations

import os
import time

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

STDERR = 2


class AccessLogger(AbstractAccessLogger):
    _second = -1
    _stamp = ""

    def _timestamp(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        return self._stamp

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        line = (f'{self._timestamp()} access {request.remote} "{request.method} {request.raw_path} '
                f'HTTP/{version.major}.{version.minor}" {response.status} {response.body_length} {time:.6f}s\n')
        try:
            os.write(STDERR, line.encode())
        except OSError:
            pass  # no stderr (a closed pipe): the request itself went fine
