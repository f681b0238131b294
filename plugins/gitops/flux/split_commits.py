"""A commit of several kinds (a squash-merged pull request: an app listed, another patched, a
third's values changed) followed as one commit per kind, through the trees between them, so that
it costs what each kind costs, not a build of the environment.

The kinds, in turn: kustomizations' `resources:` (``resource_lists``), their `images:`
(``image_lists``), then patches, a kustomization's or a Flux Kustomization's (``patch_lists``,
``flux_patches``), then variables' values or keys (``variable_values``, ``variable_lists``), then
the files read as releases or patches (``release_files``). The tree after each kind is the one
before with the commit's files of that kind: a kustomization whose `resources:` changed lists
there what it lists after the commit (that block of its text taken from the commit, everything
else from the parent: checked to parse to exactly that), with the files its new entries name (or
without those it lists no more);
then its `images:` the same way; then the commit's kustomizations, Flux Kustomizations whose
patches changed and the other files it adds or removes; then the files whose documents differ in
variables' values only; then the rest. A list the parent had not is added last; one the commit
has not is taken out. Each step must be proven as that kind's own step proves it (any refusing:
None, the environment is built again), and the fold then reads again what differs from the
parent, once.
"""
from __future__ import annotations

import posixpath
import re
from typing import Optional

from . import (flux_patches, image_lists, patch_lists, release_files, resource_lists, units, variable_lists,
               variable_values)
from .kustomization_edits import changed_spec
from .kustomize import KUSTOMIZATION_FILES, join_path, strings
from .manifests import DocumentCache, FileTree, git_blob_id
from .patches import PATCH_KEYS
from .tree_index import TreeIndex
from ..settings import Settings

def in_steps(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
             settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing, the patches that only moved
    in their lists) from those of ``old``, the commit followed one kind at a time (see the
    module's doc); None when it is of one kind only (its own step follows it) or a step refuses."""
    change = units.change(old, new)
    if index is None or not change.changed:
        return None
    steps = _steps(old, new, change, cache)
    if steps is None:
        return None
    places, before = {}, old
    for step, after in steps:
        found = step(parts, read, before, after, index, settings, cache)
        if found is None:
            return None
        parts, read, index = found[:3]
        places.update(found[3] if len(found) > 3 else {})
        before = after
    return parts, read, index, places


def _listing(parts, read, old, new, index, settings, cache):
    return resource_lists.relist(parts, read, old, new, index, settings, cache)


def _patches(parts, read, old, new, index, settings, cache):
    return patch_lists.repatch(parts, read, old, new, index, settings, cache) or \
        flux_patches.repatch(parts, read, old, new, index, settings, cache)


def _values(parts, read, old, new, index, settings, cache):
    found = variable_values.revalue(parts, old, new, settings, cache)
    return (found[0], read, index) if found is not None else \
        variable_lists.redefine(parts, read, old, new, index, settings, cache)


def _images(parts, read, old, new, index, settings, cache):
    return image_lists.reimage(parts, read, old, new, index, settings, cache)


def _files(parts, read, old, new, index, settings, cache):
    found = release_files.reread(parts, old, new, settings, cache)
    return None if found is None else (found[0], read, index)


def _steps(old: FileTree, new: FileTree, change: units.Change, cache: DocumentCache) -> Optional[list]:
    """[(the step of one kind, the tree after it)] of the commit's kinds, in turn; None when it
    has one kind only, or a kustomization changed otherwise than in `resources:`, `images:` and
    patches."""
    texts, images, patches, values, rest = {}, {}, {}, {}, {}
    came, went = set(), set()
    expected = {}  # (kind's texts, kustomization) -> (its spec's document, the spec there)
    for path in sorted(change.changed):
        if posixpath.basename(path) not in KUSTOMIZATION_FILES:
            kind = patches if flux_patches.changed_patches(path, old, new, cache) else \
                values if variable_values.changed_values(path, old, new, cache) or \
                variable_lists.changed_data(path, old, new, cache) else rest
            kind[path] = new.read(path)
            continue
        found = changed_spec(path, old, new, cache, ("resources", "images") + PATCH_KEYS)
        if found is None:
            return None
        at, was, now = found
        text, spec = old.read(path), was
        for key, kind in (("resources", texts), ("images", images)):
            if was.get(key) != now.get(key):
                text = _spliced(text, new.read(path), key)
                if text is None:
                    return None
                spec = {**spec, key: now[key]} if key in now else {k: v for k, v in spec.items() if k != key}
                kind[path] = text
                expected[(id(kind), path)] = (at, spec)
        if was.get("resources") != now.get("resources"):
            folder = posixpath.dirname(path)
            before, after = set(strings(was.get("resources"))), set(strings(now.get("resources")))
            came.update(join_path(folder, entry) for entry in after - before)
            went.update(join_path(folder, entry) for entry in before - after)
        if git_blob_id(text.encode()) != new.blob_id(path):
            patches[path] = new.read(path)

    def under(path: str, entries: set) -> bool:
        return path in entries or any(path.startswith(entry + "/") for entry in entries)

    added = frozenset(p for p in change.added if under(p, came))
    removed = frozenset(p for p in change.removed if under(p, went))
    more = (patches, change.added - added, change.removed - removed)
    kinds = [(_listing, (texts, added, removed) if texts else None),
             (_images, (images, frozenset(), frozenset()) if images else None),
             (_patches, more if any(more) else None),
             (_values, (values, frozenset(), frozenset()) if values else None),
             (_files, (rest, frozenset(), frozenset()) if rest else None)]
    kinds = [(step, files) for step, files in kinds if files is not None]
    if len(kinds) < 2:
        return None  # one kind: its own step follows it
    steps, tree = [], old
    for step, files in kinds:
        tree = Between(tree, new, *files)
        steps.append((step, tree))
        for path in files[0]:
            if (id(files[0]), path) in expected:  # parsed once, through the cache the steps read
                at, spec = expected[(id(files[0]), path)]
                docs = list(cache.get(old, path).docs)
                docs[at] = spec
                found = cache.get(tree, path)
                if found.error or list(found.docs) != docs:
                    return None  # not the parent's kustomization with the commit's list
    return steps


def _spliced(old_text: str, new_text: str, key: str) -> Optional[str]:
    """``old_text`` with its top-level ``key`` block as ``new_text`` writes it (added last when it
    had none, taken out when the new one has none), or None when either has more than one."""
    was, now = _block(old_text, key), _block(new_text, key)
    if was is None or now is None or was == () and now == ():
        return None
    old_lines, new_lines = old_text.splitlines(keepends=True), new_text.splitlines(keepends=True)
    written = new_lines[now[0]:now[1]] if now else []
    if not was:
        return old_text + ("" if old_text.endswith("\n") or not old_text else "\n") + "".join(written)
    return "".join(old_lines[:was[0]] + written + old_lines[was[1]:])


def _block(text: str, key: str) -> Optional[tuple]:
    """(first line, end) of the top-level ``key`` and the lines under it; () when there is none,
    None when there is more than one."""
    lines = text.splitlines()
    pattern = re.compile(re.escape(key) + r":[ \t]*(#.*)?$|" + re.escape(key) + r":[ \t]*\[[^\]]*\][ \t]*(#.*)?$")
    starts = [i for i, line in enumerate(lines) if pattern.match(line)]
    if len(starts) != 1:
        return () if not starts and not any(line.startswith(key + ":") for line in lines) else None
    end = starts[0] + 1
    if "[" not in lines[starts[0]]:  # a block: the lines under it (indented, items, comments, blank)
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-#"):
            end += 1
    return starts[0], end


class Between:
    """A tree between two commits: ``base`` with ``texts`` in place of its files, ``added`` (as
    ``new`` has them) and without ``removed``."""

    def __init__(self, base: FileTree, new: FileTree, texts: dict, added: frozenset, removed: frozenset):
        self._base, self._new, self._texts = base, new, texts
        self._added, self._removed = added, removed
        self._ids = {path: git_blob_id(text.encode()) for path, text in texts.items()}
        parent = getattr(base, "commit", None)
        self.commit = f"{parent} with {len(texts)} file(s) of the next commit"
        changed = frozenset(path for path in texts if self._ids[path] != base.blob_id(path))
        # Made from ``base`` by these files: ``units.change`` reads them, not both listings.
        self.diffed_from = (parent, changed, added, removed)

    def files(self) -> list[str]:
        return sorted((set(self._base.files()) - self._removed) | self._added)

    def read(self, path: str) -> str:
        if path in self._texts:
            return self._texts[path]
        return self._new.read(path) if path in self._added else self._tree(path).read(path)

    def blob_id(self, path: str) -> str:
        if path in self._ids:
            return self._ids[path]
        return self._new.blob_id(path) if path in self._added else self._tree(path).blob_id(path)

    def _tree(self, path: str) -> FileTree:
        if path in self._removed:
            raise FileNotFoundError(path)
        return self._base
