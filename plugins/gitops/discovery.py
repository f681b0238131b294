"""What runs where: every HelmRelease of every environment and where its chart version is pinned.

Pure functions over a ``FileTree``: no Git, no HTTP. ``discover`` returns one ``Pin`` per release
and environment, ordered by environment order then app name.

Decisions worth knowing:
- ``version`` set with ``location`` None means the version is pinned where Ferry cannot edit it
  one line at a time: an inline patch string inside a kustomization.yaml, or an OCIRepository
  ``ref.digest`` (reported as the digest text, ``is_range`` False). ``version`` None means nothing
  pins it: Flux takes the newest chart.
- ``kind`` says what holds the location: "patch" for any kustomize patch (on the HelmRelease or
  on its OCIRepository), "ocirepository" for the OCIRepository's own ``spec.ref``, else
  "helmrelease".
- Two releases with one name in one environment make that name ambiguous: every release with that
  name, in every environment discovered together, is called ``namespace/name``.
"""
from __future__ import annotations

import dataclasses
import logging
import posixpath
from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import urlsplit

from .helmvalues import release_values_text
from .kustomize import RELEVANT_KINDS, Resource, TreeIndex, Walker
from .manifests import YAML_SUFFIXES, DEFAULT_CACHE, DirTree, DocumentCache, FileTree, dig
from .patches import REMOVED, PatchIndex, apply, effect
from .model import ChartLocation, Pin, PinLocation
from .settings import EnvironmentSettings, Settings
from .versions import is_range

__all__ = ["FileTree", "DirTree", "DocumentCache", "discover", "discover_environments",
           "qualify_clashes", "release_values_text"]

log = logging.getLogger(__name__)

HELM_API = "helm.toolkit.fluxcd.io/"
SOURCE_API = "source.toolkit.fluxcd.io/"
SOURCE_KINDS = ("HelmRepository", "OCIRepository", "GitRepository", "Bucket", "HelmChart")
VERSION = ("spec", "chart", "spec", "version")
VALUES = ("spec", "values")
# An OCIRepository ref: Flux prefers the digest, then the semver range, then the tag.
OCI_REFS = (("spec", "ref", "digest"), ("spec", "ref", "semver"), ("spec", "ref", "tag"))


@dataclass
class _Release:
    environment: str
    name: str
    namespace: str
    file: str
    version: Optional[str]
    location: Optional[PinLocation]
    kind: str
    chart: str
    source: Optional[ChartLocation]
    source_url: str
    source_kind: str  # the Flux source kind the chart comes from
    values_files: tuple


def discover(tree: FileTree, settings: Settings,
             environments: Optional[Iterable] = None, *, warnings: Optional[list] = None,
             cache: Optional[DocumentCache] = None) -> tuple:
    """The pins of ``environments`` (default: all of them) found in ``tree``.

    Environments may be ``EnvironmentSettings`` or names; pass those whose repository ``tree`` is.
    Problems that do not stop discovery (broken YAML, missing files) are appended to ``warnings``.
    """
    envs = _environments(settings, environments)
    warnings = [] if warnings is None else warnings
    cache = cache or DEFAULT_CACHE
    index = TreeIndex(tree.files())
    builds = []
    for env in envs:
        walker = Walker(tree, index, cache, warnings)
        for pattern in env.paths:
            matched = index.expand(pattern)
            if not matched:
                warnings.append(f"Environment {env.name}: `{pattern}` matches nothing in the repository.")
            for path in matched:
                walker.add_path(path)
        builds.append((env, walker.build))

    sources = _Sources(tree, index, cache, builds)
    releases = []
    for env, build in builds:
        seen = set()
        patch_index = sources.patch_index(env.name)
        for res in build.resources:
            if res.doc.get("kind") == "HelmRelease" and str(res.doc["apiVersion"]).startswith(HELM_API):
                release = _release(env.name, res, patch_index, sources)
                if release is None:
                    continue
                if (release.namespace, release.name) in seen:
                    warnings.append(f"Environment {env.name}: HelmRelease {release.namespace}/"
                                    f"{release.name} is defined twice; kept the one in {_first_file(releases, release)}.")
                    continue
                seen.add((release.namespace, release.name))
                releases.append(release)
        if not seen:
            warnings.append(f"Environment {env.name}: no HelmRelease under {', '.join(env.paths)}.")
    for w in warnings:
        log.debug("discovery: %s", w)
    pins = [_pin(r, settings) for r in releases]
    return _finish(qualify_clashes(pins), [e.name for e in settings.environments])


def discover_environments(tree: FileTree, settings: Settings, environments: Iterable,
                          **options) -> tuple:
    """The pins of only those environments that live in ``tree``'s repository."""
    return discover(tree, settings, environments, **options)


def qualify_clashes(pins: Iterable[Pin]) -> tuple:
    """Call ``namespace/name`` every release whose name is not unique within one environment.

    Idempotent, so the core may apply it again to pins merged from several repositories.
    """
    pins = list(pins)
    namespaces: dict = {}
    for p in pins:
        namespaces.setdefault((p.environment, _bare(p.app)), set()).add(p.namespace)
    clashing = {name for (_, name), nss in namespaces.items() if len(nss) > 1}
    return tuple(_replace(p, app=f"{p.namespace}/{_bare(p.app)}") if _bare(p.app) in clashing else p
                 for p in pins)


# ---- one release -----------------------------------------------------------------------------

def _release(environment: str, res: Resource, patch_index: PatchIndex,
             sources: "_Sources") -> Optional[_Release]:
    name = dig(res.doc, "metadata", "name")
    if not isinstance(name, str) or not name:
        return None
    patches = patch_index.for_resource(res)
    doc = res.doc
    for patch in patches:
        doc = apply(doc, patch)
    values_files = _values_files(res, patches)
    version, location, kind = _origin(res, patches, VERSION, "helmrelease")

    chart_ref = dig(doc, "spec", "chartRef")
    if version is None and isinstance(chart_ref, dict):
        ref_kind = str(chart_ref.get("kind") or "OCIRepository")
        ref_name = str(chart_ref.get("name") or "")
        ref_ns = str(chart_ref.get("namespace") or res.namespace)
        chart, source, url, kind = ref_name, None, "", "ocirepository"
        found = sources.find(environment, ref_kind, ref_ns, ref_name) if ref_kind == "OCIRepository" else None
        if found is not None:
            oci, oci_patches = found
            oci_doc = _patched(found)
            url = str(dig(oci_doc, "spec", "url") or "")
            chart, source = _oci_repository_location(url, _insecure(oci_doc))
            chart = chart or ref_name
            for i, field_path in enumerate(OCI_REFS):
                v, loc, k = _origin(oci, oci_patches, field_path, "ocirepository")
                if v is not None:
                    version, kind = v, k
                    location = None if i == 0 else loc  # a digest is not a version Ferry can set
                    break
        return _Release(environment, name, res.namespace, res.file, version, location, kind, chart,
                        source, url, ref_kind, values_files)

    chart_spec = dig(doc, "spec", "chart", "spec") or {}
    chart = str(chart_spec.get("chart") or "") if isinstance(chart_spec, dict) else ""
    source_ref = chart_spec.get("sourceRef") if isinstance(chart_spec, dict) else None
    source, url, source_kind = None, "", ""
    if isinstance(source_ref, dict):
        source_kind = str(source_ref.get("kind") or "HelmRepository")
        ns = str(source_ref.get("namespace") or res.namespace)
        found = sources.find(environment, source_kind, ns, str(source_ref.get("name") or ""))
        if found is not None:
            repo_doc = _patched(found)
            url = str(dig(repo_doc, "spec", "url") or "")
            if source_kind == "HelmRepository" and (
                    dig(repo_doc, "spec", "type") == "oci" or url.startswith("oci://")):
                source = _helm_repository_location(url, chart, _insecure(repo_doc))
    if source_kind in ("GitRepository", "Bucket"):
        chart = posixpath.basename(chart.rstrip("/")) or chart  # a path to the chart folder
    return _Release(environment, name, res.namespace, res.file, version, location, kind, chart,
                    source, url, source_kind or "HelmRepository", values_files)


def _patched(found) -> dict:
    """A Flux source's document with the environment's patches on it."""
    source, patches = found
    doc = source.doc
    for patch in patches:
        doc = apply(doc, patch)
    return doc


def _origin(res: Resource, patches: list, field_path: tuple, own_kind: str):
    """The text of one field after the patches, where it was last set, and by what."""
    state = (None, None, own_kind)
    own = _text(dig(res.doc, *field_path))
    if own is not None:
        state = (own, PinLocation(res.file, res.index, field_path), own_kind)
    for patch in patches:
        result = effect(patch, field_path)
        if result is None:
            continue
        if result is REMOVED or _text(result[0]) is None:
            state = (None, None, own_kind)
            continue
        value, path = result
        location = None if patch.inline else PinLocation(patch.file, patch.index, path)
        state = (_text(value), location, "patch")
    return state


def _values_files(res: Resource, patches: list) -> tuple:
    files = []
    if dig(res.doc, *VALUES) is not None:
        files.append(res.file)
    for patch in patches:
        if _touches_values(patch):
            files.append(patch.file)
    return tuple(dict.fromkeys(files))


def _touches_values(patch) -> bool:
    if not patch.json6902:
        return dig(patch.body, *VALUES) is not None
    for op in patch.body:
        path = op.get("path") if isinstance(op, dict) else None
        if not isinstance(path, str):
            continue
        parts = tuple(path.strip("/").split("/"))
        if parts[:2] == VALUES or (parts == ("spec",) and isinstance(op.get("value"), dict)
                                   and "values" in op["value"]):
            return True
    return False


# ---- sources ---------------------------------------------------------------------------------

class _Sources:
    """Flux sources by (kind, namespace, name): the environment's own first, then the others
    discovered with it, then anywhere in the repository (a shared `flux-system` source)."""

    def __init__(self, tree, index, cache, builds):
        self._tree, self._index, self._cache = tree, index, cache
        self._by_env: dict = {}
        self._by_name: dict = {}  # (environment, kind, name) -> [Resource] in any namespace
        self._patches = {env.name: PatchIndex(build.patches) for env, build in builds}
        for env, build in builds:
            table = self._by_env.setdefault(env.name, {})
            for res in build.resources:
                key = _source_key(res)
                if key is not None and key not in table:
                    table[key] = res
                    self._by_name.setdefault((env.name, key[0], key[2]), []).append(res)
        self._anywhere: Optional[dict] = None

    def patch_index(self, environment: str) -> PatchIndex:
        return self._patches[environment]

    def find(self, environment: str, kind: str, namespace: str, name: str):
        """The source resource and the patches that apply to it, or None."""
        res = self._by_env.get(environment, {}).get((kind, namespace, name))
        if res is None:
            # kustomize's `namespace:` may have moved the source; a unique name is unambiguous.
            same_name = self._by_name.get((environment, kind, name), [])
            res = same_name[0] if len(same_name) == 1 else None
        if res is not None:
            return res, self._patches[environment].for_resource(res)
        for table in self._by_env.values():
            if (kind, namespace, name) in table:
                return table[(kind, namespace, name)], []
        if kind not in ("HelmRepository", "OCIRepository"):
            return None  # a chart in Git or a bucket has no registry to find: not worth a scan
        res = self._search_repository().get((kind, namespace, name))
        return (res, []) if res is not None else None

    def _search_repository(self) -> dict:
        if self._anywhere is None:
            self._anywhere = {}
            for path in sorted(self._index.files):
                if not path.endswith(YAML_SUFFIXES):
                    continue
                for i, doc in enumerate(self._cache.get(self._tree, path, RELEVANT_KINDS).docs):
                    if isinstance(doc, dict):
                        ns = str(dig(doc, "metadata", "namespace") or "")
                        res = Resource(path, i, doc, frozenset(), ns)
                        key = _source_key(res)
                        if key is not None:
                            self._anywhere.setdefault(key, res)
        return self._anywhere


def _source_key(res: Resource):
    kind = res.doc.get("kind")
    if kind in SOURCE_KINDS and str(res.doc.get("apiVersion", "")).startswith(SOURCE_API):
        name = dig(res.doc, "metadata", "name")
        if isinstance(name, str):
            return kind, res.namespace, name
    return None


def _helm_repository_location(url: str, chart: str, insecure: bool) -> Optional[ChartLocation]:
    parts = urlsplit(url)
    if parts.scheme != "oci" or not parts.netloc or not chart:
        return None
    prefix = parts.path.strip("/")
    return ChartLocation(parts.netloc, f"{prefix}/{chart}" if prefix else chart, insecure)


def _oci_repository_location(url: str, insecure: bool):
    """(chart name, location) of an OCIRepository URL ``oci://host/path/chart``."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme != "oci" or not parts.netloc or not path:
        return "", None
    return path.rsplit("/", 1)[-1], ChartLocation(parts.netloc, path, insecure)


def _insecure(source_doc: dict) -> bool:
    value = dig(source_doc, "spec", "insecure")
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ---- pins ------------------------------------------------------------------------------------

def _pin(r: _Release, settings: Settings) -> Pin:
    conf = settings.apps.get(f"{r.namespace}/{r.name}") or settings.apps.get(r.name)
    chart, source = r.chart, r.source
    if conf is not None and conf.chart:
        chart = conf.chart
        if source is not None and r.source_kind == "HelmRepository":
            # The chart name is part of a HelmRepository location; an OCIRepository URL is whole.
            source = _helm_repository_location(r.source_url, chart, source.insecure)
    if conf is not None and conf.registry is not None:
        source = conf.registry.location(chart)
    elif settings.registry is not None:
        source = settings.registry.location(chart)
    return Pin(app=r.name, environment=r.environment, version=r.version,
               is_range=r.version is not None and is_range(r.version),
               location=r.location, kind=r.kind, chart=chart, namespace=r.namespace,
               release_file=r.file, source=source, source_url=r.source_url,
               values_files=r.values_files)


def _finish(pins: tuple, order: list) -> tuple:
    rank = {name: i for i, name in enumerate(order)}
    sharing: dict = {}
    for p in pins:
        if p.location is not None:
            sharing.setdefault(p.location, set()).add(p.environment)
    done = []
    for p in pins:
        envs = sharing.get(p.location, ()) if p.location is not None else ()
        if len(envs) > 1:
            p = _replace(p, shared_with=tuple(sorted(envs, key=lambda e: rank.get(e, len(rank)))))
        done.append(p)
    return tuple(sorted(done, key=lambda p: (rank.get(p.environment, len(rank)), p.app)))


# ---- helpers ---------------------------------------------------------------------------------

def _environments(settings: Settings, environments) -> list:
    if environments is None:
        return list(settings.environments)
    return [e if isinstance(e, EnvironmentSettings) else settings.environment(e) for e in environments]


def _first_file(releases: list, release: _Release) -> str:
    return next((r.file for r in releases if r.environment == release.environment
                 and r.name == release.name and r.namespace == release.namespace), "?")


def _replace(pin: Pin, **changes) -> Pin:
    return dataclasses.replace(pin, **changes)


def _bare(app: str) -> str:
    return app.rsplit("/", 1)[-1]


def _text(value) -> Optional[str]:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    return str(value)


