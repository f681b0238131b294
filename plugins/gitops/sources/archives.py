"""Chart archives for `!preview`: the chart layer of an OCI chart (its manifest's
``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` layer) or the ``.tgz`` an index entry
names, downloaded once and kept on disk by digest.

- bounded: a layer the manifest says is larger than ``max_bytes`` is not asked for; a body is read
  up to ``max_bytes`` and for at most ``seconds`` (each read also bounded by the registry timeout);
- the same door and credentials as versions: OCI through the host's ``OciRegistry.blob`` (its
  turn, its credentials, its token realm rules), a Helm repository through
  ``HelmIndexClient.download`` (each redirect hop with its own host's credentials only);
- checked: what is kept is what the digest names (the manifest's layer digest, the index's
  ``digest``); a body that does not match is refused, never kept;
- cached by digest in ``directory`` (a restart reads the disk, not the registry), oldest files
  removed past ``cache_bytes``. An index entry without a digest is read every time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import requests

from ..errors import PreviewUnavailable, VersionNotFound
from ..model import ChartLocation
from .helmindex import archive_url
from .oci import NotFound, container_of
from .registry import RegistryClient

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
LAYER_TYPES = ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "application/tar+gzip")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class ChartArchives:
    """Chart archives by digest, downloaded within bounds and kept on disk; safe between threads."""

    def __init__(self, registry: RegistryClient, directory, max_bytes: int = 10 * 1024 * 1024,
                 seconds: float = 30.0, cache_bytes: int = 256 * 1024 * 1024):
        self.registry = registry
        self.directory = Path(directory)
        self.max_bytes, self.seconds, self.cache_bytes = max_bytes, seconds, cache_bytes
        self.downloads = 0  # archives read from a source (not from the disk): tests and the bench
        self._lock = threading.Lock()

    def archive(self, location: ChartLocation, version: str, where: str) -> bytes:
        """The chart archive of ``version``; ``where`` names it in messages (``web 7.0.0``)."""
        if location.is_index:
            return self._from_index(location, version, where)
        return self._from_registry(location, version, where)

    # ---- OCI -------------------------------------------------------------------------------

    def _from_registry(self, location: ChartLocation, version: str, where: str) -> bytes:
        tag = self.registry.require(location, version, location.chart)
        container = container_of(location)
        oci = self.registry.oci(location)
        try:
            with oci.turn():
                manifest, _ = oci.manifest(container, tag)
                layer = _chart_layer(manifest)
                if layer is None:
                    raise PreviewUnavailable(f"{where} in {location} has no Helm chart layer: it is "
                                             "not a chart Helm pushed.")
                digest, size = str(layer.get("digest") or ""), layer.get("size")
                if isinstance(size, int) and size > self.max_bytes:
                    raise self._too_large(where, size)
                cached = self._cached(digest)
                if cached is not None:
                    return cached
                started = time.monotonic()
                with oci.blob(container, digest) as response:
                    data = self._read(response, where, started, oci.unreachable)
        except NotFound:
            raise VersionNotFound(location.chart, version, ()) from None
        return self._keep(digest, data, where)

    # ---- Helm repositories -----------------------------------------------------------------

    def _from_index(self, location: ChartLocation, version: str, where: str) -> bytes:
        tag = self.registry.require(location, version, location.chart)
        entry = self.registry.index.entries(location)[tag]
        digest = f"sha256:{entry.digest}" if _HEX.match(entry.digest or "") else ""
        cached = self._cached(digest) if digest else None
        if cached is not None:
            return cached
        url = archive_url(location, entry)
        if not url:
            raise PreviewUnavailable(f"The index of {location.repository_url} names no archive for {where}.")
        started = time.monotonic()
        index = self.registry.index
        with index.download(url) as response:
            data = self._read(response, where, started, lambda e: index.unreachable(url, e))
        return self._keep(digest, data, where) if digest else self._counted(data)

    # ---- reading and keeping ---------------------------------------------------------------

    def _read(self, response: requests.Response, where: str, started: float, unreachable) -> bytes:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes and not response.headers.get("Content-Encoding"):
            raise self._too_large(where, int(length))
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large(where, size)
                if time.monotonic() - started > self.seconds:
                    raise PreviewUnavailable(f"The archive of {where} did not arrive within "
                                             f"{self.seconds:g} s (`preview.timeout`).")
                chunks.append(chunk)
        except requests.RequestException as e:
            raise unreachable(e) from e
        return b"".join(chunks)

    def _too_large(self, where: str, size: int) -> PreviewUnavailable:
        return PreviewUnavailable(f"The archive of {where} is {_size(size)}, more than "
                                  f"{_size(self.max_bytes)} (`preview.max_mb`): no preview.")

    def _path(self, digest: str) -> Optional[Path]:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or not _HEX.match(hexdigest):
            return None
        return self.directory / "sha256" / f"{hexdigest}.tgz"

    def _cached(self, digest: str) -> Optional[bytes]:
        path = self._path(digest)
        if path is None or not path.is_file():
            return None
        data = path.read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            path.unlink(missing_ok=True)  # damaged on disk: read it again
            return None
        os.utime(path)  # recently used: kept longest
        return data

    def _keep(self, digest: str, data: bytes, where: str) -> bytes:
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise PreviewUnavailable(f"The archive of {where} does not match its digest {digest[:19]}…: "
                                     "not read.")
        self._counted(data)
        path = self._path(digest)
        if path is None or self.cache_bytes <= 0:
            return data
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
            self._trim()
        return data

    def _counted(self, data: bytes) -> bytes:
        with self._lock:
            self.downloads += 1
        return data

    def _trim(self) -> None:
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in (self.directory / "sha256").glob("*.tgz"))
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.cache_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


def _chart_layer(manifest: dict) -> Optional[dict]:
    layers = [l for l in manifest.get("layers") or () if isinstance(l, dict)]
    found = [l for l in layers if l.get("mediaType") in LAYER_TYPES]
    return found[0] if found else None


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"
