"""A real OCI registry on 127.0.0.1 and a Helm chart pusher, for tests, the benchmark and the demo.

``LocalRegistry`` runs Debian's ``docker-registry`` (CNCF distribution 2.8) with a config of our
own: the packaged one points its htpasswd path at a directory and answers 400 to everything.
``push_chart`` writes what ``helm push`` writes (a Helm config blob, one chart tarball layer, an
OCI manifest) through the distribution HTTP API, so the code under test reads real artifacts.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import urljoin

import requests
from ruamel.yaml import YAML

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
START_TIMEOUT = 10.0

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar.gz"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


class RegistryStartError(RuntimeError):
    """``docker-registry`` did not answer on its port in time; the message holds its stderr."""


def free_port() -> int:
    """A port nobody listens on right now (the registry may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """A throw-away ``docker-registry`` serving plain HTTP on 127.0.0.1, optionally behind htpasswd."""

    def __init__(self, directory: str | os.PathLike, auth: bool = False, port: Optional[int] = None,
                 username: str = "ferry", password: str = "ferry-registry-secret"):
        self.directory = Path(directory)
        self.auth = auth
        self._fixed_port = port
        self.port: Optional[int] = port
        self.username = username if auth else None
        self.password = password if auth else None
        self._process: Optional[subprocess.Popen] = None
        self._stderr = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"oci://{self.host}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> "LocalRegistry":
        """Start the registry and wait until ``GET /v2/`` answers."""
        if self._process is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        # A free port can be taken between our probe and the registry's bind: try a few.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            self.port = self._fixed_port or free_port()
            try:
                self._launch()
                return self
            except RegistryStartError:
                if attempt == attempts - 1 or "address already in use" not in self._stderr_text():
                    raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "LocalRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _launch(self) -> None:
        config = self._write_config()
        # stderr goes to a file: a pipe nobody reads would block the registry once full.
        self._stderr = open(self.directory / "registry.log", "w+b")
        self._process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=self._stderr,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.05)
        code = self._process.poll()
        self.stop_quietly()
        state = f"exited with code {code}" if code is not None else f"did not answer within {START_TIMEOUT:g} s"
        raise RegistryStartError(f"docker-registry on {self.host} {state}: {self._stderr_text()[-2000:]}")

    def stop_quietly(self) -> None:
        stderr = self._stderr
        self._stderr = None
        try:
            self.stop()
        finally:
            self._stderr = stderr

    def _answers(self) -> bool:
        try:
            # 200 without auth, 401 with: both mean the HTTP API is up.
            return requests.get(f"{self.http_url}/v2/", timeout=0.5).status_code in (200, 401)
        except requests.RequestException:
            return False

    def _stderr_text(self) -> str:
        try:
            return (self.directory / "registry.log").read_text(errors="replace")
        except OSError:
            return ""

    def _write_config(self) -> Path:
        storage = self.directory / "storage"
        storage.mkdir(exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {json.dumps(str(storage))}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
        ]
        if self.auth:
            lines += ["auth:", "  htpasswd:", "    realm: ferry-test",
                      f"    path: {json.dumps(str(self._write_htpasswd()))}"]
        config = self.directory / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _write_htpasswd(self) -> Path:
        # distribution only accepts bcrypt entries.
        out = subprocess.run(["htpasswd", "-Bbn", self.username, self.password],
                             check=True, capture_output=True, text=True).stdout
        path = self.directory / "htpasswd"
        path.write_text(out.strip() + "\n")
        return path


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chart_files(name: str, version: str, app_version: str, description: str,
                 chart_dir: Optional[str | os.PathLike]) -> tuple[dict, dict]:
    """(Chart.yaml metadata, {path in chart folder: bytes}) for one chart version."""
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": app_version,
            "description": description, "type": "application"}
    if chart_dir is None:
        files = {
            "values.yaml": b"replicaCount: 1\nimage:\n  repository: ghcr.io/example/app\n",
            "templates/configmap.yaml": (
                b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
                b"data:\n  replicas: {{ .Values.replicaCount | quote }}\n"),
        }
    else:
        root = Path(chart_dir)
        original = YAML(typ="safe").load((root / "Chart.yaml").read_text(encoding="utf-8")) or {}
        meta = {**original, **{k: v for k, v in meta.items() if k != "apiVersion" or "apiVersion" not in original}}
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file() and p.name != "Chart.yaml"}
    chart_yaml = io.StringIO()
    YAML(typ="safe", pure=True).dump(meta, chart_yaml)
    files["Chart.yaml"] = chart_yaml.getvalue().encode()
    return meta, files


def _targz(name: str, files: dict) -> bytes:
    """A reproducible gzip tar of ``<name>/...``: same content, same digest, so re-pushes reuse blobs."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[path]))
    return gzip.compress(raw.getvalue(), mtime=0)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ChartPusher:
    """Pushes Helm chart artifacts to one registry, reusing a session and blobs already there."""

    def __init__(self, host: str, username: Optional[str] = None, password: Optional[str] = None,
                 timeout: float = 10.0):
        self.base = f"http://{host}"
        self.timeout = timeout
        self.session = requests.Session()
        if username:
            self.session.auth = (username, password or "")
        self._known: set = set()  # (repository, digest) known to be stored
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def push(self, repository: str, version: str, *, app_version: str = "1.0.0",
             description: str = "A chart pushed by Ferry's dev tools.", created: Optional[str] = None,
             chart_dir: Optional[str | os.PathLike] = None) -> str:
        """Push one chart version; returns the manifest digest."""
        name = repository.rstrip("/").rsplit("/", 1)[-1]
        meta, files = _chart_files(name, version, app_version, description, chart_dir)
        config = json.dumps(meta, sort_keys=True).encode()
        layer = _targz(name, files)
        self._blob(repository, config)
        self._blob(repository, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": HELM_CONFIG_MEDIA_TYPE, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": HELM_CHART_MEDIA_TYPE, "digest": _digest(layer), "size": len(layer)}],
            "annotations": {
                "org.opencontainers.image.created": created or now_rfc3339(),
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.description": meta.get("description", ""),
            },
        }
        body = json.dumps(manifest).encode()
        tag = version.replace("+", "_")  # Helm's rule: `+` is not allowed in an OCI tag
        r = self.session.put(f"{self.base}/v2/{repository}/manifests/{tag}", data=body,
                             headers={"Content-Type": OCI_MANIFEST_MEDIA_TYPE}, timeout=self.timeout)
        _expect(r, 201, f"push manifest {repository}:{tag}")
        return r.headers.get("Docker-Content-Digest") or _digest(body)

    def _blob(self, repository: str, data: bytes) -> None:
        digest = _digest(data)
        with self._lock:
            if (repository, digest) in self._known:
                return
        url = f"{self.base}/v2/{repository}/blobs/{digest}"
        if self.session.head(url, timeout=self.timeout).status_code != 200:
            r = self.session.post(f"{self.base}/v2/{repository}/blobs/uploads/", timeout=self.timeout)
            _expect(r, 202, f"start blob upload to {repository}")
            location = urljoin(self.base, r.headers["Location"])
            joiner = "&" if "?" in location else "?"
            r = self.session.put(f"{location}{joiner}digest={digest}", data=data, timeout=self.timeout,
                                 headers={"Content-Type": "application/octet-stream"})
            _expect(r, 201, f"upload blob {digest} to {repository}")
        with self._lock:
            self._known.add((repository, digest))


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{what}: registry answered {response.status_code}: {response.text[:300]}")


def push_chart(host: str, repository: str, version: str, *, app_version: str = "1.0.0",
               description: str = "A chart pushed by Ferry's dev tools.", created: Optional[str] = None,
               username: Optional[str] = None, password: Optional[str] = None,
               chart_dir: Optional[str | os.PathLike] = None) -> str:
    """Push one Helm chart version (any tag text, ``latest`` included); returns the manifest digest."""
    pusher = ChartPusher(host, username, password)
    try:
        return pusher.push(repository, version, app_version=app_version, description=description,
                           created=created, chart_dir=chart_dir)
    finally:
        pusher.close()


def push_charts(host: str, repository: str, versions: Iterable[str], *, username: Optional[str] = None,
                password: Optional[str] = None, workers: int = 8, **kw) -> list[str]:
    """Push many versions of one chart over one session, a few at a time; returns their digests."""
    pusher = ChartPusher(host, username, password)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(lambda v: pusher.push(repository, v, **kw), list(versions)))
    finally:
        pusher.close()
