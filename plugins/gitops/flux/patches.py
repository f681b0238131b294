"""Kustomize patches: which resources a patch selects, what it does to one field, and applying it.

Only what discovery reads is modelled: strategic merge of mappings (lists replace, ``null`` and
``$patch: delete|replace`` honoured) and JSON6902 ``add``/``replace``/``remove``. Nothing is changed
in place: parsed documents are cached and shared between discoveries.
"""
from __future__ import annotations

import functools
import re
from typing import Optional

from .kustomize import Patch, Resource
from .manifests import dig
from ..model import PinLocation


# A target name that is a name, not a regular expression: the patch selects that name only.
_LITERAL_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


# The keys of a kustomization (or a Flux Kustomization's spec) that declare patches.
PATCH_KEYS = ("patches", "patchesStrategicMerge", "patchesJson6902")


class PatchIndex:
    """The patches of one build by the resource name they select, so that finding the patches of
    each of a thousand releases does not try a thousand patches each."""

    def __init__(self, patches: list):
        self._by_name: dict = {}
        self._any: list = []  # patches selecting by regex, kind or labels only
        for position, patch in enumerate(patches):
            name = selected_name(patch)
            entry = (position, patch)
            if literal(name):
                self._by_name.setdefault(name, []).append(entry)
            elif patch.target is not None or name is not None:
                self._any.append(entry)

    def for_resource(self, resource: Resource) -> list:
        """The patches that apply to ``resource``, in the order kustomize applies them."""
        candidates = [e for name in _names(resource) for e in self._by_name.get(name, ())]
        if self._any or len(resource.names) > 1:
            candidates = sorted(candidates + self._any, key=lambda e: e[0])
        return [p for _, p in candidates if applies(p, resource)]


def selected_name(patch: Patch):
    """The name a patch selects by: its target's, or (no target) its body's own."""
    return patch.target.get("name") if patch.target is not None else dig(patch.body, "metadata", "name")


def selects_releases_only(patch: Patch) -> bool:
    """Whether ``patch`` selects HelmReleases only: a target of that kind, or (no target) a body of it."""
    if patch.target is not None:
        return patch.target.get("kind") == "HelmRelease"
    return isinstance(patch.body, dict) and patch.body.get("kind") == "HelmRelease"


def literal(name) -> bool:
    """Whether a selected name is one name (it selects that name only), not a regular expression."""
    return isinstance(name, str) and _LITERAL_NAME.match(name) is not None


def applies(patch: Patch, resource: Resource) -> bool:
    """Whether ``patch`` applies to ``resource``: declared where the resource is built, and
    selecting it."""
    return patch.scope in resource.scopes and targets(patch, resource)


def _names(resource: Resource):
    # kustomize matches a patch against any name a resource had on its way (prefixes added).
    name = dig(resource.doc, "metadata", "name")
    return resource.names or ((name,) if isinstance(name, str) else ())


def targets(patch: Patch, resource: Resource) -> bool:
    doc = resource.doc
    kind, names = doc.get("kind"), _names(resource)
    namespaces = {resource.namespace, dig(doc, "metadata", "namespace") or ""}
    if patch.target is not None:
        return selected(patch.target, doc, namespaces, names)
    body = patch.body
    if not isinstance(body, dict) or body.get("kind") != kind or dig(body, "metadata", "name") not in names:
        return False
    wanted = dig(body, "metadata", "namespace")
    return not wanted or wanted in namespaces


def selected(target: dict, doc: dict, namespaces: set, names) -> bool:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    fields = {"kind": doc.get("kind"), "group": group, "version": version}
    for key, actual in fields.items():
        wanted = target.get(key)
        if wanted not in (None, "") and not selector_match(str(wanted), str(actual or "")):
            return False
    wanted_name = target.get("name")
    if wanted_name not in (None, "") and not any(selector_match(str(wanted_name), n) for n in names):
        return False
    wanted_ns = target.get("namespace")
    if wanted_ns not in (None, "") and not any(selector_match(str(wanted_ns), ns) for ns in namespaces):
        return False
    for key, meta in (("labelSelector", "labels"), ("annotationSelector", "annotations")):
        if target.get(key) and not _labels_match(str(target[key]), dig(doc, "metadata", meta) or {}):
            return False
    return True


def selector_match(pattern: str, value: str) -> bool:
    # kustomize anchors target fields as regular expressions.
    compiled = _compiled(pattern)
    return compiled.fullmatch(value) is not None if compiled is not None else pattern == value


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str):
    try:
        return re.compile(pattern)
    except re.error:
        return None


_SET_RULE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _labels_match(selector: str, labels: dict) -> bool:
    labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    for rule in re.split(r",(?![^(]*\))", selector):
        rule = rule.strip()
        if not rule:
            continue
        m = _SET_RULE.match(rule)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            has = labels.get(m.group(1)) in values
            if has != (m.group(2) == "in"):
                return False
        elif "!=" in rule:
            k, v = (s.strip() for s in rule.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "=" in rule:
            k, v = (s.strip() for s in rule.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif rule.startswith("!"):
            if rule[1:].strip() in labels:
                return False
        elif rule not in labels:
            return False
    return True


def origin(res: Resource, patches: list, field_path: tuple) -> tuple:
    """The text of one field after ``patches``, where it was last written (a ``PinLocation``, or
    None where no one line holds it), and whether a patch wrote it."""
    state = (None, None, False)
    own = _text(dig(res.doc, *field_path))
    if own is not None:
        state = (own, PinLocation(res.file, res.index, field_path), False)
    for patch in patches:
        result = effect(patch, field_path)
        if result is None:
            continue
        if result is REMOVED or _text(result[0]) is None:
            state = (None, None, False)
            continue
        value, path = result
        state = (_text(value), patch.location(path), True)
    return state


def _text(value) -> Optional[str]:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    return str(value)


# The effect of one patch on one field: None (untouched), REMOVED, or (value, path in the patch doc).
REMOVED = "removed"


def effect(patch: Patch, field_path: tuple):
    """What ``patch`` does to one field: None (nothing), ``REMOVED``, or (value, its path in the
    patch document) — the path a ``PinLocation`` needs to edit the value where the patch sets it."""
    if patch.json6902:
        return _json6902_effect(patch.body, field_path)
    node = patch.body
    for key in field_path:
        if not isinstance(node, dict):
            return None
        if key not in node:
            # `$patch: replace` replaces the whole mapping: a key it leaves out is gone.
            return REMOVED if node.get("$patch") == "replace" else None
        node = node[key]
        if node is None:
            return REMOVED
    if isinstance(node, (dict, list)):
        return None
    return node, field_path


def _json6902_effect(ops: list, field_path: tuple):
    result = None
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            continue
        pointer = _pointer(op["path"])
        kind = op.get("op")
        if kind == "remove" and _is_prefix(pointer, field_path):
            result = REMOVED
        elif kind in ("add", "replace", "copy", "move") and _is_prefix(pointer, field_path):
            if kind in ("copy", "move"):
                result = REMOVED  # the value comes from elsewhere in the resource: not tracked
                continue
            rest = field_path[len(pointer):]
            node = op.get("value")
            for key in rest:
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                result = REMOVED
            elif not isinstance(node, (dict, list)):
                result = (node, (i, "value") + tuple(rest))
        elif kind == "move" and isinstance(op.get("from"), str) and \
                _is_prefix(_pointer(op["from"]), field_path):
            result = REMOVED
    return result


def touches(patch: Patch, field_path: tuple) -> bool:
    """Whether ``patch`` may write the field at ``field_path`` or anything inside it, whatever
    value it holds: a value written equal to the one it had is still the patch's."""
    if patch.json6902:
        return any(isinstance(op, dict) and op.get("op") != "test" and any(
            isinstance(op.get(key), str) and _overlap(_pointer(op[key]), field_path) for key in ("path", "from"))
            for op in patch.body)
    node = patch.body
    for key in field_path:
        if not isinstance(node, dict) or "$patch" in node:
            return True  # a mapping replaced or deleted on the way
        if key not in node:
            return False
        node = node[key]
    return True


def _overlap(pointer: tuple, field_path: tuple) -> bool:
    return _is_prefix(pointer, field_path) or _is_prefix(tuple(str(p) for p in field_path), pointer)


def _pointer(path: str) -> tuple:
    parts = path.split("/")[1:] if path.startswith("/") else path.split("/")
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in parts)


def _is_prefix(prefix: tuple, path: tuple) -> bool:
    return len(prefix) <= len(path) and tuple(str(p) for p in path[:len(prefix)]) == prefix


def apply_all(doc: dict, patches: list) -> dict:
    """``doc`` with ``patches`` applied in order, as a new object."""
    for patch in patches:
        doc = apply(doc, patch)
    return doc


def apply(doc: dict, patch: Patch) -> dict:
    """``doc`` with ``patch`` applied, as a new object.

    Cached documents are shared between discoveries, so nothing is changed in place: mappings and
    lists are copied along the patched paths only (a deep copy of every release's values would
    dominate discovery time).
    """
    if patch.json6902:
        for op in patch.body:
            if isinstance(op, dict):
                doc = _apply_op(doc, op)
        return doc
    body = {k: v for k, v in patch.body.items() if k not in ("apiVersion", "kind", "metadata")}
    merged = _merge(doc, body)
    return merged if isinstance(merged, dict) else doc


_DELETE = object()


def _merge(base, patch):
    # Strategic merge, reduced to what discovery reads: mappings merge, lists and scalars replace.
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return _without_directives(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _without_directives(patch)
    if directive == "delete":
        return _DELETE
    merged = dict(base)
    for key, value in patch.items():
        if key == "$patch":
            continue
        result = _DELETE if value is None else _merge(base.get(key), value)
        if result is _DELETE:
            merged.pop(key, None)
        else:
            merged[key] = result
    return merged


def _without_directives(value):
    if isinstance(value, dict) and "$patch" in value:
        return {k: v for k, v in value.items() if k != "$patch"}
    return value


def _apply_op(node, op: dict, pointer: Optional[tuple] = None):
    """``node`` with one JSON6902 operation applied, copying only along its path."""
    if pointer is None:
        pointer = _pointer(str(op.get("path", "")))
        if not pointer:
            return node
    key, rest = pointer[0], pointer[1:]
    kind = op.get("op")
    if isinstance(node, dict):
        if rest:
            if not isinstance(node.get(key), (dict, list)):
                return node
            return {**node, key: _apply_op(node[key], op, rest)}
        if kind in ("add", "replace"):
            return {**node, key: op.get("value")}
        if kind == "remove":
            return {k: v for k, v in node.items() if k != key}
        return node
    if isinstance(node, list):
        at = len(node) if key == "-" else int(key) if key.isdigit() else None
        if at is None or at > len(node):
            return node
        copied = list(node)
        if rest:
            if at < len(node):
                copied[at] = _apply_op(node[at], op, rest)
        elif kind == "add":
            copied.insert(at, op.get("value"))
        elif kind == "replace" and at < len(node):
            copied[at] = op.get("value")
        elif kind == "remove" and at < len(node):
            del copied[at]
        return copied
    return node
