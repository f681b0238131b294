"""Helm charts and small container images pushed to an OCI registry, for tests, the benchmark and
the demo.

``push_chart`` writes what ``helm push`` writes (a Helm config blob, one chart tarball layer, an
OCI manifest) through the distribution HTTP API, so the code under test reads real artifacts;
``push_image`` writes a small OCI image per tag (its config labels as asked; one platform, or an
OCI image index of several). The chart tarball and its ``Chart.yaml`` are also
what ``devtools.helmrepo`` serves from a classic Helm repository.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence
from urllib.parse import urljoin

import requests
from ruamel.yaml import YAML

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"  # Helm's ChartLayerMediaType
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


DEFAULT_DESCRIPTION = "A chart pushed by Ferry's dev tools."


_TINY_CHART = {
    "values.yaml": b"replicaCount: 1\nimage:\n  repository: ghcr.io/example/app\n",
    "templates/configmap.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        b"data:\n  replicas: {{ .Values.replicaCount | quote }}\n"),
}


@lru_cache(maxsize=16)
def _chart_dir_yaml(chart_dir: str) -> dict:
    return YAML(typ="safe").load((Path(chart_dir) / "Chart.yaml").read_text(encoding="utf-8")) or {}


def _chart_meta(name: str, version: str, app_version: str, description: Optional[str],
                chart_dir: Optional[str | os.PathLike]) -> dict:
    """The Chart.yaml of one version, as Helm also stores it (as JSON) in the config blob."""
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": app_version,
            "description": DEFAULT_DESCRIPTION, "type": "application"}
    if chart_dir is not None:
        # A real chart keeps its own metadata; only what identifies this push is overridden.
        meta = {**meta, **_chart_dir_yaml(str(chart_dir)), "name": name, "version": version,
                "appVersion": app_version}
    if description:
        meta["description"] = description
    return meta


def _chart_tarball(meta: dict, chart_dir: Optional[str | os.PathLike], files: Optional[dict] = None) -> bytes:
    """The chart folder ``<name>/`` as Helm packages it: Chart.yaml, values.yaml, templates/;
    ``files`` ({path in the chart: bytes}) instead of the tiny chart's values and template."""
    if files is not None:
        files = dict(files)
    elif chart_dir is None:
        files = dict(_TINY_CHART)
    else:
        root = Path(chart_dir)
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file() and p.name != "Chart.yaml"}
    chart_yaml = io.StringIO()
    YAML(typ="safe", pure=True).dump(meta, chart_yaml)
    files["Chart.yaml"] = chart_yaml.getvalue().encode()
    return _targz(meta["name"], files)


def chart_archive(name: str, version: str, *, app_version: str = "1.0.0", files: Optional[dict] = None,
                  metadata: Optional[dict] = None) -> bytes:
    """The ``.tgz`` of one chart version as ``helm package`` writes it (what a Helm repository
    serves and what ``push_chart`` pushes as its layer)."""
    meta = {**_chart_meta(name, version, app_version, None, None), **(metadata or {})}
    return _chart_tarball(meta, None, files)


def _targz(name: str, files: dict) -> bytes:
    """A reproducible gzip tar of ``<name>/...``: same content, same digest, so re-pushes reuse blobs."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[path]))
    return gzip.compress(raw.getvalue(), mtime=0)


def chart_name(repository: str) -> str:
    """Helm names the repository after the chart: ``charts/podinfo`` holds chart ``podinfo``."""
    return repository.rstrip("/").rsplit("/", 1)[-1]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ChartPusher:
    """Pushes Helm chart artifacts to one registry, reusing a session and blobs already there."""

    def __init__(self, host: str, username: Optional[str] = None, password: Optional[str] = None,
                 timeout: float = 10.0):
        self.base = f"http://{host}"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # a machine's HTTP_PROXY must not catch 127.0.0.1
        if username:
            self.session.auth = (username, password or "")
        self._known: set = set()  # (repository, digest) known to be stored
        self._uploading: dict = {}  # (repository, digest) -> Lock held by the uploading thread
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def push(self, repository: str, version: str, *, app_version: str = "1.0.0",
             description: Optional[str] = None, created: Optional[str] = None,
             chart_dir: Optional[str | os.PathLike] = None, layer: Optional[bytes] = None,
             files: Optional[dict] = None, metadata: Optional[dict] = None) -> str:
        """Push one chart version; returns the manifest digest.

        ``layer`` replaces the chart tarball (bulk pushes share one to spare the disk); ``files``
        ({path in the chart: bytes}: values.yaml, values.schema.json, crds/…) its content besides
        Chart.yaml; ``metadata``: more Chart.yaml fields (annotations, kubeVersion, deprecated,
        dependencies, home, sources), its annotations copied onto the manifest as Helm does.
        """
        name = chart_name(repository)
        meta = {**_chart_meta(name, version, app_version, description, chart_dir), **(metadata or {})}
        config = json.dumps(meta, sort_keys=True).encode()
        layer = layer if layer is not None else _chart_tarball(meta, chart_dir, files)
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
                # Helm's generateOCIAnnotations: the chart's own annotations after these, never over them.
                **{k: str(v) for k, v in (meta.get("annotations") or {}).items()
                   if not k.startswith("org.opencontainers.image.")},
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
        key = (repository, digest)
        with self._lock:
            if key in self._known:
                return
            blob_lock = self._uploading.setdefault(key, threading.Lock())
        # One upload per blob: distribution 2.8 loses blobs uploaded twice at once to a new
        # repository (the manifest PUT then fails with MANIFEST_BLOB_UNKNOWN).
        with blob_lock:
            with self._lock:
                if key in self._known:
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
                self._known.add(key)
                self._uploading.pop(key, None)


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{what}: registry answered {response.status_code}: {response.text[:300]}")


def push_chart(host: str, repository: str, version: str, *, app_version: str = "1.0.0",
               description: Optional[str] = None, created: Optional[str] = None,
               username: Optional[str] = None, password: Optional[str] = None,
               chart_dir: Optional[str | os.PathLike] = None, files: Optional[dict] = None,
               metadata: Optional[dict] = None, layer: Optional[bytes] = None) -> str:
    """Push one Helm chart version (any tag text, ``latest`` included); returns the manifest
    digest. ``files``, ``metadata`` and ``layer`` as ``ChartPusher.push`` takes them."""
    pusher = ChartPusher(host, username, password)
    try:
        return pusher.push(repository, version, app_version=app_version, description=description,
                           created=created, chart_dir=chart_dir, files=files, metadata=metadata,
                           layer=layer)
    finally:
        pusher.close()


def push_charts(host: str, repository: str, versions: Iterable[str], *, username: Optional[str] = None,
                password: Optional[str] = None, workers: int = 4, share_layer: bool = True,
                **kw) -> list[str]:
    """Push many versions of one chart over one session, a few at a time; returns their digests.

    Each version costs the registry a few requests and file writes (2,000 versions: about 18 s
    on filesystem storage, about 9 s with ``LocalRegistry(in_memory=True)``), so by default every
    version shares the chart tarball of the first one: tags, manifests and config blobs (what
    Ferry reads) are exact, only the ``Chart.yaml`` inside the tarball names the first version.
    ``share_layer=False`` pushes a faithful tarball per version, about 40 % slower.
    """
    versions = list(versions)
    layer = None
    if share_layer and versions:
        meta = _chart_meta(chart_name(repository), versions[0], kw.get("app_version", "1.0.0"),
                           kw.get("description"), kw.get("chart_dir"))
        layer = _chart_tarball(meta, kw.get("chart_dir"))
    pusher = ChartPusher(host, username, password)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(lambda v: pusher.push(repository, v, layer=layer, **kw), versions))
    finally:
        pusher.close()


OCI_IMAGE_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


def push_image(host: str, repository: str, tags: Iterable[str], *, username: Optional[str] = None,
               password: Optional[str] = None, labels: Optional[Mapping[str, Mapping[str, str]]] = None,
               platforms: Sequence[str] = (), config: Optional[Mapping[str, bytes]] = None,
               config_size: Optional[int] = None) -> dict:
    """Push a small container image under each of ``tags`` (an OCI image manifest: an image
    config blob and one gzip tar layer, different per tag); returns ``{tag: manifest digest}``.

    ``labels``: the config labels of a tag (default ``org.opencontainers.image.version: <tag>``;
    ``{}`` for none). ``platforms`` (``"linux/arm64"``, …): an OCI image index under each tag, one
    image per platform in that order, as ``docker buildx`` pushes a multi-platform image.
    ``config``: a tag's config blob as raw bytes (a hostile registry's), ``config_size`` the size
    its descriptor claims."""
    pusher = ChartPusher(host, username, password)
    digests = {}
    try:
        for tag in tags:
            tag_labels = dict((labels or {}).get(tag, {"org.opencontainers.image.version": tag}))
            if not platforms:
                digests[tag] = _push_platform_image(pusher, repository, tag, tag, "linux/amd64",
                                                    tag_labels, (config or {}).get(tag), config_size)
                continue
            children = []
            for platform in platforms:
                digest, size = _push_platform_image(pusher, repository, tag, None, platform, tag_labels,
                                                    (config or {}).get(tag), config_size)
                os_name, _, arch = platform.partition("/")
                children.append({"mediaType": OCI_MANIFEST_MEDIA_TYPE, "digest": digest, "size": size,
                                 "platform": {"architecture": arch, "os": os_name}})
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE,
                                "manifests": children}).encode()
            digests[tag] = _put_manifest(pusher, repository, tag, index, OCI_INDEX_MEDIA_TYPE)
    finally:
        pusher.close()
    return digests


def _push_platform_image(pusher: ChartPusher, repository: str, tag: str, reference: Optional[str],
                         platform: str, labels: dict, raw_config: Optional[bytes],
                         config_size: Optional[int]):
    """One platform's image: its layer, config and manifest, under ``reference`` (a tag), or by
    digest when None (an index's child): the digest, or (digest, manifest size) for a child."""
    os_name, _, arch = platform.partition("/")
    files = {"VERSION": tag.encode()}
    if reference is None:  # platforms of one index differ by their layer, as real ones do
        files["PLATFORM"] = platform.encode()
    layer = _targz("app", files)
    config = raw_config if raw_config is not None else json.dumps(
        {"architecture": arch, "os": os_name, "config": {"Labels": labels},
         "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
    pusher._blob(repository, config)
    pusher._blob(repository, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": OCI_IMAGE_CONFIG_MEDIA_TYPE, "digest": _digest(config),
                   "size": config_size if config_size is not None else len(config)},
        "layers": [{"mediaType": OCI_LAYER_MEDIA_TYPE, "digest": _digest(layer), "size": len(layer)}],
    }).encode()
    digest = _put_manifest(pusher, repository, reference or _digest(manifest), manifest,
                           OCI_MANIFEST_MEDIA_TYPE)
    return digest if reference is not None else (digest, len(manifest))


def _put_manifest(pusher: ChartPusher, repository: str, reference: str, body: bytes,
                  media_type: str) -> str:
    r = pusher.session.put(f"{pusher.base}/v2/{repository}/manifests/{reference}", data=body,
                           headers={"Content-Type": media_type}, timeout=pusher.timeout)
    _expect(r, 201, f"push image manifest {repository}:{reference}")
    return r.headers.get("Docker-Content-Digest") or _digest(body)
