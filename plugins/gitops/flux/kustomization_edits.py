"""A kustomization a commit changed, as the incremental steps that read it again see it
(``resource_lists``, ``unit_lists``, ``patch_lists``): its spec before and after when only some
of its keys changed, its `resources:` when only those did, and where an environment's build walks it.
"""
from __future__ import annotations

import posixpath
from typing import Optional

from . import images, sharing, units
from .held_releases import ReleaseFiles
from .kustomize import KUSTOMIZATION_FILES, strings
from .manifests import DocumentCache, FileTree
from .tree_index import TreeIndex


def changed_spec(kfile: str, old: FileTree, new: FileTree, cache: DocumentCache, keys: tuple) -> Optional[tuple]:
    """(its spec's document, the spec before, after) when a kustomization's documents are equal
    but for ``keys`` of its spec (the first mapping, in both); else None."""
    was, now = cache.get(old, kfile), cache.get(new, kfile)
    if was.error or now.error or len(was.docs) != len(now.docs):
        return None
    spec = next((i for i, d in enumerate(now.docs) if isinstance(d, dict)), None)
    if spec is None or spec != next((i for i, d in enumerate(was.docs) if isinstance(d, dict)), None):
        return None
    if any(a != b for i, (a, b) in enumerate(zip(was.docs, now.docs)) if i != spec):
        return None
    a, b = was.docs[spec], now.docs[spec]
    if {k: v for k, v in a.items() if k not in keys} != {k: v for k, v in b.items() if k not in keys}:
        return None
    return spec, a, b


def walked_once(kept: ReleaseFiles, kfile: str, index: TreeIndex, change: units.Change) -> Optional[tuple]:
    """(its unit's position, its route) when the environment walks the kustomization once, as the
    one kustomize finds first in its folder (before and after the commit)."""
    found = [(i, chain) for i, unit in enumerate(kept.units) for k, _, chain in unit.build.kustomizations
             if k == kfile]
    if len(found) != 1:
        return None
    folder = posixpath.dirname(kfile)
    for name in KUSTOMIZATION_FILES:
        path = posixpath.join(folder, name) if folder else name
        if path == kfile:
            return found[0]
        if path in index.files or path in change.added:
            return None
    return None


def folders_between(folder: str, path: str) -> Optional[set]:
    """The folders between a kustomization's ``folder`` and ``path`` under it (none for a file of
    the folder itself); None when ``path`` is not under it."""
    found, parent = set(), posixpath.dirname(path)
    while parent != folder:
        if not parent:
            return None
        found.add(parent)
        parent = posixpath.dirname(parent)
    return found


def listed_entries(kfile: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[tuple]:
    """(its `resources:` before, after) when a kustomization's documents are equal but for those,
    each without repeats, kept entries in the same order, the entries added or taken away files
    of its folder not named as a kustomization, and no `bases:` or `components:`; else None."""
    found = changed_spec(kfile, old, new, cache, ("resources",))
    if found is None or "bases" in found[2] or "components" in found[2]:
        return None
    _, a, b = found
    before, after = strings(a.get("resources")), strings(b.get("resources"))
    was_listed, now_listed = set(before), set(after)  # thousands of entries: no list searched
    if len(before) != len((a.get("resources") or [])) or len(after) != len(b.get("resources") or []) or \
            len(was_listed) != len(before) or len(now_listed) != len(after) or \
            [e for e in before if e in now_listed] != [e for e in after if e in was_listed]:
        return None
    for entry in [e for e in before if e not in now_listed] + [e for e in after if e not in was_listed]:
        if entry != entry.strip() or entry in (".", "..") or posixpath.basename(entry) in KUSTOMIZATION_FILES:
            return None
        if "://" in entry or "?ref=" in entry:
            return None  # a remote base: not in this repository
    if sharing.file_references(old, kfile, cache) != sharing.file_references(new, kfile, cache) or \
            images.markers(old, kfile, cache) != images.markers(new, kfile, cache):
        return None
    return before, after
