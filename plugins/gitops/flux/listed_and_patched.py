"""A commit that lists and patches at once (kustomizations whose `resources:` and patches both
changed, or a Flux Kustomization's patches with them: an app promoted to an environment with
values of its own), followed as two commits: its `resources:` first (``resource_lists``), then its
patches (``patch_lists``, ``flux_patches``), through the tree between them, so that it costs what
each half costs, not a build of the environment.

The tree between is the commit's parent with those kustomizations listing what they list after
it (their `resources:` text taken from the commit, everything else from the parent) and the files
their entries added name (or those they took away no more); the commit's other files come in the
second half. It is checked to be that: each kustomization between parses to its parent's
documents with the commit's `resources:`, and its listing is the parent's moved by those files.
Each half is then proven as its own step proves it (either refuses: None, the environment is
built again), and the fold reads again what differs from the parent, once.
"""
from __future__ import annotations

import posixpath
import re
from typing import Optional

from . import flux_patches, patch_lists, resource_lists, units
from .kustomization_edits import changed_spec
from .kustomize import KUSTOMIZATION_FILES, join_path, strings
from .manifests import DocumentCache, FileTree, git_blob_id, parse_documents
from .patches import PATCH_KEYS
from .tree_index import TreeIndex
from ..settings import Settings

_RESOURCES = re.compile(r"resources:[ \t]*(#.*)?$|resources:[ \t]*\[[^\]]*\][ \t]*(#.*)?$")


def relist_and_repatch(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
                       settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """What ``patch_lists.repatch`` gives of the tree between and ``new``, after
    ``resource_lists.relist`` of ``old`` and the tree between (see the module's doc); else None."""
    change = units.change(old, new)
    if index is None or not change.changed:
        return None
    between = _between(old, new, change, cache)
    if between is None:
        return None
    listed = resource_lists.relist(parts, read, old, between, index, settings, cache)
    if listed is None:
        return None
    then = between.then(new)
    found = patch_lists.repatch(*listed[:2], between, then, listed[2], settings, cache)
    return found if found is not None else flux_patches.repatch(*listed[:2], between, then, listed[2], settings, cache)


def _between(old: FileTree, new: FileTree, change: units.Change, cache: DocumentCache) -> Optional["Between"]:
    """The tree between (``Between``) when the commit changes kustomizations' `resources:` and
    patches only, both, and each kustomization between is what it must be; else None."""
    texts, came, went = {}, set(), set()
    patched = False
    for kfile in sorted(change.changed):
        if posixpath.basename(kfile) not in KUSTOMIZATION_FILES:
            patched = True  # a Flux Kustomization's patches, perhaps: the second half's to prove
            continue
        found = changed_spec(kfile, old, new, cache, ("resources",) + PATCH_KEYS)
        if found is None:
            return None
        at, was, now = found
        patched = patched or any(was.get(key) != now.get(key) for key in PATCH_KEYS)
        if was.get("resources") == now.get("resources"):
            continue
        text = _spliced(old.read(kfile), new.read(kfile))
        if text is None:
            return None
        docs, error = parse_documents(text)
        expected = list(cache.get(old, kfile).docs)
        expected[at] = {**was, "resources": now["resources"]} if "resources" in now else \
            {k: v for k, v in was.items() if k != "resources"}
        if error or docs != expected:
            return None  # not the parent's kustomization with the commit's `resources:`
        texts[kfile] = text
        folder = posixpath.dirname(kfile)
        before, after = set(strings(was.get("resources"))), set(strings(now.get("resources")))
        came.update(join_path(folder, entry) for entry in after - before)
        went.update(join_path(folder, entry) for entry in before - after)
    if not texts or not patched:
        return None  # one half only: its own step follows it

    def under(path: str, entries: set) -> bool:
        return path in entries or any(path.startswith(entry + "/") for entry in entries)

    return Between(old, new, texts, frozenset(p for p in change.added if under(p, came)),
                   frozenset(p for p in change.removed if under(p, went)))


def _spliced(old_text: str, new_text: str) -> Optional[str]:
    """``old_text`` with its top-level `resources:` block as ``new_text`` writes it, or None when
    either has no one such block."""
    was, now = _block(old_text), _block(new_text)
    if was is None or now is None:
        return None
    old_lines, new_lines = old_text.splitlines(keepends=True), new_text.splitlines(keepends=True)
    return "".join(old_lines[:was[0]] + new_lines[now[0]:now[1]] + old_lines[was[1]:])


def _block(text: str) -> Optional[tuple]:
    """(first line, end) of the top-level `resources:` key and the lines under it."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _RESOURCES.match(line)]
    if len(starts) != 1:
        return None
    end = starts[0] + 1
    if "[" not in lines[starts[0]]:  # a block: the lines under it (indented, items, comments, blank)
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-#"):
            end += 1
    return starts[0], end


class Between:
    """The tree between the commit's parent (``old``) and the commit (``new``): the parent with
    ``texts`` in place of its files, ``added`` (as the commit has them) and without ``removed``."""

    def __init__(self, old: FileTree, new: FileTree, texts: dict, added: frozenset, removed: frozenset):
        self._old, self._new, self._texts = old, new, texts
        self._added, self._removed = added, removed
        self._ids = {path: git_blob_id(text.encode()) for path, text in texts.items()}
        parent = getattr(old, "commit", None)
        self.commit = f"{parent} with its resources listed as the next commit lists them"
        # Made from the parent by these files: ``units.change`` reads them, not both listings.
        self.diffed_from = (parent, frozenset(texts), added, removed)

    def files(self) -> list[str]:
        return sorted((set(self._old.files()) - self._removed) | self._added)

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
        return self._old

    def then(self, new: FileTree) -> "Next":
        """The commit, as made from this tree."""
        change = units.change(self._old, new)
        return Next(new, (self.commit, frozenset(p for p in change.changed if self.blob_id(p) != new.blob_id(p)),
                          change.added - self._added, change.removed - self._removed))


class Next:
    """The commit as made from the tree between (``Between.then``): its files, read as they are."""

    def __init__(self, tree: FileTree, diffed_from: tuple):
        self._tree, self.diffed_from = tree, diffed_from
        self.commit = getattr(tree, "commit", None)

    def files(self) -> list[str]:
        return self._tree.files()

    def read(self, path: str) -> str:
        return self._tree.read(path)

    def blob_id(self, path: str) -> str:
        return self._tree.blob_id(path)
