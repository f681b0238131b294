"""The Git workspace: the one way the core reads and changes a Flux repository.

One clone per repository and branch, reused across commands, never checked out: it holds Git's
objects and refs only. Reads (``head``, ``tree``, ``file_history``, ``log``) come from the objects
through one persistent ``git cat-file --batch``; a ``change`` rewrites existing files and builds
its commit from the objects too (one ``git fast-import``: blobs, trees and the commit, no index,
no worktree) and pushes it. Writes are serialised per workspace (changes waiting together go
out as a group commit: each its own commit, one push) and readers never wait for them;
a failure leaves the remote untouched and the clone's refs where they were (at most an
unreferenced object is left behind).

The package's other modules say what each does (docs/architecture.md maps them); this one is the
façade.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..credentials import CommitSigning
from ..errors import PushRejected
from ..model import Requester
from . import commit as commit_stream
from .branches import BranchWrites
from .clone import Clone
from .commit import author_identity
from .observer import GitObserver
from .signing import signed_commit
from .waiting import WaitingChange
from .objects import FILE_LOG_OPTIONS, LOG_FORMAT, FileRevision, parse_file_log, parse_log, parse_tree
from .trees import GitTree, diffed_tree
from .process import GitCommandFailed, git_environment, process_env, scrub, without_userinfo

__all__ = ["Workspace", "GitTree", "FileRevision", "GitCommandFailed", "git_environment",
           "author_identity", "scrub"]

log = logging.getLogger(__name__)

TREE_CACHE_SIZE = 8  # a listing each (53,000 paths at 10k apps); an evicted one is diffed from another
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class Workspace(BranchWrites):
    """One repository and branch: a clone (never checked out) under ``directory``, reads and
    serialised writes.

    ``fetch_interval``: how old a fetch may be before ``head()`` fetches again. ``skip_fetch_within``:
    how old a fetch may be for ``change()`` to build on it without fetching first (see ``change``).
    ``batch``: how many waiting changes one push may carry (1: each change its own push).
    ``signing``: the key git signs every commit with (``commit.sign``), or None.
    """

    def __init__(self, url: str, branch: str, directory: Path, *,
                 committer: tuple[str, str] = ("Ferry", "ferry@localhost"),
                 git_env: Optional[dict] = None, fetch_interval: float = 5.0,
                 skip_fetch_within: float = 1.0,
                 push_attempts: int = 3, secrets: Sequence[str] = (), timeout: float = 120.0,
                 observe: Optional[GitObserver] = None, batch: int = 1,
                 signing: Optional[CommitSigning] = None):
        self.url, self.branch = url, branch
        self.directory = Path(directory).absolute()
        self.committer = committer
        self.fetch_interval = fetch_interval
        self.skip_fetch_within = skip_fetch_within
        self.push_attempts = max(1, push_attempts)
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._lock = threading.RLock()  # the clone, fetches and writes; reentrant for callbacks
        self.batch, self.signing = max(1, batch), signing  # (see the class's doc)
        self._queue: deque = deque()  # changes waiting for the writer, oldest first
        self._queue_ready = threading.Condition()  # guards the queue, ``_writing``, each answer
        self._writing = False  # a thread is landing a batch
        self._trees: OrderedDict = OrderedDict()
        self._trees_lock = threading.Lock()
        self.observe = observe or GitObserver()  # the metrics: git calls, pushes, retries
        self._clone = Clone(url, branch, self.directory, process_env(git_env or {}, url),
                            timeout=timeout, secrets=self._secrets, public_url=self.public_url,
                            on_clone=self._forget_trees, observe=self.observe)

    def __repr__(self) -> str:
        return f"Workspace({self.public_url}, {self.branch})"

    @property
    def public_url(self) -> str:
        """The URL as a person may see it: no user or password, no secret."""
        return scrub(without_userinfo(self.url), self._secrets)

    @property
    def cloned(self) -> bool:
        """A clone of the remote is on disk: made, fetched or checked by this instance."""
        return self._clone.head is not None or self._clone.verified

    @property
    def waiting(self) -> int:
        """How many changes are queued for the writer (not counting those it is landing)."""
        with self._queue_ready:
            return len(self._queue)

    @property
    def timeout(self) -> float:
        """Seconds any one network operation may take."""
        return self._clone.timeout

    # ---- reading ---------------------------------------------------------------------------

    def head(self, refresh: bool = True) -> str:
        """The sha of origin/<branch>; clones on first use, fetches when the last fetch is stale
        (unless a change is being written: then the tip last seen)."""
        clone = self._clone
        if not refresh and clone.head is not None:
            return clone.head  # kept in step under the lock by every fetch, clone and push
        head = clone.head
        # Readers never wait for a push: the tip last seen is the answer (a change is re-planned).
        if not self._lock.acquire(blocking=head is None or clone.fetched_at is None):
            return head
        try:
            clone.ensure()
            # Never fetched here (or a ref moved outside Ferry): fetch even when not to refresh.
            if clone.fetched_at is None or clone.head is None or (
                    refresh and time.monotonic() - clone.fetched_at >= self.fetch_interval):
                clone.fetch()
            return clone.head
        finally:
            self._lock.release()

    def tree(self, commit: str, near: Optional[str] = None) -> GitTree:
        """The files of ``commit`` (cached, read lazily), diffed from ``near``'s or the last tree."""
        with self._trees_lock:
            tree = self._trees.get(commit)
            if tree is not None:
                self._trees.move_to_end(commit)
                return tree
            base = self._trees.get(near) or next(reversed(self._trees.values()), None)
        tree = diffed_tree(base, commit, self._clone.local) if base is not None else None
        if tree is None:
            blobs, modes = self._repairing(lambda: parse_tree(self._clone.local(
                "ls-tree", "-r", "-z", "--full-tree", commit, "--").stdout))
            tree = GitTree(commit, blobs, self._read_blob, modes, self._clone.reader.blobs)
        self._keep_tree(tree)
        return tree

    def file_history(self, path: str, commit: str, limit: int = 500) -> list[FileRevision]:
        """The commits that changed ``path`` along the first-parent line of ``commit``, newest first.

        One ``git log`` naming the file's blob at each commit; each distinct text once, by that id,
        in one cat-file round trip (``<commit>:<path>`` would walk a fleet's big trees per revision)."""
        revisions = parse_file_log(self._log(commit, limit, *FILE_LOG_OPTIONS, "--", path), path)
        names = [f"{rev.sha}:{path}" if rev.blob is None else rev.blob for rev in revisions]
        wanted = list(dict.fromkeys(filter(None, names)))  # "": the file is not there
        found = self._clone.reader.blobs(wanted)  # what it missed, one by one
        texts = {name: data.decode("utf-8", errors="replace") for name in wanted
                 if (data := found.get(name) or self._read_object(name, "blob")) is not None}
        return [replace(rev, text=texts.get(name)) for rev, name in zip(revisions, names)]

    def log(self, commit: str, limit: int, *selection: str) -> list[FileRevision]:
        """Commits along the first-parent line of ``commit``, newest first, without file texts,
        narrowed by ``selection`` as ``git log`` does (``--grep=…``, ``--`` and paths)."""
        return parse_log(self._log(commit, limit, f"--format={LOG_FORMAT}", *selection))

    def _log(self, commit: str, limit: int, *options: str) -> bytes:
        if any("\n" in a for a in (commit, *options)):
            raise ValueError("a path or commit with a newline")
        self.whole_history()
        # --no-follow: a user's ``log.follow`` would take a file's log through a rename, to another file
        return self._repairing(lambda: self._clone.local(
            "log", "--first-parent", "--no-follow", f"--max-count={int(limit)}", commit, *options).stdout)

    def whole_history(self) -> None:
        """Wait for the history a shallow first clone left out, and take it in (clone.py)."""
        self._clone.whole_history(self._lock)

    # ---- changing --------------------------------------------------------------------------

    def change(self, edit: Callable[[GitTree], Optional[dict]], *, author: Requester,
               message: str) -> Optional[tuple[str, list[str]]]:
        """Commit what ``edit`` makes of the newest tip as ``author``, and push it; never forced.

        ``edit(tree)`` gets a read-only ``GitTree`` of the tip and returns the new text of each
        file it changes, ``{repo-relative path: new full text}`` (written as UTF-8), or None/``{}``
        when there is nothing to do. Only files of the tree are rewritten, each keeping its mode;
        a file whose new text is what the tree holds is not a change. Any other path (new, a
        directory, a symlink, outside the repository) or content is a bug in the caller
        (ValueError, TypeError). Nothing is ever checked out: the commit is built from Git's objects.

        After a rejected push (someone pushed first) ``edit`` runs again on the new tip, up to
        ``push_attempts`` pushes; a refusal for any other reason (a hook, a protected branch) is
        ``PushRejected`` at once. ``edit`` must therefore plan from the tree it is given only.
        Returns (commit sha, changed paths sorted), or None when nothing was committed. On any
        failure the remote is untouched and the clone's refs are where they were.

        Changes waiting for the same workspace are a group commit (``batch`` > 1): the first to
        reach the writer takes up to ``batch`` changes queued behind it, plans each on the tip
        its predecessor made (its own commit, author and message), and pushes the chain in one
        ``git push``; a rejected push redoes the chain on the new tip. What ``edit`` raises is
        that change's own answer and leaves it out of the chain; the others go on.

        The fetch before the first plan is skipped when the last fetch (or push) is younger than
        ``skip_fetch_within`` seconds — typically the caller's own ``head()`` a moment before.
        That is safe: the commit's parent is the tip we know, and a push that is not forced lands
        only if that is still the remote's tip, so a stale base costs a rejected push and a retry
        that does fetch, never someone's commit or a merge. A "nothing to do" decided on an
        unfetched base is checked by fetching: if the tip moved, ``edit`` plans again on it.
        """
        if not message.strip():
            raise ValueError("a commit needs a message")
        request = WaitingChange(edit, author, message)
        with self._queue_ready:
            self._queue.append(request)
        while True:
            with self._queue_ready:
                while not request.done and self._writing:
                    self._queue_ready.wait()
                if request.done:
                    return request.outcome()
                self._writing = True  # this thread is the writer: it serves the queue's head
                batch = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                with self._lock:
                    self._write(batch)
            finally:
                with self._queue_ready:
                    for queued in batch:  # whatever escaped (an interrupt) is each one's answer
                        if not queued.done:
                            queued.result, queued.error = None, RuntimeError("the write was interrupted")
                            queued.done = True
                    self._writing = False
                    self._queue_ready.notify_all()

    def close(self) -> None:
        """Stop the persistent cat-file (a later read starts one) and a history being cloned."""
        self._clone.close()

    def _write(self, batch: list) -> None:
        """Land ``batch``'s changes as one chain of commits in one push, each answered; a push
        a hook or a protected branch refuses is tried again one change at a time, so that each
        refusal answers only the change it is about."""
        try:
            self._land(batch)
        except PushRejected as refused:
            waiting = [r for r in batch if not r.done]
            if len(waiting) == 1:
                self._settle(waiting[0], error=refused)
            else:
                for request in waiting:
                    self._write([request])
        except Exception as failed:  # the remote or the clone: the same answer for each
            for request in batch:
                if not request.done:
                    self._settle(request, error=failed)

    def _land(self, batch: list) -> None:
        clone = self._clone
        clone.ensure()
        unfetched = (clone.fetched_at is not None
                     and time.monotonic() - clone.fetched_at < self.skip_fetch_within)
        if not unfetched:
            clone.fetch()
        pushes, repaired = 0, False
        while True:
            base = clone.head
            try:
                chain, trees, nothing = self._chain(base, [r for r in batch if not r.done])
            except GitCommandFailed:
                # The clone is checked once per instance: one broken since is repaired here, once.
                if repaired:
                    raise
                repaired, clones, clone.verified = True, clone.clones, False
                clone.ensure()
                if clone.clones == clones:  # the clone is sound: the failure is real
                    raise
                unfetched = False  # a new clone is a fetch: plan again on its tip
                continue
            if nothing and unfetched:  # "nothing to do" must hold for the remote's tip, not a guess of it
                unfetched = False
                clone.fetch()
                if clone.head != base:
                    continue
            if not chain:
                for request in nothing:
                    self._settle(request, None)
                return
            pushes += 1
            tip = chain[-1][1]
            if clone.push(tip):
                # The push landed: nothing after this line may turn it into a reported failure.
                clone.pushed(tip)
                for tree in trees:
                    self._keep_tree(tree)  # the next plans need no ls-tree
                for request, sha, paths in chain:
                    self.observe.pushed()
                    log.info("pushed %s to %s (%s)", sha[:12], self.public_url, ", ".join(paths))
                    self._settle(request, (sha, paths))
                for request in nothing:
                    self._settle(request, None)
                self.observe.landed(tip)
                return
            if pushes >= self.push_attempts:
                kept_moving = PushRejected(
                    f"The Git repository {self.public_url} kept moving: the push was rejected "
                    f"{self.push_attempts} times because others pushed at the same moment. Try again.")
                for request in batch:
                    if not request.done:
                        self._settle(request, error=kept_moving)
                return
            self.observe.retried("moved")
            log.info("push %d/%d to %s rejected: the branch moved; re-planning %d change(s) on the "
                     "new tip", pushes, self.push_attempts, self.public_url, len(chain))
            clone.ensure()
            clone.fetch()
            unfetched = False

    def _chain(self, base: str, requests: list) -> tuple[list, list, list]:
        """Each change planned on the tip its predecessor made and committed there: [(request,
        sha, paths)], the trees of those commits, and the changes with nothing to do. What an
        edit raises is its change's own answer; the chain goes on without it."""
        tree = self.tree(base)
        chain, trees, nothing = [], [], []
        for request in requests:
            try:
                writes = commit_stream.planned_writes(tree, request.edit(tree))
            except Exception as refused:  # noqa: BLE001 - the requester's thread raises it
                self._settle(request, error=refused)
                continue
            if not writes:
                nothing.append(request)
                continue
            sha = self._commit(tree.commit, writes, request.author, request.message)
            tree = tree.changed(sha, writes)
            self._keep_tree(tree)  # the next link's plan reads its parent's pins: no ls-tree
            trees.append(tree)
            chain.append((request, sha, [path for path, _, _, _ in writes]))
        return chain, trees, nothing

    def _settle(self, request: "WaitingChange", result=None, error: Optional[BaseException] = None) -> None:
        """Give one waiting change its answer, and wake its requester."""
        with self._queue_ready:
            request.result, request.error, request.done = result, error, True
            self._queue_ready.notify_all()

    def _commit(self, base: str, writes: list, author: Requester, message: str) -> str:
        """One commit on ``base`` with ``writes``, by one ``git fast-import``: it writes the blobs,
        the trees along the changed paths and the commit, and no ref (objects stay loose below
        ``fastimport.unpackLimit``, for ``gc --auto`` to pack). Signed commits (``signing``): the
        same commit written again by ``git commit-tree -S`` over fast-import's tree, so git signs
        it; the unsigned one stays behind unreferenced."""
        stream = commit_stream.fast_import_stream(base, writes, author, self.committer, message)
        out = self._clone.local("fast-import", "--quiet", "--done", "--date-format=now",
                                stdin=stream).stdout.decode().strip()
        if not _OBJECT_ID.fullmatch(out):
            raise GitCommandFailed(["fast-import"], 0, f"no commit id in its output: {out[:100]!r}")
        return out if self.signing is None else signed_commit(
            self._clone, self.signing, base, out, author, self.committer, message, self._secrets)

    # ---- reading objects, repairing the clone under a read -----------------------------------

    def _keep_tree(self, tree: GitTree) -> None:
        with self._trees_lock:
            self._trees[tree.commit] = tree
            self._trees.move_to_end(tree.commit)
            while len(self._trees) > TREE_CACHE_SIZE:
                self._trees.popitem(last=False)

    def _forget_trees(self) -> None:
        with self._trees_lock:
            self._trees.clear()

    def _read_blob(self, sha: str) -> Optional[bytes]:
        data = self._read_object(sha, "blob")
        if data is None:
            # A blob the clone's own tree lists is missing (lost or damaged): clone again, once.
            with self._lock:
                if self._clone.reader.read(sha) is None:
                    log.warning("the clone of %s at %s lost object %s: cloning again",
                                self.public_url, self.directory, sha[:12])
                    self._clone.clone()
            data = self._read_object(sha, "blob")
        return data

    def _read_object(self, name: str, kind: str) -> Optional[bytes]:
        found = self._repairing(lambda: self._clone.reader.read(name))
        return found[1] if found is not None and found[0] == kind else None

    def _repairing(self, read: Callable):
        """Run a local read; if the clone broke under it, repair the clone (re-clone) and retry once."""
        try:
            return read()
        except GitCommandFailed as first:
            with self._lock:
                self._clone.verified = False
                self._clone.ensure()
            self.whole_history()  # a commit the first clone (the tip only) does not hold yet
            try:
                return read()
            except GitCommandFailed:
                raise first from None
