"""kustomize ``replacements``: a field of one resource copied into fields of others, as kustomize
does after a kustomization's patches, namespace and names.

Applied to what one build holds (``Build.replacements``, innermost kustomization first), so that
what discovery reads (a Flux Kustomization's ``targetNamespace``, a name, a version) is what Flux
applies. A field a replacement writes is remembered on the resource (``Resource.replaced``): it is
not one line of that file any more, so a version there is refused, naming where it comes from. A
replacement Ferry cannot evaluate (no single source, a wildcard path, a file that is missing)
leaves its fields as written but marked unknown: what reads them refuses with the reason.

Supported as kustomize documents them: ``source`` (kind, name, namespace, group, version,
``fieldPath`` default ``metadata.name``, ``options.delimiter``/``index``), ``targets`` (``select``,
``reject``, ``fieldPaths``, ``options.delimiter``/``index``/``create``), and ``path:`` to a file of
replacements. Field paths: dotted keys, list indexes, ``[key=value]`` list selectors.
"""
from __future__ import annotations

import copy
import re
from dataclasses import replace as _replace
from typing import Optional

from .kustomize import Build, Resource, join_path
from .manifests import dig
from .patches import applies, apply_all, literal, origin, selected, selector_match
from ..model import Problem

_SELECTOR = re.compile(r"^\[([^=\]]+)=([^\]]*)\]$")


class Unevaluable(Exception):
    """Why a replacement cannot be evaluated (its message is said to people)."""


def apply(build: Build, tree, index, cache, problems: list, environment: str) -> None:
    """Apply every kustomization's replacements to ``build``'s resources, in kustomize's order."""
    for scope, folder, kfile, entries in build.replacements:
        for entry in _entries(entries, folder, kfile, tree, index, cache, problems, environment):
            _one(build, scope, kfile, entry)


def replaced_by(res: Resource, path: tuple) -> str:
    """Why the field at ``path`` of ``res`` is not the one line its file holds ("" when it is)."""
    for written, reason, known in reversed(res.replaced):  # the last writer decides
        if path[:len(written)] == written or written[:len(path)] == path:
            return reason
        if not known and written[:1] == ("metadata",):  # which object this is: unknown
            return reason
    return ""


def unknown(res: Resource, path: tuple) -> str:
    """Why a field at (or under) ``path`` is set by a replacement Ferry cannot evaluate ("" if none)."""
    for written, reason, known in res.replaced:
        if not known and (path[:len(written)] == written or written[:len(path)] == path):
            return reason
    return ""


def _entries(entries: list, folder: str, kfile: str, tree, index, cache, problems, environment) -> list:
    found = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            path = join_path(folder, entry["path"])
            parsed = cache.get(tree, path) if path in index.files else None
            if parsed is None or parsed.error:
                problems.append(Problem(environment, kfile, f"replacements file `{entry['path']}` "
                                        "cannot be read: the fields it sets are unknown."))
                found.append({"unreadable": entry["path"]})
                continue
            for doc in parsed.docs:
                found.extend(doc if isinstance(doc, list) else [doc])
        elif isinstance(entry, dict):
            found.append(entry)
    return [e for e in found if isinstance(e, dict)]


def _one(build: Build, scope: int, kfile: str, entry: dict) -> None:
    within = [i for i, r in enumerate(build.resources) if scope in r.scopes]
    value, unknown, described, source = None, "", "", None
    if "unreadable" in entry:  # kustomize cannot build this at all: nothing in it is known
        why = f"a kustomize replacement in `{kfile}` that Ferry cannot evaluate (its file " \
              f"`{entry['unreadable']}` cannot be read)"
        for i in within:
            res = build.resources[i]
            build.resources[i] = _replace(res, replaced=res.replaced + ((("metadata",), why, False),))
        return
    try:
        value, described, source = _source_value(build, within, scope, entry.get("source"))
    except Unevaluable as e:
        unknown = f"a kustomize replacement in `{kfile}` that Ferry cannot evaluate ({e})"
    written = []
    for target in entry.get("targets") or ():
        if not isinstance(target, dict) or not isinstance(target.get("select"), dict):
            continue
        options = target.get("options") if isinstance(target.get("options"), dict) else {}
        for i in within:
            res = build.resources[i]
            seen = as_seen(build.patches, scope, res)
            rejects = target.get("reject") if isinstance(target.get("reject"), list) else ()
            if not _matches(target["select"], seen) or any(isinstance(r, dict) and _matches(r, seen)
                                                            for r in rejects):
                continue
            field_paths = target.get("fieldPaths")
            for field_path in field_paths if isinstance(field_paths, list) else ():
                before = build.resources[i]
                build.resources[i] = _write(before, str(field_path), value, options,
                                            unknown or f"a kustomize replacement in `{kfile}`, from {described}")
                if build.resources[i] is not before:
                    written.append(f"{res.kind} {res.name} `{field_path}`")
    if source is not None and written:
        # The source's line feeds other fields too: a pin there is not one thing's.
        build.replacement_sources.append((source, f"a kustomize replacement in `{kfile}` into "
                                          + ", ".join(dict.fromkeys(written))))


def _source_value(build: Build, within: list, scope: int, source) -> tuple:
    if not isinstance(source, dict):
        raise Unevaluable("it has no `source`")
    chosen = [build.resources[i] for i in within if _matches(source, as_seen(build.patches, scope, build.resources[i]))]
    if len(chosen) != 1:
        raise Unevaluable(f"{len(chosen)} resources match its source, kustomize wants one")
    res = chosen[0]
    patches = [p for p in build.patches if p.scope >= scope and applies(p, res)]
    doc = apply_all(res.doc, patches)
    field_path = str(source.get("fieldPath") or "metadata.name")
    path = _resolve(doc, _parse(field_path), create=False)
    location = origin(res, patches, path)[1] if path is not None else None
    value = dig(doc, *path) if path is not None else None
    if value is None or isinstance(value, (dict, list)):
        raise Unevaluable(f"`{field_path}` of {res.kind} {res.name} holds no value")
    if "${" in str(value) or replaced_by(res, path):
        raise Unevaluable(f"`{field_path}` of {res.kind} {res.name} is itself computed")
    options = source.get("options") if isinstance(source.get("options"), dict) else {}
    if options.get("delimiter"):
        parts = str(value).split(str(options["delimiter"]))
        index = _index(options)
        if index >= len(parts):
            raise Unevaluable(f"`{field_path}` of {res.kind} {res.name} has no part {index}")
        value = parts[index]
    return value, f"{res.kind} {res.name} `{field_path}` (`{res.file}`)", location


def as_seen(patches: list, scope: int, res: Resource) -> Resource:
    """``res`` as a replacement of the kustomization of ``scope`` sees it: patched by its patches and
    those inside it (kustomize runs replacements after a kustomization's patches: a label a patch
    gives selects)."""
    patches = [p for p in patches if p.scope >= scope and applies(p, res)]
    return _replace(res, doc=apply_all(res.doc, patches)) if patches else res


def reach(entries: list, resources, patches: list = ()) -> bool:
    """Whether a replacement of a build (``Build.replacements``, its ``patches``) may select one of
    ``resources``: as its source, a target or a rejected one; or is in a file (not read here). A
    replacement selects among what its kustomization builds only (``_one``): those with its scope."""
    for scope, _, _, found in entries:
        inside = [as_seen(patches, scope, res) for res in resources if scope in res.scopes]
        if not inside:
            continue
        for entry in found:
            if not isinstance(entry, dict) or "path" in entry:
                return True
            targets = [t for t in entry.get("targets") or () if isinstance(t, dict)] \
                if isinstance(entry.get("targets"), list) else []
            selectors = [entry.get("source")] + [t.get("select") for t in targets]
            selectors += [r for t in targets if isinstance(t.get("reject"), list) for r in t["reject"]]
            if any(isinstance(s, dict) and _matches(s, res) for s in selectors for res in inside):
                return True
    return False


def may_select(entries: list, doc: dict) -> bool:
    """Whether a replacement of a build may select the object of ``doc`` wherever the build holds
    it (its route unknown: a namespace or labels it gives, a prefix or suffix on its name): by its
    kind and what its name is part of; or is in a file."""
    name = str(dig(doc, "metadata", "name") or "")
    for _, _, _, found in entries:
        for entry in found:
            if not isinstance(entry, dict) or "path" in entry:
                return True
            targets = [t for t in entry.get("targets") or () if isinstance(t, dict)] \
                if isinstance(entry.get("targets"), list) else []
            for selector in [entry.get("source")] + [t.get("select") for t in targets]:
                if not isinstance(selector, dict):
                    continue
                kind, wanted = selector.get("kind"), selector.get("name")
                if (kind in (None, "") or selector_match(str(kind), str(doc.get("kind") or ""))) and \
                        (wanted in (None, "") or not literal(wanted) or name in wanted):
                    return True
    return False


def _matches(selector: dict, res: Resource) -> bool:
    wanted = {k: v for k, v in selector.items() if k in ("group", "version", "kind", "name", "namespace",
                                                          "labelSelector", "annotationSelector")}
    namespaces = {res.namespace, dig(res.doc, "metadata", "namespace") or ""}
    return selected(wanted, res.doc, namespaces, res.names or {res.name})


def _write(res: Resource, field_path: str, value, options: dict, reason: str) -> Resource:
    try:
        parts = _parse(field_path)
    except Unevaluable as e:
        return _replace(res, replaced=res.replaced + ((_known_prefix(field_path), f"{reason}: {e}", False),))
    if value is None:  # the source is unknown: the field is marked, its text kept
        path = _resolve(res.doc, parts, create=False)
        return _replace(res, replaced=res.replaced + ((path or _known_prefix(field_path), reason, False),))
    doc = copy.deepcopy(res.doc)  # parsed documents are cached and shared: never changed in place
    path = _resolve(doc, parts, create=bool(options.get("create")))
    if path is None:
        return res  # kustomize skips a target field that is not there (without `create`)
    if options.get("delimiter"):
        old = str(dig(doc, *path) or "").split(str(options["delimiter"]))
        try:
            index = _index(options)
        except Unevaluable as e:
            return _replace(res, replaced=res.replaced + ((path, f"{reason}: {e}", False),))
        while len(old) <= index:
            old.append("")
        old[index] = str(value)
        value = str(options["delimiter"]).join(old)
    _set(doc, path, value)
    res = _replace(res, doc=doc, replaced=res.replaced + ((path, reason, True),))
    if path == ("metadata", "name"):
        res = _replace(res, name=str(value), names=(res.names or frozenset((res.name,))) | {str(value)})
    elif path == ("metadata", "namespace"):
        res = _replace(res, namespace=str(value))
    return res


def _index(options: dict) -> int:
    index = options.get("index") or 0
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Unevaluable(f"the index `{index}`, which is not a position")
    return index


def _parse(field_path: str) -> list:
    parts = []
    for raw in re.findall(r"\[[^\]]*\]|[^.\[\]]+", field_path):
        if "*" in raw:
            raise Unevaluable(f"the wildcard in `{field_path}`")
        parts.append(raw)
    if not parts:
        raise Unevaluable(f"an empty field path `{field_path}`")
    return parts


def _known_prefix(field_path: str) -> tuple:
    return tuple(p for p in field_path.split(".")[:2] if "*" not in p and "[" not in p)


def _resolve(doc, parts: list, create: bool) -> Optional[tuple]:
    """The concrete path (keys and indexes) of a parsed field path in ``doc``."""
    node, path = doc, []
    for part in parts:
        selector = _SELECTOR.match(part)
        if selector and isinstance(node, list):
            key, wanted = selector.groups()
            index = next((i for i, item in enumerate(node) if isinstance(item, dict)
                          and str(item.get(key)) == wanted), None)
            if index is None:
                return None
            node, path = node[index], path + [index]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node, path = node[int(part)], path + [int(part)]
        elif isinstance(node, dict):
            if part not in node:
                if not create:
                    return None
                node[part] = {}
            node, path = node[part], path + [part]
        else:
            return None
    return tuple(path)


def _set(doc, path: tuple, value) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value
