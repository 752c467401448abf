"""The upstream HTTP client: bearer and basic auth, a token cache per scope, error mapping.

Every upstream failure leaves here as a RegistryError that names the upstream by its configured
name only, so a client of ocireg sees `UNAVAILABLE: upstream docker.io unreachable` rather than
a stack trace or an internal address. Credentials written into the URL (`https://user:pw@host`)
are taken out of it before any request, so no exception text, log line or answer can carry
them; what is logged passes through `redact` as well, which also hides the tokens.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from registry.config import UpstreamConfig
from registry.errors import RegistryError

from .inflight import InFlight

log = logging.getLogger("ocireg.mirror")

MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_USERINFO = re.compile(r"//[^/@\s]+@")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
TOKEN_MARGIN = 10.0
MAX_TOKEN_ANSWER_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0
REDACTED = "***"
LOGGED_TEXT = 500  # an exception may quote what the upstream sent: a line, not megabytes


@dataclass
class Token:
    value: str
    expires: float


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def _lifetime(expires_in: object) -> float:
    """A token's lifetime as the service states it; anything that is no positive finite number
    of seconds (a string, NaN, infinity) gets the short default rather than failing the pull."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        return DEFAULT_TOKEN_LIFETIME
    return float(expires_in) if math.isfinite(expires_in) and expires_in > 0 else DEFAULT_TOKEN_LIFETIME


class UpstreamClient:
    """Requests to one upstream registry, authenticated as its challenges ask."""

    def __init__(self, config: UpstreamConfig, session: aiohttp.ClientSession) -> None:
        url = URL(config.url)
        self.config = config
        self.name = config.name
        self.base = str(url.with_user(None)).rstrip("/")
        self.url_user = url.user or ""
        self.url_password = url.password or ""
        self.session = session
        self.tokens: dict[str, Token] = {}
        self.token_fetches: InFlight[Token] = InFlight()  # concurrent 401s share one fetch
        self.basic = False

    def _password(self) -> str:
        password = self.config.password or self.url_password
        if self.config.password_env:
            password = os.environ.get(self.config.password_env, password)
        return password

    def _credentials(self) -> aiohttp.BasicAuth | None:
        """The configured username and password, else those of the URL's userinfo."""
        username = self.config.username or self.url_user
        if not username:
            return None
        return aiohttp.BasicAuth(username, self._password())

    def redact(self, text: str) -> str:
        """`text` (an exception's, for the log) with every secret of this upstream blanked out."""
        secrets = [self._password(), self.url_user, *(token.value for token in self.tokens.values())]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return _USERINFO.sub(f"//{REDACTED}@", text)

    def failed(self, what: str, err: BaseException) -> RegistryError:
        """An exception while talking to the upstream: its text goes to the log, redacted,
        since it may name internal addresses; the client learns only what kind it was."""
        text = self.redact(str(err))
        log.warning("upstream %s %s: %s: %s", self.name, what, type(err).__name__, text[:LOGGED_TEXT])
        return self.unavailable(f"{what} ({type(err).__name__})")

    def _auth_headers(self, scope: str) -> dict[str, str]:
        token = self.tokens.get(scope)
        if token is not None and token.expires > time.monotonic():
            return {"Authorization": f"Bearer {token.value}"}
        credentials = self._credentials()
        if self.basic and credentials is not None:
            return {"Authorization": credentials.encode()}
        return {}

    async def request(self, method: str, path: str, repository: str, *,
                      headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """A request whose 401 is answered once by fetching a token; the caller releases it."""
        scope = f"repository:{repository}:pull"
        for attempt in (1, 2):
            used = self.tokens.get(scope)
            sent = {**(headers or {}), **self._auth_headers(scope)}
            response = await self._send(method, path, sent)
            if response.status != 401 or attempt == 2:
                return response
            if used is not None and self.tokens.get(scope) is used:
                del self.tokens[scope]  # refused before it expired (revoked, or a clock skew)
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            await self._authenticate(challenge, scope)
        raise AssertionError("unreachable")

    async def _send(self, method: str, path: str, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        try:
            return await self.session.request(method, f"{self.base}{path}", headers=headers)
        except TimeoutError:
            raise self.unavailable("timed out") from None
        except aiohttp.ClientError as err:
            raise self.failed("unreachable", err) from None

    async def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = _challenge(challenge)
        if scheme == "basic":
            if self._credentials() is None:
                raise RegistryError("UNAUTHORIZED", f"upstream {self.name} wants credentials; none are configured")
            self.basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError("UNAUTHORIZED", f"upstream {self.name} sent an unusable challenge "
                                f"(scheme {scheme[:20]!r})", {"upstream": self.name})
        token = self.tokens.get(scope)
        if token is None or token.expires <= time.monotonic():
            wanted = params.get("scope", scope)
            self.tokens[scope] = await self.token_fetches.get(wanted, lambda: self._fetch_token(params, wanted))

    async def _fetch_token(self, params: dict[str, str], scope: str) -> Token:
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        try:
            async with self.session.get(params["realm"], params=query, auth=self._credentials()) as response:
                if response.status != 200:
                    raise RegistryError("UNAUTHORIZED", f"upstream {self.name} token service answered "
                                        f"{response.status}", {"upstream": self.name})
                raw = await self.read_limited(response, MAX_TOKEN_ANSWER_BYTES, "token answer")
            body: dict[str, Any] = json.loads(raw)
        except (aiohttp.ClientError, ValueError) as err:
            raise self.failed("token service unreachable", err) from None
        if not isinstance(body, dict):
            raise RegistryError("UNAUTHORIZED", f"upstream {self.name} token service sent no token")
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str):
            raise RegistryError("UNAUTHORIZED", f"upstream {self.name} token service sent no token")
        return Token(value, time.monotonic() + max(_lifetime(body.get("expires_in")) - TOKEN_MARGIN, 1.0))

    async def read_limited(self, response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        """A small answer (manifest, tag list, token) read whole, but refused on a declared
        length over `limit` and abandoned once past it: an upstream that sends hundreds of MB
        in their place is never buffered, and its connection is closed, not drained."""
        declared = response.content_length
        if declared is not None and declared > limit:
            response.close()
            raise self.too_large(what, limit)
        data = bytearray()
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            data += chunk
            if len(data) > limit:
                response.close()
                raise self.too_large(what, limit)
        return bytes(data)

    def too_large(self, what: str, limit: int) -> RegistryError:
        return RegistryError("UNAVAILABLE", f"upstream {self.name} sent a {what} larger than {limit} bytes; "
                             "nothing of it was kept", {"upstream": self.name, "limit": limit})

    def unavailable(self, why: str) -> RegistryError:
        return RegistryError("UNAVAILABLE", f"upstream {self.name} {why}", {"upstream": self.name})

    def failure(self, response: aiohttp.ClientResponse, unknown: str) -> RegistryError:
        """The OCI error for an upstream answer that is not a success."""
        status = response.status
        if status == 404:
            return RegistryError(unknown, f"not found upstream at {self.name}", {"upstream": self.name})
        if status == 429:
            retry = response.headers.get("Retry-After")
            return RegistryError("TOOMANYREQUESTS", f"upstream {self.name} is rate-limiting pulls",
                                 {"upstream": self.name}, headers={"Retry-After": retry} if retry else None)
        if status in (401, 403):
            return RegistryError("DENIED", f"upstream {self.name} refused access ({status})", {"upstream": self.name})
        return self.unavailable(f"answered {status}")
