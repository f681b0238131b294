"""The files and folders of one commit's tree, as kustomize looks for them: which paths exist,
each folder's files and subfolders, its kustomization, globs; kept per commit and moved by the
paths a commit adds and removes (``moved``), not made again over 53,000 paths."""
from __future__ import annotations

import bisect
import fnmatch
import posixpath
from typing import Optional

from .kustomize import KUSTOMIZATION_FILES


class TreeIndex:
    """The files and folders of a tree, for globbing and for walking folders."""

    def __init__(self, files):
        self.files = set(files)
        self.children: dict = {}  # folder -> (files, subfolders) directly in it
        for path in sorted(self.files):
            parent = posixpath.dirname(path)
            self.children.setdefault(parent, ([], set()))[0].append(path)
            while parent:  # register every ancestor folder
                grand = posixpath.dirname(parent)
                subs = self.children.setdefault(grand, ([], set()))[1]
                if parent in subs:
                    break
                subs.add(parent)
                parent = grand

    def moved(self, added, removed) -> "TreeIndex":
        """What an index of this listing with ``added`` paths and without ``removed`` ones holds,
        made from the paths that moved (this one stays as it is: another commit's)."""
        index = TreeIndex(())
        index.files = (self.files - set(removed)) | set(added)
        index.children = dict(self.children)
        copied: set = set()

        def entry(folder: str) -> tuple:  # the folder's own lists, copied before a change
            if folder not in copied:
                files, subfolders = index.children.get(folder, ([], set()))
                index.children[folder] = (list(files), set(subfolders))
                copied.add(folder)
            return index.children[folder]

        for path in removed:
            parent = posixpath.dirname(path)
            entry(parent)[0].remove(path)
            while not any(entry(parent)):  # a folder left empty is no folder
                del index.children[parent]
                copied.discard(parent)
                if not parent:
                    break
                entry(posixpath.dirname(parent))[1].discard(parent)
                parent = posixpath.dirname(parent)
        for path in added:
            parent = posixpath.dirname(path)
            bisect.insort(entry(parent)[0], path)
            while parent:
                grand = posixpath.dirname(parent)
                if parent in entry(grand)[1]:
                    break
                entry(grand)[1].add(parent)
                parent = grand
        return index

    def is_dir(self, path: str) -> bool:
        return path in self.children

    def kustomization(self, folder: str) -> Optional[str]:
        for name in KUSTOMIZATION_FILES:
            path = posixpath.join(folder, name) if folder else name
            if path in self.files:
                return path
        return None

    def expand(self, pattern: str) -> list[str]:
        """Files and folders matching a path or a glob (``*`` within a segment, ``**`` across)."""
        pattern = pattern.strip("/")
        if pattern in ("", "."):
            return [""]
        if not any(c in pattern for c in "*?["):
            return [pattern] if pattern in self.files or self.is_dir(pattern) else []
        parts = pattern.split("/")
        candidates = sorted(self.files | set(self.children) - {""})
        return [c for c in candidates if _match_segments(parts, c.split("/"))]


def _match_segments(pattern: list, parts: list) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_segments(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and \
        _match_segments(pattern[1:], parts[1:])
