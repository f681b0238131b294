"""Git over smart HTTP for the tests: ``git http-backend`` run as a CGI program behind Python's
http.server, with basic auth, able to turn into a front that redirects elsewhere (a plain module:
import the ``git_http`` fixture from it).

``git_http(root, token="", host="127.0.0.1") -> GitHttpServer`` serves the bare repositories under
``root`` at ``server.url("<name>.git")``. With a token, every request needs basic auth with that
token as the password (any user name), as a forge does: without it, 401 and a ``WWW-Authenticate``
challenge. Setting ``server.redirect_to`` (a base URL) and ``server.redirect_status`` makes it
answer every authorised request with that status and ``Location: redirect_to + path`` instead,
as a moved repository or a hostile proxy would. 127.0.0.2 is loopback too, so a second server
there is another host.

Setting ``server.delay`` (seconds) makes every request wait that long first: a slow remote.

Every server records each request's path (``.paths``) and ``Authorization`` header (``""`` when
none; ``.authorizations``); ``received(secret)`` says whether any request carried ``secret``.
"""
from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        owner.paths.append(self.path)
        owner.authorizations.append(self.headers.get("Authorization", ""))
        if owner.delay:
            time.sleep(owner.delay)
        body = self._body() if self.command == "POST" else b""
        if not self._authorized():
            self._send(401, [("WWW-Authenticate", 'Basic realm="ferry-test"')])
        elif owner.redirect_to:
            self._send(owner.redirect_status, [("Location", owner.redirect_to.rstrip("/") + self.path)])
        else:
            self._cgi(body)

    def _authorized(self) -> bool:
        token = self.server.owner.token
        header = self.headers.get("Authorization", "")
        if not token:
            return True
        if not header.startswith("Basic "):
            return False
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[2] == token
        except ValueError:
            return False

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, status: int, headers: list, payload: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _cgi(self, body: bytes) -> None:
        """Run git http-backend the way a web server runs a CGI program (RFC 3875)."""
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(owner.root),
               "GIT_PROJECT_ROOT": str(owner.root), "GIT_HTTP_EXPORT_ALL": "1",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
               "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": self.command, "PATH_INFO": path,
               "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "REMOTE_ADDR": self.client_address[0],
               # http-backend takes a push only from an authenticated user.
               "REMOTE_USER": "ferry-test" if owner.token else ""}
        for header, variable in (("Git-Protocol", "GIT_PROTOCOL"),
                                 ("Content-Encoding", "HTTP_CONTENT_ENCODING")):
            if self.headers.get(header):
                env[variable] = self.headers[header]
        out = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True,
                             timeout=60).stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self._send(status, headers, payload)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: "GitHttpServer"


class GitHttpServer:
    def __init__(self, root: Path, token: str = "", host: str = "127.0.0.1"):
        self.root, self.token = Path(root), token
        self.redirect_to, self.redirect_status = "", 302
        self.delay = 0.0
        self.paths: list = []
        self.authorizations: list = []
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self.host, self.port = host, self._server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def received(self, secret: str) -> bool:
        """True when any request carried ``secret`` in its Authorization header."""
        for header in self.authorizations:
            decoded = ""
            if header.startswith("Basic "):
                try:
                    decoded = base64.b64decode(header[6:]).decode(errors="replace")
                except ValueError:
                    pass
            if secret in header or secret in decoded:
                return True
        return False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def git_http():
    made: list = []

    def serve(root: Path, token: str = "", host: str = "127.0.0.1") -> GitHttpServer:
        made.append(GitHttpServer(root, token, host))
        return made[-1]

    yield serve
    for server in made:
        server.close()
