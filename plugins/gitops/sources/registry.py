"""Chart versions wherever a Flux source keeps them, behind one client: Helm OCI registries
(``oci.OciRegistry``: tags, manifests, config blobs) and classic Helm repositories
(``helmindex.HelmIndexClient``: their ``index.yaml``). Callers ask ``versions``, ``require`` and
``chart_info`` of a ``ChartLocation`` and never branch on the kind of source.

Credentials come from the settings' ``registry_credentials``, each bound to its own host, for
both kinds; every request is bounded in time; answers are cached briefly.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Optional

from ..errors import ImageTagNotFound, RegistryUnavailable, VersionNotFound
from .helmindex import DEFAULT_MAX_BYTES, HelmIndexClient, archive_url
from .image_labels import ImageLabels, read_image_labels
from ..model import ChartInfo, ChartLocation, ChartVersions
from .oci import MANIFEST_ACCEPT, NotFound, OciRegistry, container_of
from .transport import BUSY_WAIT
from ..settings import RegistryCredentials
from ..versions import nearest_versions, registry_tag, same_version, sort_tags

log = logging.getLogger(__name__)

CREATED_ANNOTATION = "org.opencontainers.image.created"


def chart_name(location: ChartLocation) -> str:
    return location.chart


class RegistryClient:
    """Chart versions from Helm OCI registries and Helm repositories' indexes, cached briefly,
    safe to share between threads."""

    def __init__(self, credentials: Iterable[RegistryCredentials] = (), timeout: float = 5.0,
                 cache_seconds: float = 30.0, index_seconds: float = 30.0,
                 index_max_bytes: int = DEFAULT_MAX_BYTES, index_cache_seconds: float = 300.0,
                 busy_seconds: float = BUSY_WAIT, verify=True):
        """``verify``: True, or the CA bundle (a path) every HTTPS source is checked against."""
        # Each host's own credentials; a host not named here is asked without any.
        self._credentials = {c.host: c for c in credentials}
        self.timeout = timeout
        self.busy_seconds = busy_seconds  # how long a command waits for its turn at a busy host
        self.cache_seconds = cache_seconds
        self.index = HelmIndexClient(self._credentials, timeout=timeout, seconds=index_seconds,
                                     max_bytes=index_max_bytes, cache_seconds=index_cache_seconds,
                                     busy_seconds=busy_seconds)
        self.verify = self.index.verify = verify
        self._lock = threading.Lock()
        self._tags: dict = {}  # ChartLocation -> (expires, ChartVersions)
        self._infos: dict = {}  # (ChartLocation, tag) -> (expires, ChartInfo)
        self._registries: dict = {}  # (host, insecure) -> OciRegistry
        self._sorted: dict = {}  # index location -> (its entries as parsed, ChartVersions)
        self._observe = None

    @property
    def observe(self):
        """``metrics.Metrics`` (set by the core), or None: every request counted and timed."""
        return self._observe

    @observe.setter
    def observe(self, metrics) -> None:
        with self._lock:
            self._observe = self.index.observe = metrics
            for registry in self._registries.values():
                registry.observe = metrics

    def __repr__(self) -> str:
        return f"RegistryClient(timeout={self.timeout}, cache_seconds={self.cache_seconds})"

    def versions(self, location: ChartLocation) -> ChartVersions:
        """Every tag of the chart, sorted; a repository that does not exist has none."""
        if location.is_index:
            return self._index_versions(location)
        cached = self._cached(self._tags, location)
        if cached is not None:
            return cached
        with self._registry(location).turn() as registry:
            # Another thread may have fetched it while this one waited.
            cached = self._cached(self._tags, location)
            if cached is not None:
                return cached
            started = time.monotonic()
            try:
                tags = registry.get_tags(container_of(location))
            except NotFound:
                tags = []
            except ValueError:  # the JSON of a page did not parse
                raise RegistryUnavailable(
                    f"Registry {location.host} answered with a tag list Ferry cannot read.") from None
            result = sort_tags(t for t in tags if isinstance(t, str))
            log.debug("listed %d tags of %s in %.3f s", len(result.all_tags), location,
                      time.monotonic() - started)
            self._store(self._tags, location, result)
        return result

    def _index_versions(self, location: ChartLocation) -> ChartVersions:
        """Sorted once per parse of the index: a revalidated (304) index keeps its parse, and so
        its sorted versions."""
        entries = self.index.entries(location)
        with self._lock:
            parsed, result = self._sorted.get(location, (None, None))
        if parsed is not entries:
            result = sort_tags(entries)
            with self._lock:
                self._sorted[location] = (entries, result)
        return result

    def has_version(self, location: ChartLocation, version: str) -> bool:
        return self._match(location, version) is not None

    def require(self, location: ChartLocation, version: str, chart: str) -> str:
        """The tag holding ``version``, or ``VersionNotFound`` naming the nearest ones.

        The tag is ``registry_tag(version)``; failing that, a tag naming the same semantic
        version with or without a ``v`` prefix (people type ``1.14.0`` for ``v1.14.0``).
        """
        tag = self._match(location, version)
        if tag is None:
            raise VersionNotFound(chart, version, nearest_versions(version, self.versions(location)),
                                  _where(location))
        return tag

    def require_image(self, location: ChartLocation, tag: str) -> str:
        """``tag`` when the image repository has a manifest under it (exactly that tag: image tags
        are not versions, ``v1.2`` and ``1.2`` are two images), else ``ImageTagNotFound`` naming the
        nearest tags. A HEAD of the manifest (OCI index or manifest, Docker manifest list or v2
        manifest): a repository of thousands of tags is not listed for one check. A tag found is
        remembered as briefly as tag lists are (``cache_seconds``); a missing one is asked again."""
        if self._cached(self._infos, (location, "image", tag)) is not None:
            return tag
        container = container_of(location)
        with self._registry(location).turn() as registry:
            response = registry.do_request(f"{registry.prefix}://{container.manifest_url(tag)}", "HEAD",
                                           headers={"Accept": MANIFEST_ACCEPT})
            if response.status_code == 200:
                self._store(self._infos, (location, "image", tag), tag)
                return tag
            if response.status_code != 404:
                raise registry.refused(response.status_code)
        self.invalidate(location)
        raise ImageTagNotFound(location.ref, tag, nearest_versions(tag, self.versions(location)))

    def chart_info(self, location: ChartLocation, version: str) -> ChartInfo:
        """appVersion and description (the Helm config blob), creation time and digest (the manifest)."""
        if location.is_index:
            return self._index_info(location, version)
        tag = self._match(location, version) or registry_tag(version)
        key = (location, tag)
        cached = self._cached(self._infos, key)
        if cached is not None:
            return cached
        container = container_of(location)
        try:
            with self._registry(location).turn() as registry:
                manifest, digest = registry.manifest(container, tag)
                config_digest = (manifest.get("config") or {}).get("digest")
                config = registry.blob_json(container, config_digest) if config_digest else {}
        except NotFound:
            self.invalidate(location)  # the cached tag list said otherwise: it is stale
            raise VersionNotFound(chart_name(location), version,
                                  nearest_versions(version, self.versions(location))) from None
        annotations = manifest.get("annotations") or {}
        info = ChartInfo(
            version=version if registry_tag(version) == tag else tag,
            app_version=_text(config.get("appVersion")),
            description=_text(config.get("description")),
            created=_text(annotations.get(CREATED_ANNOTATION)),
            digest=digest,
        )
        self._store(self._infos, key, info)
        return info

    def image_labels(self, location: ChartLocation, tag: str) -> ImageLabels:
        """The config labels of the image under ``tag`` (``image_labels.read_image_labels``),
        cached as briefly as tag lists are; a missing tag is ``ImageTagNotFound``."""
        key = (location, "labels", tag)
        cached = self._cached(self._infos, key)
        if cached is not None:
            return cached
        try:
            with self._registry(location).turn() as registry:
                labels = read_image_labels(registry, location, tag)
        except NotFound:
            self.invalidate(location)
            raise ImageTagNotFound(location.ref, tag, nearest_versions(tag, self.versions(location))) from None
        self._store(self._infos, key, labels)
        return labels

    def _index_info(self, location: ChartLocation, version: str) -> ChartInfo:
        entries = self.index.entries(location)
        found = self._match(location, version)
        if found is None:
            raise VersionNotFound(location.chart, version,
                                  nearest_versions(version, sort_tags(entries)), _where(location))
        entry = entries[found]
        return ChartInfo(version=entry.version, app_version=entry.app_version,
                         description=entry.description, created=entry.created, digest=entry.digest,
                         url=archive_url(location, entry))

    def oci(self, location: ChartLocation) -> OciRegistry:
        """The OCI registry of ``location``'s host (its credentials, its turn), for reading blobs."""
        return self._registry(location)

    def annotations(self, location: ChartLocation, version: str) -> dict:
        """The annotations of one chart version: its OCI manifest's (Helm copies Chart.yaml's
        there), or, from an index, its ``artifacthub.io/changes``."""
        if location.is_index:
            entry = self.index.entries(location).get(self._match(location, version) or version)
            return {"artifacthub.io/changes": entry.changes} if entry is not None and entry.changes else {}
        tag = self._match(location, version) or registry_tag(version)
        key = (location, "annotations", tag)
        cached = self._cached(self._infos, key)
        if cached is not None:
            return cached
        try:
            with self._registry(location).turn() as registry:
                manifest, _ = registry.manifest(container_of(location), tag)
        except NotFound:
            return {}
        found = {str(k): str(v) for k, v in (manifest.get("annotations") or {}).items()}
        self._store(self._infos, key, found)
        return found

    def invalidate(self, location: Optional[ChartLocation] = None) -> None:
        """Forget what was cached about one chart, or about every chart."""
        if location is None or location.is_index:
            self.index.invalidate(location)
        with self._lock:
            if location is None:
                self._tags.clear()
                self._infos.clear()
                return
            self._tags.pop(location, None)
            for key in [k for k in self._infos if k[0] == location]:
                del self._infos[key]

    def close(self) -> None:
        with self._lock:
            registries, self._registries = list(self._registries.values()), {}
        for registry in registries:
            registry.session.close()
        self.index.close()

    def _match(self, location: ChartLocation, version: str) -> Optional[str]:
        available = self.versions(location).all_tags
        # An index lists versions as written (`1.0.0+build`); OCI tags spell `+` as `_`.
        tag = version if location.is_index else registry_tag(version)
        if tag in available:
            return tag
        return next((t for t in available if same_version(t, tag)), None)

    def _registry(self, location: ChartLocation) -> OciRegistry:
        key = (location.host, location.insecure)
        with self._lock:
            registry = self._registries.get(key)
            if registry is None:
                credentials = self._credentials.get(location.host.lower())
                # Git may say a host is plain HTTP (`insecure: true`); only the settings may send
                # its credentials there.
                withheld = credentials if location.insecure and credentials is not None \
                    and not credentials.plain_http else None
                registry = OciRegistry(location.host, location.insecure,
                                       None if withheld else credentials, self.timeout,
                                       self.busy_seconds, withheld)
                registry._tls_verify = self.verify
                registry.observe = self._observe
                self._registries[key] = registry
            return registry

    def _cached(self, cache: dict, key):
        with self._lock:
            entry = cache.get(key)
            if entry is None:
                return None
            expires, value = entry
            if time.monotonic() >= expires:
                del cache[key]
                return None
            return value

    def _store(self, cache: dict, key, value) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            cache[key] = (time.monotonic() + self.cache_seconds, value)


def _where(location: ChartLocation) -> str:
    return f"the Helm repository {location.repository_url}" if location.is_index else ""


def _text(value) -> str:
    return "" if value is None else str(value)
