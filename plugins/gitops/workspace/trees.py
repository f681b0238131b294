"""A commit's files as Ferry reads them: its listing (path -> blob sha), shared with the commits
made from it, and their texts read lazily from Git's objects."""
from __future__ import annotations

import bisect
import itertools
from typing import Callable, Optional

from .objects import READ_AHEAD, READ_AHEAD_AFTER, parse_diff
from .process import GitCommandFailed


class Listing:
    """Path -> blob sha of one commit: a full listing shared by every tree made from it, and what
    differs from it (``None``: removed). A fetched commit or one of Ferry's is a few paths over
    the listing in hand, not another copy of 53,000; past ``FLATTEN`` paths, a full one again."""

    __slots__ = ("_base", "_delta")
    FLATTEN = 4096

    def __init__(self, base: dict, delta: Optional[dict] = None):
        self._base, self._delta = base, delta or {}

    def get(self, path: str, default=None):
        sha = self._delta.get(path, _SAME)
        if sha is _SAME:
            return self._base.get(path, default)
        return default if sha is None else sha

    def __getitem__(self, path: str) -> str:
        sha = self.get(path)
        if sha is None:
            raise KeyError(path)
        return sha

    def __contains__(self, path: object) -> bool:
        return self.get(path) is not None

    def __iter__(self):
        delta = self._delta
        if not delta:
            return iter(self._base)
        return itertools.chain((p for p in self._base if p not in delta),
                               (p for p, sha in delta.items() if sha is not None))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def moved(self, changes: dict) -> "Listing":
        """This listing with ``changes`` (path -> blob sha, or None: removed)."""
        delta = {**self._delta, **changes}
        if len(delta) <= self.FLATTEN:
            return Listing(self._base, delta)
        base = dict(self._base)
        for path, sha in delta.items():
            if sha is None:
                base.pop(path, None)
            else:
                base[path] = sha
        return Listing(base)


_SAME = object()  # a path the delta does not name: the full listing says


class GitTree:
    """A read-only view of one commit, listed once and read lazily from Git's objects.

    Nothing is ever checked out, so no writer can show a reader a half-made state. Symlinks and
    submodules are left out of ``files()``: they are not manifests Flux reads (and a change may
    not write over them).
    """

    def __init__(self, commit: str, blobs: dict, read_object: Callable[[str], Optional[bytes]],
                 modes: Optional[dict] = None, read_ahead: Optional[Callable[[list], dict]] = None):
        self.commit = commit
        self._blobs = blobs if isinstance(blobs, Listing) else Listing(blobs)  # path -> blob sha
        self._read_object = read_object
        self._read_ahead = read_ahead  # blob shas -> contents, best effort (``ObjectReader.blobs``)
        self._misses = 0  # files read from Git one by one
        self._modes = modes or {}  # path -> mode, for the blobs whose mode is not 100644
        self._texts: dict = {}
        self._sorted: Optional[list] = None
        # (parent commit, paths) when made by ``changed``: the same listing, only those rewritten
        self.rewritten_from: Optional[tuple] = None
        # (other commit, changed, added, removed paths) when made by ``diffed`` from that commit's
        self.diffed_from: Optional[tuple] = None

    def files(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._blobs)
        return list(self._sorted)

    def blob_id(self, path: str) -> str:
        try:
            return self._blobs[path]
        except KeyError:
            raise FileNotFoundError(f"{path} is not in commit {self.commit[:12]}") from None

    def mode(self, path: str) -> str:
        """The file's Git mode: ``100644``, or ``100755`` for an executable."""
        self.blob_id(path)
        return self._modes.get(path, "100644")

    def read(self, path: str) -> str:
        text = self._texts.get(path)
        if text is None and self._read_ahead is not None:
            self._misses += 1
            if self._misses >= READ_AHEAD_AFTER:
                self._read_following(path)
                text = self._texts.get(path)
        if text is None:
            data = self._read_object(self.blob_id(path))
            if data is None:
                raise FileNotFoundError(f"{path}: object missing from the clone at {self.commit[:12]}")
            text = self._texts[path] = data.decode("utf-8", errors="replace")
        return text

    def forget_texts(self) -> None:
        """Let go of the texts read so far (a discovery reads every file once, then its parse
        cache has what it needs); a later ``read`` reads from Git again."""
        self._texts = {}

    def _read_following(self, path: str) -> None:
        """``path`` and the files after it (in order) not read yet, in one batch."""
        if self._sorted is None:
            self._sorted = sorted(self._blobs)
        start = bisect.bisect_left(self._sorted, path)
        batch = [p for p in self._sorted[start:start + READ_AHEAD] if p not in self._texts]
        if path not in batch:
            return
        found = self._read_ahead([self._blobs[p] for p in batch])
        for p in batch:
            data = found.get(self._blobs[p])
            if data is not None:
                self._texts[p] = data.decode("utf-8", errors="replace")

    def changed(self, commit: str, writes: list) -> "GitTree":
        """The tree of ``commit``, made from this one by ``writes`` [(path, mode, data, blob id)]:
        a commit of ours is known without listing it."""
        blobs = self._blobs.moved({path: blob for path, _, _, blob in writes})
        tree = GitTree(commit, blobs, self._read_object, self._modes, self._read_ahead)
        tree._texts.update((path, data.decode("utf-8", errors="replace"))
                           for path, _, data, _ in writes)
        tree._sorted = self._sorted  # the same listing: a change rewrites existing files only
        tree.rewritten_from = (self.commit, tuple(path for path, _, _, _ in writes))
        return tree

    def diffed(self, commit: str, changes: list) -> "GitTree":
        """The tree of ``commit``, made from this one by ``changes`` (``parse_diff``: what ``git
        diff-tree`` says differs): another commit known without listing all of it."""
        modes, moved = dict(self._modes), {}
        changed, added, removed = [], [], []
        for path, mode, sha in changes:
            had = self._blobs.get(path)
            moved[path] = sha
            modes.pop(path, None)
            if sha is not None and mode != "100644":
                modes[path] = mode
            if had is None and sha is not None:
                added.append(path)
            elif had is not None and sha is None:
                removed.append(path)
            elif had != sha:
                changed.append(path)
        tree = GitTree(commit, self._blobs.moved(moved), self._read_object, modes, self._read_ahead)
        if not added and not removed:
            tree._sorted = self._sorted
        tree.diffed_from = (self.commit, tuple(changed), tuple(added), tuple(removed))
        return tree

    def __contains__(self, path: object) -> bool:
        return path in self._blobs

    def __repr__(self) -> str:
        return f"GitTree({self.commit[:12]}, {len(self._blobs)} files)"


def diffed_tree(base: GitTree, commit: str, local: Callable) -> Optional[GitTree]:
    """The tree of ``commit`` made from ``base`` by what ``git diff-tree`` says differs (``local``
    runs git in the clone): the work of the commits between, not one ``ls-tree`` of the fleet.
    None when ``base``'s commit is gone (a clone made again): list ``commit`` instead."""
    try:
        return base.diffed(commit, parse_diff(local(
            "diff-tree", "-r", "-z", "--no-renames", base.commit, commit, "--").stdout))
    except GitCommandFailed:
        return None
