"""The Helm values one release gets in one environment, as text two environments can be diffed by.

Discovery already knows which files give a release its values (``Pin.values_files``: the release
file, then the patches in the order kustomize applies them); this replays them. Within a patch
file, the documents naming the release apply; when none names it, the file was selected by a
kustomize ``target:``, so all of its HelmRelease documents apply. A file (or inline patch) that
does not load raises ``UnreadableValues``: no values is not the same as unknown values.
"""
from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass
from typing import Optional

from ruamel.yaml import YAML

from ..errors import UnreadableDocument, UnreadableValues
from ..safeyaml import load_typed
from .kustomize import KUSTOMIZATION_FILES, Patch, ScopeIds
from .tree_index import TreeIndex
from .kustomizations import Finder, build_environment
from .manifests import DEFAULT_CACHE, DocumentCache, FileTree, dig
from .patches import apply, apply_all, selector_match
from .replacements import unknown as unknown_replacement
from .substitution import substitution_disabled
from ..model import Pin
from ..settings import EnvironmentSettings


def release_values_text(tree: FileTree, pin: Pin) -> str:
    """``pin``'s release values as YAML with sorted keys ("" when it sets none)."""
    values = release_values(tree, pin)
    if not values:
        return ""
    out = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(_sorted(values), out)
    return out.getvalue()


def release_values(tree: FileTree, pin: Pin) -> dict:
    name = pin.app.rsplit("/", 1)[-1]
    values: dict = {}
    for position, path in enumerate(pin.values_files):
        docs = _load(tree, path)
        if position == 0 and path == pin.release_file:
            release = _release_doc(docs, name, pin.namespace)
            found = dig(release, "spec", "values")
            values = found if isinstance(found, dict) else {}
            continue
        if posixpath.basename(path) in KUSTOMIZATION_FILES:
            bodies = _inline_patches(docs[0] if docs else None, name, path)
        else:
            bodies = _file_patches(docs, name)
        for body in bodies:
            patched = apply({"spec": {"values": values}}, Patch(path, 0, body, None, 0))
            found = dig(patched, "spec", "values")
            values = found if isinstance(found, dict) else {}
    return values


def _load(tree: FileTree, path: str) -> list:
    return _parse(tree.read(path), path)


def _release_doc(docs: list, name: str, namespace: str):
    candidates = [d for d in docs if isinstance(d, dict) and d.get("kind") == "HelmRelease"
                  and dig(d, "metadata", "name") == name]
    same_namespace = [d for d in candidates if dig(d, "metadata", "namespace") == namespace]
    return (same_namespace or candidates or [None])[0]


def _file_patches(docs: list, name: str) -> list:
    ops = [d for d in docs if isinstance(d, list)]
    mappings = [d for d in docs if isinstance(d, dict)]
    named = [d for d in mappings if dig(d, "metadata", "name") == name]
    return ops + (named or [d for d in mappings if d.get("kind") == "HelmRelease"])


def _inline_patches(kustomization, name: str, path: str) -> list:
    if not isinstance(kustomization, dict):
        return []
    bodies = []
    for entry in _list(kustomization.get("patchesStrategicMerge")):
        if isinstance(entry, str) and "\n" in entry:
            bodies.extend(d for d in _parse(entry, path, inline=True) if isinstance(d, dict)
                          and dig(d, "metadata", "name") == name)
    for key in ("patches", "patchesJson6902"):
        for entry in _list(kustomization.get(key)):
            if not (isinstance(entry, dict) and isinstance(entry.get("patch"), str)):
                continue
            target = entry.get("target")
            if isinstance(target, dict) and not _targets_release(target, name):
                continue  # another release's patch: whether it loads is not this answer's concern
            for body in _parse(entry["patch"], path, inline=True):
                if isinstance(target, dict) or (isinstance(body, dict)
                                                and dig(body, "metadata", "name") == name):
                    bodies.append(body)
    return bodies


def _targets_release(target: dict, name: str) -> bool:
    kind, wanted = target.get("kind"), target.get("name")
    return (not kind or selector_match(str(kind), "HelmRelease")) and \
        (not wanted or selector_match(str(wanted), name))


def _parse(text: str, path: str, inline: bool = False) -> list:
    # The safe constructor: values keep their types (3, not "3") in the text shown. It is
    # stricter than discovery's parser (duplicate keys, unknown tags): what it refuses is said.
    try:
        return load_typed(text, f"`{path}`")
    except UnreadableDocument as e:
        raise UnreadableValues(path, e.problem, inline) from None


def _sorted(node):
    if isinstance(node, dict):
        return {k: _sorted(node[k]) for k in sorted(node, key=str)}
    if isinstance(node, list):
        return [_sorted(v) for v in node]
    return node


def _list(value) -> list:
    return value if isinstance(value, list) else []



# ---- spec.valuesFrom ---------------------------------------------------------------------------
# helm-controller (fluxcd/pkg chartutil.ChartValuesFromReferences) reads each reference in order
# from the cluster, in the HelmRelease's namespace, merges each over the ones before (Helm's
# MergeMaps: maps deep, anything else replaced) and `spec.values` last over them all. Ferry reads
# a ConfigMap only where it knows the cluster gets it from Git: the one object of that name and
# namespace in the build of the Flux Kustomization that applies the release, as that build makes
# it. Everything else is named unknown with why; what helm-controller would fail on is a problem.

DEFAULT_VALUES_KEY = "values.yaml"
SECRET = "a Secret"


@dataclass(frozen=True)
class ValuesFrom:
    """What ``spec.valuesFrom`` gives a release, as far as Git tells."""

    values: dict  # the ConfigMaps read, merged in order (``spec.values`` goes over it)
    unknown: tuple = ()  # each reference Ferry cannot read, named with why
    problems: tuple = ()  # what helm-controller would refuse the release for


def values_from(tree: FileTree, pin: Pin, environment: EnvironmentSettings,
                cache: Optional[DocumentCache] = None) -> ValuesFrom:
    """``pin``'s ``spec.valuesFrom`` read from ``tree`` (its environment's repository), building
    the environment again to find the build that applies the release; nothing built for a
    release discovery found without one (most: a preview then costs the app's, not the fleet's)."""
    if not pin.release_file or not pin.values_from:
        return ValuesFrom({})
    name = pin.app.rsplit("/", 1)[-1]
    cache = cache if cache is not None else DEFAULT_CACHE
    found = _release_in_build(tree, environment, pin, name, cache)
    if found is None:  # not where discovery found it: name each reference, read none
        try:
            refs = dig(_release_doc(_load(tree, pin.release_file), name, pin.namespace), "spec", "valuesFrom")
        except (UnreadableValues, KeyError, OSError):
            return ValuesFrom({})
        return ValuesFrom({}, tuple(f"{_named(r)}" for r in _list(refs) if isinstance(r, dict)))
    unit, release = found
    doc, _ = unit.document(release)
    return merge_references(tree, cache, _list(dig(doc, "spec", "valuesFrom")), pin.namespace, unit)


def merge_references(tree: FileTree, cache: DocumentCache, refs: list, namespace: str, unit) -> ValuesFrom:
    """``refs`` merged in order, as helm-controller merges them, from ``unit``'s build."""
    values: dict = {}
    unknown, problems = [], []
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        read, why, problem = _reference(tree, cache, ref, namespace, unit)
        if problem:
            problems.append(problem)
        elif why is SECRET:  # the line's heading says it: Ferry never reads one
            unknown.append(_named(ref))
        elif why:
            unknown.append(f"{_named(ref)}: {why}")
        elif read is not None:
            values = merge_maps(values, read)
    return ValuesFrom(values, tuple(unknown), tuple(problems))


def merge_maps(a: dict, b: dict) -> dict:
    """Helm's ``chartutil.MergeMaps``: ``b`` over ``a``, maps merged key by key."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def _reference(tree: FileTree, cache: DocumentCache, ref: dict, namespace: str, unit) -> tuple:
    """(values or None when skipped, why unknown, what helm-controller fails on) of one ref."""
    kind, name = ref.get("kind"), ref.get("name")
    key = ref.get("valuesKey") or DEFAULT_VALUES_KEY
    if not isinstance(name, str) or "${" in name or not isinstance(key, str) or "${" in key:
        return None, "its name or key is not plain text in Git", ""
    if kind != "ConfigMap":
        return None, SECRET if kind == "Secret" else f"helm-controller reads no kind `{kind}`", ""
    if ref.get("targetPath"):
        # Helm's --set parser (strvals) decides the value's type and path: not replayed.
        return None, "`targetPath` (Helm's --set parsing) is not replayed", ""
    generated = _generated(tree, cache, unit, name)
    if generated:
        return None, generated, ""
    candidates = [r for r in unit.build.resources
                  if r.kind == "ConfigMap" and r.name == name and r.namespace == namespace]
    if not candidates:
        return None, f"not in the build of {unit.label}: it may come from elsewhere", ""
    if len(candidates) > 1:
        return None, f"{len(candidates)} objects of that name in the build of {unit.label}", ""
    config_map = candidates[0]
    doc = apply_all(config_map.doc, unit.patches.for_resource(config_map))
    data = doc.get("data")
    if not isinstance(data, dict) or key not in data:
        if ref.get("optional") is True:
            return None, "", ""  # skipped, as helm-controller skips it
        return None, "", (f"helm-controller refuses the release: ConfigMap {namespace}/{name} "
                          f"({config_map.file}) has no key `{key}` and the reference is not optional.")
    replaced = unknown_replacement(config_map, ("data", key))
    if replaced:
        return None, f"a replacement writes it ({replaced})", ""
    text = data[key]
    if not isinstance(text, str):
        return None, f"`data.{key}` in {config_map.file} is not a string", ""
    if unit.variables.enabled and not substitution_disabled(doc) and "${" in text:
        return None, f"{unit.label}'s postBuild substitution changes it", ""
    where = f"`data.{key}` of ConfigMap {namespace}/{name} ({config_map.file})"
    try:
        # Helm's ReadValues is sigs.k8s.io/yaml: YAML 1.1, one document.
        docs = load_typed(text, where, version=(1, 1))
    except UnreadableDocument as e:
        return None, "", f"helm-controller cannot read {where}: {e.problem}"
    if len(docs) > 1:
        return None, f"{where} holds {len(docs)} YAML documents", ""
    read = docs[0] if docs else None
    if read is None:
        return {}, "", ""
    if not isinstance(read, dict):
        return None, "", f"helm-controller cannot read {where}: it is not a mapping of values."
    return read, "", ""


def _generated(tree: FileTree, cache: DocumentCache, unit, name: str) -> str:
    """Why a ConfigMap ``name`` may be one a kustomize generator makes in ``unit`` ("" if not):
    the name kustomize gives it (prefixes, a hash suffix) is taken as matching when it holds the
    generator's own name."""
    for kfile, document, _ in unit.build.kustomizations:
        doc = cache.get(tree, kfile).docs[document]
        if not isinstance(doc, dict):
            continue
        if doc.get("generators"):
            return f"{kfile} runs kustomize generators, which Ferry does not build"
        for entry in _list(doc.get("configMapGenerator")):
            made = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(made, str) and made and made in name:
                return (f"a configMapGenerator in {kfile} makes it (a name with a hash suffix, "
                        "contents Ferry does not build)")
    return ""


def _release_in_build(tree: FileTree, environment: EnvironmentSettings, pin: Pin, name: str,
                      cache: DocumentCache):
    """(the unit applying the release, its resource), as discovery finds them, or None."""
    index = TreeIndex(tree.files())
    paths = [p for pattern in environment.paths for p in index.expand(pattern)]
    units = build_environment(tree, index, cache, environment.name, environment.repo, paths, [],
                              Finder(tree, index, cache), ScopeIds())
    for unit in units:
        for res in unit.build.resources:
            if res.kind == "HelmRelease" and res.name == name and res.namespace == pin.namespace \
                    and res.file == pin.release_file:
                return unit, res
    return None


def _named(ref: dict) -> str:
    key = f" (key `{ref['valuesKey']}`)" if ref.get("valuesKey") else ""
    return f"{ref.get('kind') or 'ConfigMap'} `{ref.get('name') or '?'}`{key}"
