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

from ruamel.yaml import YAML

from ..errors import UnreadableDocument, UnreadableValues
from ..safeyaml import load_typed
from .kustomize import KUSTOMIZATION_FILES, Patch
from .manifests import FileTree, dig
from .patches import apply, selector_match
from ..model import Pin


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




def values_from(tree: FileTree, pin: Pin) -> tuple:
    """What the release's ``spec.valuesFrom`` merges over its values, each named ("Secret
    `web-secrets` (key `values.yaml`)"): Ferry does not read them, so they are unknown, never guessed."""
    if not pin.release_file:
        return ()
    try:
        docs = _load(tree, pin.release_file)
    except (UnreadableValues, KeyError, OSError):
        return ()
    release = _release_doc(docs, pin.app.rsplit("/", 1)[-1], pin.namespace)
    named = []
    for item in _list(dig(release, "spec", "valuesFrom")):
        if isinstance(item, dict):
            key = f" (key `{item['valuesKey']}`)" if item.get("valuesKey") else ""
            named.append(f"{item.get('kind') or 'ConfigMap'} `{item.get('name') or '?'}`{key}")
    return tuple(named)
