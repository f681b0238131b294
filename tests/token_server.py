"""A Docker token server for the tests (the auth server of Docker's token authentication spec,
https://distribution.github.io/distribution/spec/auth/token/), trusted by a real ``docker-registry``.

The registry answers 401 with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``; the client
asks the realm (``GET /token?service=…&scope=repository:<name>:pull``, with Basic credentials or
none) for a JWT; the registry checks that token's signature (RS256, the certificate in the
``x5c`` header against its ``rootcertbundle``), issuer, audience, times and ``access``.

``TokenServer`` grants ``pull`` per repository: on the ``private`` ones (glob patterns) only to
the users it knows, on the rest to anyone, and records every request's ``Authorization`` header
(``.received``: list of (path, header or None)), so a test can assert where credentials went.
"""
from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "ferry-test-token-issuer"
SERVICE = "ferry-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenKey:
    """An RSA key and its self-signed certificate: the registry's ``rootcertbundle``."""

    def __init__(self, directory: Path):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = Path(directory) / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def token(self, subject: str, access: list) -> str:
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class TokenServer:
    """The realm: ``http://<address>:<port>/token``. ``users``: {username: password}."""

    def __init__(self, key: TokenKey, address: str = "127.0.0.1", users: dict | None = None,
                 private: tuple = ("charts/private*",)):
        self.key, self.users, self.private = key, dict(users or {}), tuple(private)
        self.received: list = []  # (path, Authorization header or None), in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                authorization = self.headers.get("Authorization")
                server.received.append((self.path, authorization))
                status, body = server.answer(self.path, authorization)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer((address, 0), Handler)
        self._http.daemon_threads = True
        self.host = f"{address}:{self._http.server_address[1]}"
        self.realm = f"http://{self.host}/token"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def registry_auth(self) -> dict:
        """distribution's ``auth.token`` settings for a registry that trusts this server."""
        return {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                "rootcertbundle": str(self.key.bundle)}

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict]:
        parts = urlsplit(path)
        if parts.path != "/token":
            return 404, {}
        query = parse_qs(parts.query)
        user = "anonymous"
        if authorization:
            try:
                scheme, _, value = authorization.partition(" ")
                name, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return 401, {"errors": [{"code": "UNAUTHORIZED"}]}
            if scheme.lower() != "basic" or self.users.get(name) != password:
                return 401, {"errors": [{"code": "UNAUTHORIZED"}]}
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            if kind != "repository" or "pull" not in actions.split(","):
                continue
            if user != "anonymous" or not any(fnmatch.fnmatch(repository, p) for p in self.private):
                access.append({"type": "repository", "name": repository, "actions": ["pull"]})
        return 200, {"token": self.key.token(user, access), "expires_in": 300}

    def sent_credentials(self) -> list:
        """The Authorization headers that reached this server (None: asked anonymously)."""
        return [a for _, a in self.received if a]

    def start(self) -> "TokenServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
