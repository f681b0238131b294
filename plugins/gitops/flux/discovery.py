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

from . import images, kustomizations, overlay_images, replacements, sharing, substitution
from .helmvalues import release_values_text
from .kustomize import Resource, TreeIndex, ScopeIds
from .manifests import DEFAULT_CACHE, DirTree, DocumentCache, FileTree, dig
from .patches import origin
from ..model import ChartLocation, Pin, PinLocation, Problem
from ..settings import EnvironmentSettings, Settings
from .chart_sources import Sources, helm_repository_location, insecure, oci_repository_location
from ..versions import is_range

__all__ = ["FileTree", "DirTree", "DocumentCache", "discover", "discover_environments",
           "qualify_clashes", "release_values_text"]

log = logging.getLogger(__name__)

HELM_API = "helm.toolkit.fluxcd.io/"
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
    found: "_Version"
    chart: str
    source: Optional[ChartLocation]
    source_url: str
    source_kind: str  # the Flux source kind the chart comes from
    values_files: tuple
    values_unknown: str = ""
    image_reader: Optional[tuple] = None  # (unit, resource) to read image tags from


def _release_images(tree: FileTree, pin: Pin, unit: kustomizations.Unit, res: Resource, settings: Settings,
                    cache: DocumentCache) -> list:
    doc, patches = unit.document(res)
    return images.release_images(pin, res, doc, tree,
                                 lambda path: _version(unit, res, doc, patches, path, "helmrelease"),
                                 settings, cache)


def discover(tree: FileTree, settings: Settings,
             environments: Optional[Iterable] = None, *, warnings: Optional[list] = None,
             cache: Optional[DocumentCache] = None, with_images: bool = False) -> tuple:
    """The pins of ``environments`` (default: all of them) found in ``tree``.

    Environments may be ``EnvironmentSettings`` or names; pass those whose repository ``tree`` is.
    What discovery cannot follow (broken YAML, missing files, Kustomizations of other sources)
    is appended to ``warnings`` as ``Problem`` objects. ``with_images``: the image tags the
    releases' values and the kustomizations' ``images:`` pin too (``images``), as more pins.
    """
    envs = _environments(settings, environments)
    problems = [] if warnings is None else warnings
    cache = cache if cache is not None else DEFAULT_CACHE
    index = TreeIndex(tree.files())
    finder = kustomizations.Finder(tree, index, cache)
    ids = ScopeIds()
    built = []
    for env in envs:
        paths = []
        for pattern in env.paths:
            matched = index.expand(pattern)
            if not matched:
                problems.append(Problem(env.name, pattern, "matches nothing in the repository."))
            paths.extend(matched)
        units = kustomizations.build_environment(tree, index, cache, env.name, env.repo, paths, problems,
                                       finder, ids)
        built.append((env, units))

    sources = Sources(finder, built)
    releases, found_images = [], []
    for env, units in built:
        if with_images:
            for unit in units:
                found_images.extend(overlay_images.kustomize_images(env.name, unit, cache, tree, settings))
        seen = set()
        for unit in units:
            for res in unit.build.resources:
                if res.kind == "ResourceSet" and _generates_releases(res.doc):
                    problems.append(Problem(env.name, res.file, f"ResourceSet {res.namespace}/{res.name} "
                                            "(Flux Operator) generates HelmReleases Ferry cannot follow: "
                                            "change them by hand."))
                if res.kind != "HelmRelease" or not res.api_version.startswith(HELM_API):
                    continue
                release = _release(env.name, unit, res, sources)
                if release is None:
                    continue
                if (release.namespace, release.name) in seen:
                    problems.append(Problem(env.name, release.file, f"HelmRelease {release.namespace}/"
                                            f"{release.name} is defined twice; kept the one in "
                                            f"{_first_file(releases, release)}."))
                    continue
                seen.add((release.namespace, release.name))
                releases.append(release)
                if with_images:
                    release.image_reader = (unit, res)
        if not seen:
            problems.append(Problem(env.name, ", ".join(env.paths), "no HelmRelease found there."))
    for problem in problems:
        log.debug("discovery: %s", problem)
    pins = [_pin(r, settings) for r in releases]
    variables = [r.found.variable for r in releases]
    for release, pin in zip(releases, list(pins)):
        if release.image_reader is not None:
            found_images.extend(_release_images(tree, pin, *release.image_reader, settings, cache))
    pins += [p for p, _ in found_images]
    # An image tag's variable is not a version site of its own: a variable that is also an image
    # tag stays "used elsewhere" for the chart pin, and the two share one line (sharing.finish).
    variables += [None for _ in found_images]
    every_unit = [u for _, units in built for u in units]
    pins = sharing.variable_uses(pins, variables, every_unit, tree, cache)
    pins = sharing.replacement_sources(pins, every_unit)
    return sharing.finish(qualify_clashes(pins), [e.name for e in settings.environments])


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

@dataclass(frozen=True)
class _Version:
    """What one version field holds once Flux has built it, and where its one line is."""

    text: Optional[str]
    location: Optional[PinLocation]
    kind: str
    origin: str = ""  # for people, when not the release's own field
    refusal: str = ""  # why Ferry cannot change it one line at a time, when it cannot
    unknown: bool = False
    variable: Optional[tuple] = None  # (name, site) when it is one postBuild variable


def _release(environment: str, unit: kustomizations.Unit, res: Resource, sources: Sources) -> Optional[_Release]:
    doc, patches = unit.document(res)
    name = _substituted_name(res, unit, doc)
    if not name:
        return None
    namespace = res.namespace
    if "${" in namespace:
        namespace = substitution.substitute_doc(namespace, unit.variables)
    values_files = _values_files(res, patches)
    values_unknown = _values_unknown(unit, res, patches)
    found = _version(unit, res, doc, patches, VERSION, "helmrelease")

    chart_ref = dig(doc, "spec", "chartRef")
    if found.text is None and found.refusal == "" and isinstance(chart_ref, dict):
        ref_kind = str(chart_ref.get("kind") or "OCIRepository")
        ref_name = str(chart_ref.get("name") or "")
        ref_ns = str(chart_ref.get("namespace") or namespace)
        chart, source, url = ref_name, None, ""
        found = _Version(None, None, "ocirepository")
        located = sources.find(environment, ref_kind, ref_ns, ref_name) if ref_kind == "OCIRepository" else None
        if located is not None:
            oci, oci_unit = located
            oci_doc, oci_patches = oci_unit.document(oci)
            url = str(dig(oci_doc, "spec", "url") or "")
            chart, source = oci_repository_location(url, insecure(oci_doc))
            chart = chart or ref_name
            for i, field_path in enumerate(OCI_REFS):
                v = _version(oci_unit, oci, oci_doc, oci_patches, field_path, "ocirepository")
                if v.text is not None or v.refusal:
                    # A digest is not a version Ferry can set.
                    found = v if i else _Version(v.text, None, v.kind, refusal=f"a digest (`spec.ref.digest` of "
                                                                            f"OCIRepository {ref_name}), which Ferry does not set")
                    break
        return _Release(environment, name, namespace, res.file, found, chart, source, url, ref_kind,
                        values_files, values_unknown)

    chart_spec = dig(doc, "spec", "chart", "spec") or {}
    chart = str(chart_spec.get("chart") or "") if isinstance(chart_spec, dict) else ""
    source_ref = chart_spec.get("sourceRef") if isinstance(chart_spec, dict) else None
    source, url, source_kind = None, "", ""
    if isinstance(source_ref, dict):
        source_kind = str(source_ref.get("kind") or "HelmRepository")
        ns = str(source_ref.get("namespace") or namespace)
        located = sources.find(environment, source_kind, ns, str(source_ref.get("name") or ""))
        if located is not None:
            repo_res, repo_unit = located
            repo_doc, _ = repo_unit.document(repo_res)
            url = str(dig(repo_doc, "spec", "url") or "")
            if source_kind == "HelmRepository":  # OCI (`type: oci`) or an HTTP(S) index
                source = helm_repository_location(url, chart, insecure(repo_doc))
    if source_kind in ("GitRepository", "Bucket"):
        chart = posixpath.basename(chart.rstrip("/")) or chart  # a path to the chart folder
    return _Release(environment, name, namespace, res.file, found, chart, source, url,
                    source_kind or "HelmRepository", values_files, values_unknown)


def _substituted_name(res: Resource, unit: kustomizations.Unit, doc: dict) -> str:
    raw = dig(res.doc, "metadata", "name")
    if not isinstance(raw, str) or not raw:
        return ""
    if "${" not in raw:
        return res.name
    written = dig(doc, "metadata", "name")  # the substituted name, prefixes added back
    return res.name.replace(raw, written) if isinstance(written, str) and written else res.name


def _version(unit: kustomizations.Unit, res: Resource, doc: dict, patches: list, field_path: tuple,
             own_kind: str) -> _Version:
    text, location, by_patch = origin(res, patches, field_path)
    kind = "patch" if by_patch else own_kind
    replaced = replacements.replaced_by(res, field_path)
    if replaced:  # not the line its file holds: where it comes from is said, Ferry does not edit it
        return _Version(text, None, kind, refusal=replaced, unknown=bool(replacements.unknown(res, field_path)))
    if text is None:
        return _Version(None, None, own_kind)
    if location is None:
        return _Version(text, None, kind, refusal="a patch its parent Kustomization rewrites")
    if "${" not in text:
        return _Version(text, location, kind)
    if not unit.variables.enabled or substitution.substitution_disabled(doc):
        return _Version(text, location, kind, refusal=f"the expression `{text}`, which Flux does not "
                                                      f"substitute here, in `{location.file}`")
    result = substitution.substitute(text, unit.variables)
    if result.whole is None:
        return _Version(result.text if result.text is not None else text, None, kind,
                        unknown=result.text is None,
                        refusal=result.unknown or f"`{text}` in `{location.file}`, more than one variable")
    var = unit.variables.resolve(result.whole)
    site = (location.file, location.document, location.path, location.inner)
    if result.text is None:
        return _Version(text, None, "substitute", origin=f"`${{{result.whole}}}`", unknown=True,
                        refusal=result.unknown)
    if var is substitution.UNDEFINED or var.value is None or var.value != result.text:
        default = f" (the default in `{text}`, `{location.file}`)" if result.default is not None else ""
        return _Version(result.text or None, None, "substitute", origin=f"`{text}`",
                        refusal=f"`${{{result.whole}}}`, which nothing defines for {unit.label}{default}; "
                                f"define it in its `spec.postBuild.substitute` to pin it")
    if var.location is None:
        return _Version(result.text, None, "substitute", origin=f"`${{{result.whole}}}` from {var.where}",
                        refusal=f"`${{{result.whole}}}` in {var.where}, not written as one line there")
    return _Version(result.text, var.location, "substitute",
                    origin=f"`${{{result.whole}}}` from {var.where}", variable=(result.whole, site))


def _values_unknown(unit: kustomizations.Unit, res: Resource, patches: list) -> str:
    """Why the values replayed from files (``helmvalues``) would not be those Flux applies."""
    replaced = replacements.replaced_by(res, VALUES)
    if replaced:
        return f"{replaced} sets them"
    for patch in patches:
        if patch.at[:1] == ("spec",) and _touches_values(patch):
            return f"a patch of {unit.label} (`{patch.file}`) changes them"
    if unit.variables.enabled and "${" in str(dig(res.doc, *VALUES) or ""):
        return f"they hold `${{…}}` variables that {unit.label} substitutes"
    return ""


def _generates_releases(doc: dict) -> bool:
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return False
    resources = spec.get("resources")
    if isinstance(resources, list) and any(isinstance(r, dict) and r.get("kind") == "HelmRelease"
                                           for r in resources):
        return True
    return "HelmRelease" in str(spec.get("resourcesTemplate") or "")


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


# ---- pins ------------------------------------------------------------------------------------

def _pin(r: _Release, settings: Settings) -> Pin:
    conf = settings.apps.get(f"{r.namespace}/{r.name}") or settings.apps.get(r.name)
    chart, source = r.chart, r.source
    if conf is not None and conf.chart:
        chart = conf.chart
        if source is not None and r.source_kind == "HelmRepository":
            # The chart name is part of a HelmRepository location; an OCIRepository URL is whole.
            source = helm_repository_location(r.source_url, chart, source.insecure)
    if conf is not None and conf.registry is not None:
        source = conf.registry.location(chart)
    elif settings.registry is not None:
        source = settings.registry.location(chart)
    found = r.found
    return Pin(app=r.name, environment=r.environment, version=found.text,
               is_range=found.text is not None and not found.unknown and is_range(found.text),
               location=found.location, kind=found.kind, chart=chart, namespace=r.namespace,
               release_file=r.file, source=source, source_url=r.source_url,
               values_files=r.values_files, origin=found.origin,
               refusal=found.refusal, unknown=found.unknown, values_unknown=r.values_unknown)


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
