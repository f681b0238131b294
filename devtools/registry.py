"""A real OCI registry on 127.0.0.1, for tests, the benchmark and the demo.

``LocalRegistry`` runs Debian's ``docker-registry`` (CNCF distribution 2.8) with a config of our
own: the packaged one points its htpasswd path at a directory and answers 400 to everything. What
goes into it is pushed by ``devtools.artifacts``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import requests

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
START_TIMEOUT = 10.0
_NO_PROXY = {"http": None, "https": None}


class RegistryStartError(RuntimeError):
    """``docker-registry`` could not be run or did not answer in time; the message says why
    (with the registry's own log when it ran)."""


def free_port(address: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the registry may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class LocalRegistry:
    """A throw-away ``docker-registry`` serving plain HTTP on 127.0.0.1 (or another loopback
    ``address``), optionally behind htpasswd (``auth``) or Docker token auth (``token``: a mapping
    of distribution's ``auth.token`` keys: realm, service, issuer, rootcertbundle)."""

    def __init__(self, directory: str | os.PathLike, auth: bool = False, port: Optional[int] = None,
                 username: str = "ferry", password: str = "ferry-registry-secret",
                 in_memory: bool = False, address: str = "127.0.0.1", token: Optional[dict] = None,
                 access_log: bool = False):
        self.directory = Path(directory)
        self.auth = auth
        self.address = address
        self.token = token
        self.access_log = access_log  # every request in registry.log (``requests``): tests count them
        # distribution's in-memory driver: no disk I/O (several times faster to fill), gone on stop.
        self.in_memory = in_memory
        self._fixed_port = port
        self.port: Optional[int] = port
        self.username = username if auth else None
        self.password = password if auth else None
        self._process: Optional[subprocess.Popen] = None
        self._stderr = None

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

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
            self.port = self._fixed_port or free_port(self.address)
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
        # distribution lets REGISTRY_* variables override any config key: keep ours exact.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        try:
            self._process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], env=env,
                                             stdin=subprocess.DEVNULL, stdout=self._stderr,
                                             stderr=subprocess.STDOUT)
        except OSError as e:
            self._stderr.close()
            self._stderr = None
            raise RegistryStartError(f"cannot run {REGISTRY_BINARY}: {e}") from e
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.05)
        code = self._process.poll()
        self.stop()
        state = f"exited with code {code}" if code is not None else f"did not answer within {START_TIMEOUT:g} s"
        raise RegistryStartError(f"docker-registry on {self.host} {state}: {self._stderr_text()[-2000:]}")

    def _answers(self) -> bool:
        try:
            # 200 without auth, 401 with: both mean the HTTP API is up. No proxy for 127.0.0.1.
            response = requests.get(f"{self.http_url}/v2/", timeout=0.5, proxies=_NO_PROXY)
            return response.status_code in (200, 401)
        except requests.RequestException:
            return False

    def _stderr_text(self) -> str:
        try:
            return (self.directory / "registry.log").read_text(errors="replace")
        except OSError:
            return ""

    def requests(self, method: str = "GET", path_part: str = "") -> int:
        """How many requests the access log holds (``access_log=True``) with ``method`` and a path
        containing ``path_part``: ``requests("GET", "/blobs/")`` counts blob downloads."""
        return sum(1 for line in self._stderr_text().splitlines()
                   if f'"{method} /v2/' in line and path_part in line.split('"')[1])

    def _write_config(self) -> Path:
        storage = self.directory / "storage"
        storage.mkdir(exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            f"    disabled: {'false' if self.access_log else 'true'}",
            "storage:",
            *(["  inmemory: {}"] if self.in_memory else
              ["  filesystem:", f"    rootdirectory: {json.dumps(str(storage))}"]),
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.address}:{self.port}",
        ]
        if self.auth:
            lines += ["auth:", "  htpasswd:", "    realm: ferry-test",
                      f"    path: {json.dumps(str(self._write_htpasswd()))}"]
        elif self.token:
            lines += ["auth:", "  token:"] + [f"    {k}: {json.dumps(str(v))}" for k, v in self.token.items()]
        config = self.directory / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _write_htpasswd(self) -> Path:
        # distribution only accepts bcrypt entries.
        try:
            out = subprocess.run(["htpasswd", "-Bbn", self.username, self.password],
                                 check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise RegistryStartError(f"cannot write the htpasswd file with htpasswd: {e}") from e
        path = self.directory / "htpasswd"
        path.write_text(out.strip() + "\n")
        return path
