"""One HelmRelease as Flux builds it: its chart, its source, where its version is written (or why
Ferry cannot write it), its values files, and the pin it makes. Pure over one unit's build.

Decisions worth knowing:
- ``version`` set with ``location`` None means the version is pinned where Ferry cannot edit it
  one line at a time: an inline patch string inside a kustomization.yaml, or an OCIRepository
  ``ref.digest`` (reported as the digest text, ``is_range`` False). ``version`` None means nothing
  pins it: Flux takes the newest chart.
- ``kind`` says what holds the location: "patch" for any kustomize patch (on the HelmRelease or
  on its OCIRepository), "ocirepository" for the OCIRepository's own ``spec.ref``, else
  "helmrelease".
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional

from . import images, kustomizations, replacements, substitution
from .kustomize import Resource
from .manifests import DocumentCache, FileTree, dig
from .patches import origin
from ..model import ChartLocation, Pin, PinLocation
from ..settings import Settings
from .chart_sources import Sources, helm_repository_location, insecure, oci_repository_location
from ..versions import is_range


HELM_API = "helm.toolkit.fluxcd.io/"
VERSION = ("spec", "chart", "spec", "version")
VALUES = ("spec", "values")
# An OCIRepository ref: Flux prefers the digest, then the semver range, then the tag.
OCI_REFS = (("spec", "ref", "digest"), ("spec", "ref", "semver"), ("spec", "ref", "tag"))


@dataclass
class Release:
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
    values_from: bool = False  # the built release has `spec.valuesFrom`


def release_images(tree: FileTree, pin: Pin, unit: kustomizations.Unit, res: Resource, settings: Settings,
                    cache: DocumentCache) -> list:
    doc, patches = unit.document(res)
    return images.release_images(pin, res, doc, tree,
                                 lambda path: _version(unit, res, doc, patches, path, "helmrelease"),
                                 settings, cache)



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


def release(environment: str, unit: kustomizations.Unit, res: Resource, sources: Sources) -> Optional[Release]:
    doc, patches = unit.document(res)
    name = _substituted_name(res, unit, doc)
    if not name:
        return None
    namespace = res.namespace
    if "${" in namespace:
        namespace = substitution.substitute_doc(namespace, unit.variables)
    values_files = _values_files(res, patches)
    values_unknown = _values_unknown(unit, res, patches)
    values_from = bool(dig(doc, "spec", "valuesFrom"))
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
        return Release(environment, name, namespace, res.file, found, chart, source, url, ref_kind,
                        values_files, values_unknown, values_from=values_from)

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
    return Release(environment, name, namespace, res.file, found, chart, source, url,
                    source_kind or "HelmRepository", values_files, values_unknown, values_from=values_from)


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


def generates_releases(doc: dict) -> bool:
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

def pin(r: Release, settings: Settings) -> Pin:
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
               refusal=found.refusal, unknown=found.unknown, values_unknown=r.values_unknown,
               values_from=r.values_from)
