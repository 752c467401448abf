"""A Docker token service for tests, and a CNCF Distribution that trusts it.

Distribution's `auth: token` asks every client for a bearer token (`WWW-Authenticate: Bearer
realm=...,service=...,scope=repository:NAME:pull`). The client gets one from the realm and
retries with `Authorization: Bearer <jwt>`. Distribution 2.8 accepts a JWT when (see
`registry/auth/token/token.go`):
- `iss` is the configured issuer and `aud` the configured service,
- `exp` + 60 s is in the future and `nbf` - 60 s in the past,
- the header's `x5c` chain (standard base64 DER, leaf first) verifies against `rootcertbundle`,
  and the signature (RS256 here) verifies with the leaf's key,
- `access` grants the actions the request needs.

`TokenService` is that realm: a threaded HTTP server on a free loopback port that signs with an
RSA key whose self-signed certificate is the bundle. It hands out pull tokens to anonymous
clients (unless told not to) and pull+push tokens to the users it knows (HTTP Basic), and
records every token it issues, so a test can assert that a client reuses its tokens.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.helpers.procs import LOOPBACK, ManagedProcess, free_port, require_binary
from tests.helpers.registries import DISTRIBUTION, RegistryEndpoint

ISSUER = "ocireg-test-token-issuer"
SERVICE = "ocireg-test-registry"


@dataclass(frozen=True)
class IssuedToken:
    """One token the service handed out: to whom, for which scopes, granting what."""

    account: str  # "" for anonymous
    service: str
    scopes: tuple[str, ...]  # as requested, e.g. ("repository:team/app:pull",)
    access: tuple[tuple[str, str, tuple[str, ...]], ...]  # (type, name, actions) granted
    expires_in: int
    at: float
    value: str = ""  # the JWT itself, for tests that look for it where it must not be


@dataclass(frozen=True)
class RefusedRequest:
    """A token request answered 401 (bad or missing credentials)."""

    account: str
    scopes: tuple[str, ...]


class SigningKey:
    """An RSA key and a self-signed CA certificate for it (the registry's rootcertbundle)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocireg test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def jwt(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT whose header carries the certificate as a one-element x5c chain."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(json.dumps(header))}.{_b64url(json.dumps(claims))}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class TokenService:
    """The realm of a token-auth registry, on a free loopback port (start/stop or `with`).

    `users` maps user names to passwords; they get pull and push. `anonymous_pull` lets a
    request without credentials have pull tokens; when False such a request is refused (401),
    as a private registry's token service does. `expires_in` is the lifetime it announces.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        anonymous_pull: bool = True,
        expires_in: int = 300,
        service: str = SERVICE,
        issuer: str = ISSUER,
    ) -> None:
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.expires_in = expires_in
        self.service = service
        self.issuer = issuer
        self.key = SigningKey()
        self._lock = threading.Lock()
        self._issued: list[IssuedToken] = []
        self._refused: list[RefusedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def realm(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/token"

    def write_bundle(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.key.certificate_pem())
        return path

    # -- what happened -------------------------------------------------------------------

    @property
    def issued(self) -> list[IssuedToken]:
        with self._lock:
            return list(self._issued)

    @property
    def refused(self) -> list[RefusedRequest]:
        with self._lock:
            return list(self._refused)

    def issued_for(self, scope: str) -> list[IssuedToken]:
        """The tokens issued for requests that asked for `scope`."""
        return [t for t in self.issued if scope in t.scopes]

    def reset(self) -> None:
        """Forget what was issued so far (e.g. the seeding's push tokens)."""
        with self._lock:
            self._issued.clear()
            self._refused.clear()

    # -- the server ----------------------------------------------------------------------

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                service._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-service", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        if url.path != "/token":
            _reply(request, 404, {"details": "not found"})
            return
        query = parse_qs(url.query)
        scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
        service = query.get("service", [self.service])[0]
        account, authenticated = self._account(request.headers.get("Authorization"))
        refuse = (account is not None and not authenticated) or (
            account is None and not self.anonymous_pull
        )
        if refuse:
            with self._lock:
                self._refused.append(RefusedRequest(account or "", scopes))
            request.send_response(401)
            body = b'{"details":"authentication required"}'
            request.send_header("WWW-Authenticate", 'Basic realm="ocireg test token service"')
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
            return
        allowed = {"pull", "push", "delete", "*"} if authenticated else {"pull"}
        access = []
        for scope in scopes:
            kind, name, actions = _parse_scope(scope)
            if kind is None:
                continue
            granted = tuple(a for a in actions if a in allowed)
            access.append((kind, name, granted))
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": service,
            "exp": now + self.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [{"type": k, "name": n, "actions": list(a)} for k, n, a in access],
        }
        token = self.key.jwt(claims)
        with self._lock:
            self._issued.append(
                IssuedToken(account or "", service, scopes, tuple(access), self.expires_in,
                            time.monotonic(), token)
            )  # fmt: skip
        issued_at = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat()
        _reply(
            request,
            200,
            {
                "token": token,
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": issued_at.replace("+00:00", "Z"),
            },
        )

    def _account(self, header: str | None) -> tuple[str | None, bool]:
        """(user name, credentials correct); (None, False) when the request is anonymous."""
        if not header or not header.lower().startswith("basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "?", False
        return user, self.users.get(user) == password and user in self.users


def _parse_scope(scope: str) -> tuple[str | None, str, tuple[str, ...]]:
    """`repository:team/app:pull,push` -> ("repository", "team/app", ("pull", "push")).

    The name may itself hold a colon (a registry host with a port), so split from both ends.
    """
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None, "", ()
    return kind, name, tuple(a for a in actions.split(",") if a)


def _b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reply(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


@contextmanager
def token_registry_server(workdir: Path, tokens: TokenService) -> Iterator[RegistryEndpoint]:
    """Run CNCF Distribution with `auth: token` trusting `tokens` (which must be started).

    Like `registries.docker_registry_server`, except that it is ready when `/v2/` answers 401
    (a token registry challenges even the API check).
    """
    binary = require_binary("docker-registry")
    port = free_port()
    data_dir = workdir / "distribution-data"
    bundle = tokens.write_bundle(workdir / "token-signer.pem")
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir)}, "delete": {"enabled": True}},
        "http": {"addr": f"{LOOPBACK}:{port}"},
        "auth": {
            "token": {
                "realm": tokens.realm,
                "service": tokens.service,
                "issuer": tokens.issuer,
                "rootcertbundle": str(bundle),
            }
        },
    }
    config_path = workdir / "distribution-token.yml"
    config_path.write_text(json.dumps(config, indent=2))
    process = ManagedProcess(
        DISTRIBUTION, [binary, "serve", str(config_path)], workdir / "distribution.log"
    )
    endpoint = RegistryEndpoint(DISTRIBUTION, port, data_dir, process)
    process.start()
    try:
        process.wait_http(f"{endpoint.url}/v2/", status=401)
        yield endpoint
    finally:
        process.stop()
        process.print_log()
