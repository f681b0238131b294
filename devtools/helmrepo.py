"""A classic Helm chart repository for the tests and the benchmark: chart archives and the
``index.yaml`` listing them, served the way a static host serves them (GitHub Pages, S3, nginx).

The index has Helm's shape (``apiVersion: v1``, ``entries: {chart: [{name, version, appVersion,
created, digest, urls, …}]}``, newest first) and the archives are real charts (``<chart>/Chart.yaml``,
values, a template; gzip tar), their ``digest`` the archive's SHA-256, as ``helm repo index``
writes them.

``HelmRepoServer`` serves a folder of files from memory with ``ETag`` and ``Last-Modified``,
answers conditional requests with ``304``, may ask for Basic credentials, may redirect a path
elsewhere, and records every request (path, Authorization, conditional headers) so a test can
assert what went where.
"""
from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Optional

import yaml

from devtools.artifacts import _chart_meta, _chart_tarball

CREATED = "2024-05-01T12:00:00.123456789Z"  # Helm writes nanoseconds


def chart_archive(name: str, version: str, app_version: str = "", description: str = "") -> bytes:
    meta = _chart_meta(name, version, app_version or f"app-{version}", description or f"{name} {version}", None)
    return _chart_tarball(meta, None)


def index_entry(name: str, version: str, archive: Optional[bytes] = None, url: str = "",
                created: str = CREATED, app_version: str = "", metadata: Optional[dict] = None) -> dict:
    """One entry of ``entries.<name>``; ``url`` defaults to the archive next to the index;
    ``metadata``: more of the chart's Chart.yaml (annotations, …), as ``helm repo index`` copies it."""
    digest = hashlib.sha256(archive if archive is not None else f"{name}-{version}".encode()).hexdigest()
    return {"apiVersion": "v2", "name": name, "version": version,
            "appVersion": app_version or f"app-{version}", "description": f"{name} {version}",
            "type": "application", "created": created, "digest": digest,
            "urls": [url or f"{name}-{version}.tgz"], **(metadata or {})}


def index_text(entries: Iterable[dict], as_json: bool = False) -> bytes:
    """The ``index.yaml`` of ``entries`` (YAML as Helm writes it, or JSON as ``--json`` does)."""
    by_chart: dict = {}
    for entry in entries:
        by_chart.setdefault(entry["name"], []).append(entry)
    document = {"apiVersion": "v1", "entries": by_chart, "generated": CREATED}
    if as_json:
        return json.dumps(document).encode()
    return yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     default_flow_style=False, sort_keys=True).encode()


def repository_files(charts: dict, urls: Optional[dict] = None) -> dict:
    """{path: bytes} of a repository holding ``charts`` ({name: [version, …]}): one archive per
    version and the index. ``urls``: {(name, version): url} to list instead of the relative one."""
    files, entries = {}, []
    for name, versions in charts.items():
        for version in versions:
            archive = chart_archive(name, version)
            files[f"{name}-{version}.tgz"] = archive
            entries.append(index_entry(name, version, archive, (urls or {}).get((name, version), "")))
    files["index.yaml"] = index_text(entries)
    return files


class HelmRepoServer:
    """Serves ``files`` ({path under the root: bytes}) at ``http://<address>:<port>/<prefix>/``.

    ``users``: {username: password} for Basic auth on every path (none: open). ``redirects``:
    {path: absolute URL} answered ``302``. ``chunk_delay``: seconds between 64 KiB chunks of a body
    (a slow host). ``etag``: False to send Last-Modified only."""

    def __init__(self, files: dict, address: str = "127.0.0.1", prefix: str = "charts",
                 users: Optional[dict] = None, redirects: Optional[dict] = None,
                 chunk_delay: float = 0.0, etag: bool = True, tls: Optional[tuple] = None):
        self.etag = etag  # False: Last-Modified only, as some static hosts answer
        self.prefix = prefix.strip("/")
        self.users = dict(users or {})
        self.redirects = dict(redirects or {})
        self.chunk_delay = chunk_delay
        self.received: list = []  # (path, Authorization, If-None-Match, If-Modified-Since)
        self.statuses: list = []  # (path, status)
        self._files: dict = {}
        self._lock = threading.Lock()
        for path, data in files.items():
            self.publish(path, data)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server._answer(self)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer((address, 0), Handler)
        self._http.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (certificate file, key file): HTTPS, as a real chart host serves
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
            scheme = "https"
        self.host = f"{address}:{self._http.server_address[1]}"
        self.url = f"{scheme}://{self.host}/{self.prefix}" if self.prefix else f"{scheme}://{self.host}"

    def publish(self, path: str, data: bytes, when: Optional[float] = None) -> None:
        """Put (or replace) a file: a new ETag, and Last-Modified ``when`` (default now)."""
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        with self._lock:
            self._files[path.strip("/")] = (data, etag, int(when if when is not None else time.time()))

    def count(self, path: str, status: int) -> int:
        return sum(1 for p, s in self.statuses if p.endswith("/" + path) and s == status)

    def credentials_received(self) -> list:
        return [auth for _, auth, _, _ in self.received if auth]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        auth = handler.headers.get("Authorization")
        self.received.append((path, auth, handler.headers.get("If-None-Match"),
                              handler.headers.get("If-Modified-Since")))
        if self.users and not self._authorized(auth):
            return self._send(handler, path, 401, b"", {"WWW-Authenticate": 'Basic realm="charts"'})
        relative = path.strip("/")
        if self.prefix:
            if not relative.startswith(self.prefix + "/"):
                return self._send(handler, path, 404, b"")
            relative = relative[len(self.prefix) + 1:]
        if relative in self.redirects:
            return self._send(handler, path, 302, b"", {"Location": self.redirects[relative]})
        with self._lock:
            found = self._files.get(relative)
        if found is None:
            return self._send(handler, path, 404, b"")
        data, etag, modified = found
        headers = {"Last-Modified": formatdate(modified, usegmt=True)}
        if self.etag:
            headers["ETag"] = etag
        if self._unchanged(handler, etag if self.etag else None, modified):
            return self._send(handler, path, 304, b"", headers)
        kind = "application/gzip" if relative.endswith(".tgz") else "application/x-yaml"
        self._send(handler, path, 200, data, {**headers, "Content-Type": kind})

    def _authorized(self, header: Optional[str]) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            name, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return self.users.get(name) == password

    @staticmethod
    def _unchanged(handler, etag: Optional[str], modified: int) -> bool:
        if_none_match = handler.headers.get("If-None-Match")
        if if_none_match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            return etag is not None and etag in [t.strip() for t in if_none_match.split(",")]
        since = handler.headers.get("If-Modified-Since")
        if since:
            try:
                return modified <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _send(self, handler, path: str, status: int, body: bytes, headers: Optional[dict] = None) -> None:
        self.statuses.append((path, status))
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not self.chunk_delay:
            handler.wfile.write(body)
            return
        try:
            for start in range(0, len(body), 65536):
                handler.wfile.write(body[start:start + 65536])
                handler.wfile.flush()
                time.sleep(self.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up on a slow body: what is tested

    def start(self) -> "HelmRepoServer":
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> "HelmRepoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
