"""The Git workspace: the one way the core reads and changes a Flux repository.

One clone per repository and branch, reused across commands, never checked out: it holds Git's
objects and refs only. Reads (``head``, ``tree``, ``file_history``, ``log``) come from the objects
through one persistent ``git cat-file --batch``; a ``change`` builds its commit from the objects
too (one ``git fast-import``: blobs, trees and the commit, no index, no worktree) and pushes it.
Writes are serialised per workspace and readers never wait for them; a failure leaves the remote
untouched and the clone's refs where they were (at most an unreferenced object is left behind).

Git runs as a plain subprocess (not GitPython's wrappers) so that every call gets the same
bounded timeout, a scrubbed stderr and one classification of failures; GitPython's push also
logs the raw stderr itself, where a remote's message could carry a secret.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import GitUnauthorized, GitUnavailable, PushRejected
from .model import Requester

log = logging.getLogger(__name__)

PLACEHOLDER_EMAIL_DOMAIN = "users.ferry.invalid"
TOKEN_VARIABLE = "FERRY_GIT_TOKEN"
TREE_CACHE_SIZE = 16
GC_EVERY = 25  # pushes between two ``gc --auto`` checks (each is cheap, but a process)
_SCRATCH_REF = "refs/ferry/pending"  # named in fast-import's input only; never written

# Settings every git call gets, whatever the machine's global config says: no hooks, no signing
# prompts, no line-ending rewrites, no background gc racing the bot or its tests.
_PINNED_CONFIG = (
    ("core.hooksPath", "/dev/null"),
    ("commit.gpgsign", "false"),
    ("tag.gpgsign", "false"),
    ("core.autocrlf", "false"),
    ("core.fsmonitor", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("log.showSignature", "false"),
    # History reads: a commit-graph with changed-path Bloom filters (written after the clone) makes
    # a path-limited `git log` skip the diff of nearly every commit; every fetch adds a layer for
    # what it brought, and a layer written on top of one with Bloom filters gets them too.
    ("core.commitGraph", "true"),
    ("commitGraph.readChangedPaths", "true"),
    ("fetch.writeCommitGraph", "true"),
)
# Variables that would point git at another repository than the clone, or stack config on ours.
_FOREIGN_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                      "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
                      "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT")

_ASKPASS_SCRIPT = """#!/bin/sh
# Ferry's GIT_ASKPASS: answers git from the environment, so the token is in no URL, argv or file.
case "$1" in
  [Uu]sername*) printf '%s\\n' "${FERRY_GIT_USERNAME:-x-access-token}" ;;
  *) printf '%s\\n' "$FERRY_GIT_TOKEN" ;;
esac
"""
_askpass_lock = threading.Lock()
_askpass_dir: Optional[Path] = None

# What git says, mapped to what a person can do about it (checked in this order).
_UNAUTHORIZED = re.compile(
    r"authentication failed|permission denied \(publickey|could not read (username|password)"
    r"|returned error: 40[13]|access denied|invalid username or password|terminal prompts disabled"
    r"|HTTP Basic: Access denied|403 Forbidden|401 Unauthorized", re.I)
_NO_BRANCH = re.compile(r"remote branch .* not found|couldn't find remote ref", re.I)
_REASONS = (
    (re.compile(r"could not resolve host|name or service not known|temporary failure in name", re.I),
     "host not found"),
    (re.compile(r"connection refused|failed to connect", re.I), "connection refused"),
    (re.compile(r"timed out|operation too slow", re.I), "timed out"),
    (re.compile(r"does not appear to be a git repository|not found|no such file|does not exist", re.I),
     "no repository there"),
)
# The branch moved under the push: plainly (fetch first), or mid-race at the server's ref update.
_MOVED = re.compile(r"^\[rejected\].*\((fetch first|non-fast-forward)\)"
                    r"|^\[remote rejected\].*\((failed to update ref|incorrect old value provided)"
                    r"|cannot lock ref '[^']*': is at [0-9a-f]+ but expected", re.I)
_PORCELAIN_REF = re.compile(r"^(.)\t([^\t]*)\t(.*)$")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class GitCommandFailed(RuntimeError):
    """A local git command failed: a bug or a broken machine, not something a chat user can fix."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        super().__init__(f"git {' '.join(args[:3])} failed ({returncode}): {stderr.strip()[:500]}")
        self.returncode = returncode
        self.stderr = stderr


class _Timeout(Exception):
    pass


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class FileRevision:
    """One commit that changed a file, with the file's text at that commit (None: deleted)."""

    sha: str
    author_name: str
    author_email: str
    when: str  # ISO 8601, author date
    subject: str
    trailers: dict = field(default_factory=dict, hash=False)  # dict[str, str]; repeats joined by ", "
    text: Optional[str] = None


class GitTree:
    """A read-only view of one commit, listed once and read lazily from Git's objects.

    Nothing is ever checked out, so no writer can show a reader a half-made state. Symlinks and
    submodules are left out of ``files()``: they are not manifests Flux reads (and a change may
    not write over them).
    """

    def __init__(self, commit: str, blobs: dict, read_object: Callable[[str], Optional[bytes]],
                 modes: Optional[dict] = None, others: Sequence[str] = ()):
        self.commit = commit
        self._blobs = blobs  # repo-relative POSIX path -> blob sha
        self._read_object = read_object
        self._modes = modes or {}  # path -> mode, for the blobs whose mode is not 100644
        self._others = frozenset(others)  # symlinks and submodules
        self._texts: dict = {}
        self._sorted: Optional[list] = None
        self._dirs: Optional[frozenset] = None

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
        if text is None:
            data = self._read_object(self.blob_id(path))
            if data is None:
                raise FileNotFoundError(f"{path}: object missing from the clone at {self.commit[:12]}")
            text = self._texts[path] = data.decode("utf-8", errors="replace")
        return text

    def _kind(self, path: str) -> str:
        """"file", "other" (symlink, submodule), "dir", "under-file" (a parent is not a
        directory) or "" (free) for a normalised repo-relative path."""
        if path in self._blobs:
            return "file"
        if path in self._others:
            return "other"
        if self._dirs is None:
            self._dirs = _directories((*self._blobs, *self._others))
        if path in self._dirs:
            return "dir"
        if any(p in self._blobs or p in self._others for p in _directories((path,))):
            return "under-file"
        return ""

    def __contains__(self, path: object) -> bool:
        return path in self._blobs

    def __repr__(self) -> str:
        return f"GitTree({self.commit[:12]}, {len(self._blobs)} files)"


class _ObjectReader:
    """One persistent ``git cat-file --batch``: any object by name, for every reader thread."""

    def __init__(self, git_dir: Path, env: dict):
        self._git_dir = git_dir
        self._env = env
        self._proc: Optional[subprocess.Popen] = None
        self._lock = threading.Lock()

    def read(self, name: str) -> Optional[tuple[str, bytes]]:
        """(type, content) of the object, or None when the clone does not have it."""
        if "\n" in name:
            raise ValueError(f"object name with a newline: {name!r}")
        with self._lock:
            try:
                return self._ask(name)
            except (OSError, ValueError):
                # The process died or the clone moved under it (a re-clone): once more, fresh.
                self._stop()
            try:
                return self._ask(name)
            except (OSError, ValueError) as e:
                self._stop()
                raise GitCommandFailed(["cat-file", "--batch"], -1, str(e)) from None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, name: str) -> Optional[tuple[str, bytes]]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                ["git", f"--git-dir={self._git_dir}", "cat-file", "--batch"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env)
        self._proc.stdin.write(name.encode("utf-8") + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if not header:
            raise ValueError("cat-file closed its output")
        if header[-1] in (b"missing", b"ambiguous"):
            return None
        size = int(header[2])
        data = self._proc.stdout.read(size)
        if len(data) != size or self._proc.stdout.read(1) != b"\n":
            raise ValueError("cat-file answered short")
        return header[1].decode(), data

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            proc.kill()
            proc.wait()


class Workspace:
    """One repository and branch: a clone (never checked out) under ``directory``, reads and
    serialised writes.

    ``fetch_interval``: how old a fetch may be before ``head()`` fetches again. ``skip_fetch_within``:
    how old a fetch may be for ``change()`` to build on it without fetching first (see ``change``).
    """

    def __init__(self, url: str, branch: str, directory: Path, *,
                 committer: tuple[str, str] = ("Ferry", "ferry@localhost"),
                 git_env: Optional[dict] = None, fetch_interval: float = 5.0,
                 skip_fetch_within: float = 1.0,
                 push_attempts: int = 3, secrets: Sequence[str] = (), timeout: float = 120.0):
        self.url = url
        self.branch = branch
        self.directory = Path(directory).absolute()
        self.committer = committer
        self.fetch_interval = fetch_interval
        self.skip_fetch_within = skip_fetch_within
        self.push_attempts = max(1, push_attempts)
        self.timeout = timeout  # seconds any one network operation may take
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._env = _process_env(git_env or {})
        self._lock = threading.RLock()  # the clone, fetches and writes; reentrant for callbacks
        self._head: Optional[str] = None
        self._fetched_at: Optional[float] = None
        self._verified = False  # the clone's remote URL was checked once by this instance
        self._pushes_since_gc = 0
        self._clones = 0  # clones made by this instance (a repair shows as one more)
        self._reader = _ObjectReader(self.directory / ".git", self._env)
        self._trees: OrderedDict = OrderedDict()
        self._trees_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Workspace({self.public_url}, {self.branch})"

    @property
    def public_url(self) -> str:
        """The URL as a person may see it: no user or password, no secret."""
        return self._scrub(_without_userinfo(self.url))

    # ---- reading ---------------------------------------------------------------------------

    def head(self, refresh: bool = True) -> str:
        """The sha of origin/<branch>; clones on first use, fetches when the last fetch is stale."""
        if not refresh and self._head is not None:
            return self._head  # kept in step under the lock by every fetch, clone and push
        with self._lock:
            self._ensure_clone()
            if refresh and (self._fetched_at is None
                            or time.monotonic() - self._fetched_at >= self.fetch_interval):
                self._fetch()
            return self._head

    def tree(self, commit: str) -> GitTree:
        """The files of ``commit``: one ``ls-tree`` per commit (cached), contents read lazily."""
        with self._trees_lock:
            tree = self._trees.get(commit)
            if tree is not None:
                self._trees.move_to_end(commit)
                return tree
        blobs, modes, others = self._repairing(lambda: self._list_tree(commit))
        tree = GitTree(commit, blobs, self._read_blob, modes, others)
        with self._trees_lock:
            self._trees[commit] = tree
            while len(self._trees) > TREE_CACHE_SIZE:
                self._trees.popitem(last=False)
        return tree

    def file_history(self, path: str, commit: str, limit: int = 500) -> list[FileRevision]:
        """The commits that changed ``path`` along the first-parent line of ``commit``, newest first.

        One path-limited ``git log`` and the persistent cat-file for the texts, so it stays fast on
        a long history where the file changed only a few times.
        """
        revisions = []
        for rev in self.log(commit, limit, "--", path):
            data = self._read_object(f"{rev.sha}:{path}", "blob")
            text = data.decode("utf-8", errors="replace") if data is not None else None
            revisions.append(replace(rev, text=text))
        return revisions

    def log(self, commit: str, limit: int, *selection: str) -> list[FileRevision]:
        """Commits along the first-parent line of ``commit``, newest first, without file texts.

        ``selection`` narrows them the way ``git log`` does (``--grep=…``, ``--`` and paths)."""
        if any("\n" in a for a in (commit, *selection)):
            raise ValueError("a path or commit with a newline")
        fmt = "%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%(trailers:only,unfold)%x1e"
        out = self._repairing(lambda: self._local(
            "log", "--first-parent", f"--max-count={int(limit)}", f"--format={fmt}", commit,
            *selection).stdout)
        revisions = []
        for record in out.decode("utf-8", errors="replace").split("\x1e"):
            record = record.lstrip("\n")
            if not record:
                continue
            sha, name, email, when, subject, trailers = record.split("\x1f")
            revisions.append(FileRevision(sha, name, email, when, subject, _trailers(trailers)))
        return revisions

    # ---- changing --------------------------------------------------------------------------

    def change(self, edit: Callable[[GitTree], Optional[dict]], *, author: Requester,
               message: str) -> Optional[tuple[str, list[str]]]:
        """Commit what ``edit`` makes of the newest tip as ``author``, and push it; never forced.

        ``edit(tree)`` gets a read-only ``GitTree`` of the tip and returns the new content of each
        file it changes: ``{repo-relative path: new full text}`` (``str``, written as UTF-8, or
        ``bytes``; ``None`` deletes the file), or None/``{}`` when there is nothing to do. A file
        keeps its mode (100644 or 100755); a new file is 100644. Files whose new text is what the
        tree already holds are not changes. A path outside the repository, inside ``.git``, a
        directory, a symlink or a submodule, or under a file, is refused (ValueError: a bug in the
        caller). Nothing is ever checked out: the commit is built from Git's objects.

        After a rejected push (someone pushed first) ``edit`` runs again on the new tip, up to
        ``push_attempts`` pushes; a refusal for any other reason (a hook, a protected branch) is
        ``PushRejected`` at once. ``edit`` must therefore plan from the tree it is given only.
        Returns (commit sha, changed paths sorted), or None when nothing was committed. On any
        failure the remote is untouched and the clone's refs are where they were.

        The fetch before the first plan is skipped when the last fetch (or push) is younger than
        ``skip_fetch_within`` seconds — typically the caller's own ``head()`` a moment before.
        That is safe: the commit's parent is the tip we know, and a push that is not forced lands
        only if that is still the remote's tip, so a stale base costs a rejected push and a retry
        that does fetch, never someone's commit or a merge. A "nothing to do" decided on an
        unfetched base is checked by fetching: if the tip moved, ``edit`` plans again on it.
        """
        if not message.strip():
            raise ValueError("a commit needs a message")
        with self._lock:
            return self._change(edit, author, message)

    def close(self) -> None:
        """Stop the persistent cat-file process (a later read starts a new one)."""
        self._reader.close()

    def _change(self, edit, author: Requester, message: str) -> Optional[tuple[str, list[str]]]:
        self._ensure_clone()
        unfetched = self._fetched_recently()
        if not unfetched:
            self._fetch()
        pushes, repaired = 0, False
        while True:
            base = self._head
            tree = self.tree(base)
            writes = self._writes(tree, edit(tree))
            if not writes:
                if unfetched:  # "nothing to do" must hold for the remote's tip, not a guess of it
                    unfetched = False
                    self._fetch()
                    if self._head != base:
                        continue
                return None
            try:
                sha = self._commit(base, writes, author, message)
            except GitCommandFailed:
                # The clone is checked once per instance: one broken since is repaired here, once.
                if repaired:
                    raise
                repaired, clones, self._verified = True, self._clones, False
                self._ensure_clone()
                if self._clones == clones:  # the clone is sound: the failure is real
                    raise
                unfetched = False  # a new clone is a fetch: plan again on its tip
                continue
            pushes += 1
            if self._push(sha):
                # The push landed: nothing after this line may turn it into a reported failure.
                paths = [path for path, _, _, _ in writes]
                self._pushed(sha)
                self._remember_tree(sha, tree, writes)
                log.info("pushed %s to %s (%s)", sha[:12], self.public_url, ", ".join(paths))
                return sha, paths
            if pushes >= self.push_attempts:
                raise PushRejected(
                    f"The Git repository {self.public_url} kept moving: the push was rejected "
                    f"{self.push_attempts} times because others pushed at the same moment. Try again.")
            log.info("push %d/%d to %s rejected: the branch moved; re-planning on the new tip",
                     pushes, self.push_attempts, self.public_url)
            self._ensure_clone()
            self._fetch()
            unfetched = False

    def _fetched_recently(self) -> bool:
        return (self._fetched_at is not None
                and time.monotonic() - self._fetched_at < self.skip_fetch_within)

    def _writes(self, tree: GitTree, changes) -> list[tuple[str, str, Optional[bytes], str]]:
        """What ``edit`` returned, checked against ``tree``: [(path, mode, content or None to
        delete, blob id or "")] for the files that really change, sorted by path."""
        if not changes:
            return []
        if not isinstance(changes, Mapping):
            raise TypeError(f"edit must return {{path: new text}} or None, not {type(changes).__name__}")
        hash_kind = hashlib.sha256 if len(tree.commit) == 64 else hashlib.sha1
        writes: dict = {}
        for raw, content in changes.items():
            path = self._relative(raw)
            if path in writes:
                raise ValueError(f"{raw} names the same file as another path the edit returned")
            kind = tree._kind(path)
            if kind in ("other", "dir", "under-file"):
                what = {"other": "a symlink or a submodule", "dir": "a directory",
                        "under-file": "under a file"}[kind]
                raise ValueError(f"{path} is {what} in commit {tree.commit[:12]}, not a file to write")
            if content is None:
                if kind == "file":
                    writes[path] = (path, tree.mode(path), None, "")
                continue
            if isinstance(content, str):
                data = content.encode("utf-8")
            elif isinstance(content, (bytes, bytearray)):
                data = bytes(content)
            else:
                raise TypeError(f"new content of {path} must be str, bytes or None, not "
                                f"{type(content).__name__}")
            blob = hash_kind(b"blob %d\0%s" % (len(data), data)).hexdigest()
            if kind == "file":
                if blob == tree.blob_id(path):
                    continue  # the same content: not a change
                writes[path] = (path, tree.mode(path), data, blob)
            else:
                writes[path] = (path, "100644", data, blob)
        clash = _directories(writes).intersection(writes)
        if clash:
            raise ValueError(f"{min(clash)} is written both as a file and as a directory")
        return [writes[p] for p in sorted(writes)]

    def _remember_tree(self, sha: str, base: GitTree, writes: list) -> None:
        """The listing of a commit we made, derived from its parent's and our writes: the next
        plan (and the caller's next read of the new tip) needs no ``ls-tree``."""
        blobs, modes = dict(base._blobs), dict(base._modes)
        for path, mode, data, blob in writes:
            if data is None:
                blobs.pop(path, None)
                modes.pop(path, None)
            else:
                blobs[path] = blob
                if mode != "100644":
                    modes[path] = mode
        tree = GitTree(sha, blobs, self._read_blob, modes, base._others)
        tree._texts.update((path, data.decode("utf-8", errors="replace"))
                           for path, _, data, _ in writes if data is not None)
        with self._trees_lock:
            self._trees[sha] = tree
            while len(self._trees) > TREE_CACHE_SIZE:
                self._trees.popitem(last=False)

    def _relative(self, path) -> str:
        """A path the callback returned, as a repo-relative POSIX path that stays in the repo."""
        if not isinstance(path, (str, PurePosixPath)):
            raise TypeError(f"a path must be a repo-relative str, not {type(path).__name__}")
        text = str(path)
        posix = PurePosixPath(text)
        if (not text or "\0" in text or posix.is_absolute() or not posix.parts
                or ".." in posix.parts or any(p.lower() == ".git" for p in posix.parts)):
            raise ValueError(f"{path!r} is not a file inside the repository")
        return str(posix)

    def _commit(self, base: str, writes: list, author: Requester, message: str) -> str:
        """One commit on ``base`` with ``writes``, by one ``git fast-import``: it writes the blobs,
        the trees along the changed paths and the commit, and no ref (the branch it is told to
        commit on is reset before the end, so none is left; objects stay loose below
        ``fastimport.unpackLimit``, for ``gc --auto`` to pack)."""
        name, email = author_identity(author)
        chunks = [b"commit %s\nmark :1\n" % _SCRATCH_REF.encode(),
                  b"author %s now\n" % _fast_import_ident(name, email),
                  b"committer %s now\n" % _fast_import_ident(*self.committer),
                  _fast_import_data(_clean_message(message).encode("utf-8")),
                  b"from %s\n" % base.encode()]
        for path, mode, data, _ in writes:
            if data is None:
                chunks.append(b"D %s\n" % _c_quote(path))
            else:
                chunks.append(b"M %s inline %s\n" % (mode.encode(), _c_quote(path)))
                chunks.append(_fast_import_data(data))
        chunks.append(b"get-mark :1\nreset %s\ndone\n" % _SCRATCH_REF.encode())
        out = self._local("fast-import", "--quiet", "--done", "--date-format=now",
                          stdin=b"".join(chunks)).stdout.decode().strip()
        if not _OBJECT_ID.fullmatch(out):
            raise GitCommandFailed(["fast-import"], 0, f"no commit id in its output: {out[:100]!r}")
        return out

    def _pushed(self, sha: str) -> None:
        """After a push landed: our view of the remote is the commit just pushed, as fresh as a
        fetch. ``git push`` moved origin/<branch> itself (the clone's fetch refspec maps it);
        only when it did not is ``update-ref`` run. Then, now and again, housekeeping."""
        self._head, self._fetched_at = sha, time.monotonic()
        try:
            if self._read_ref(f"refs/remotes/origin/{self.branch}") != sha:
                self._local("update-ref", f"refs/remotes/origin/{self.branch}", sha, check=False)
            self._pushes_since_gc += 1
            if self._pushes_since_gc >= GC_EVERY:
                self._pushes_since_gc = 0
                # In the foreground, not racing reads: -c beats the pinned gc.auto=0.
                self._local("-c", "gc.auto=6700", "-c", "gc.autoDetach=false", "gc", "--auto",
                            "--quiet", check=False)
        except (GitCommandFailed, OSError) as e:  # the next fetch puts the ref right
            self._verified = False
            log.warning("pushed %s to %s, but the clone could not follow: %s", sha[:12],
                        self.public_url, self._scrub(str(e)))

    def _push(self, sha: str) -> bool:
        """True when pushed; False when the branch moved (retry); raises on any other refusal."""
        res = self._network("push", "push", "--porcelain", "--no-verify", "origin",
                            f"{sha}:refs/heads/{self.branch}", check=False)
        if res.returncode == 0:
            return True
        refs = [m for m in map(_PORCELAIN_REF.match, res.stdout.decode(errors="replace").splitlines())
                if m]
        refused = [m.group(3) for m in refs if m.group(1) == "!"]
        if not refused:
            raise self._remote_error("push", res.stderr)
        summary, reason = refused[0], _remote_said(res.stderr)
        if _MOVED.search(summary) or _MOVED.search(reason):
            return False
        why = re.sub(r"^\[[^]]*\]\s*", "", summary).strip("() ") or "refused"
        log.warning("push to %s refused: %s %s", self.public_url, self._scrub(summary),
                    self._scrub(res.stderr))
        detail = f"{why}: {reason}" if reason else why
        raise PushRejected(self._scrub(f"The Git repository {self.public_url} refused the push "
                                       f"({detail[:300]}). Nothing was changed."))

    # ---- the clone -------------------------------------------------------------------------

    def _ensure_clone(self) -> None:
        """A usable clone of the right remote at ``directory``; (re-)clone when it is not.

        Checked with git once per instance (and again after any failure); after that, the clone
        and its origin/<branch> ref being there is enough: a clone that breaks later makes a git
        command fail, and every such failure repairs it (``_repairing``, ``_fetch``, ``_change``)."""
        git_dir = self.directory / ".git"
        if self._verified and git_dir.is_dir():
            tip = self._read_ref(f"refs/remotes/origin/{self.branch}")
            if tip is not None:
                self._head = tip
                return
        if git_dir.is_dir():
            tip = self._tip()
            if tip and (self._verified or _same_remote(self._origin_url(), self.url)):
                if not self._verified:  # once per instance: a clone made before graphs existed
                    self._verified = True
                    if not _has_changed_path_graph(self.directory / ".git"):
                        self._write_commit_graph()
                self._head = tip
                return
            log.warning("the clone of %s at %s is unusable or points elsewhere: cloning again",
                        self.public_url, self.directory)
        self._clone()

    def _clone(self) -> None:
        self._clones += 1
        self._reader.close()
        self._head = self._fetched_at = None
        self._verified = False
        with self._trees_lock:
            self._trees.clear()
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        # Clone beside the target and rename: an interrupted clone never looks like a clone.
        staging = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}.", dir=self.directory.parent))
        try:
            self._network("clone", "clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch",
                          "--branch", self.branch, "--", self.url, str(staging),
                          cwd=Path.cwd())  # a relative remote path means relative to the bot
            _remove(self.directory)
            staging.rename(self.directory)
        finally:
            _remove(staging)
        tip = self._tip()
        if tip is None:
            raise GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        self._write_commit_graph()
        self._head, self._fetched_at, self._verified = tip, time.monotonic(), True

    def _write_commit_graph(self) -> None:
        """A commit-graph with changed-path Bloom filters, for fast path-limited history (later
        fetches add layers that keep them: fetch.writeCommitGraph). Best effort: reads work
        without it, only slower."""
        started = time.monotonic()
        try:
            res = _run([f"--git-dir={self.directory / '.git'}", "commit-graph", "write", "--reachable",
                        "--changed-paths", "--no-progress"], self.directory, self._env, None,
                       max(self.timeout, 60.0))
        except (_Timeout, OSError) as e:
            log.warning("could not write the commit-graph of %s: %s", self.public_url,
                        type(e).__name__ if isinstance(e, _Timeout) else e)
            return
        if res.returncode != 0:
            log.warning("could not write the commit-graph of %s: %s", self.public_url,
                        self._scrub(res.stderr).strip()[:300])
        else:
            log.info("wrote the commit-graph of %s in %.1f s", self.public_url,
                     time.monotonic() - started)

    def _fetch(self) -> None:
        res = self._network("fetch", "fetch", "--quiet", "--no-tags", "origin",
                            f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}", check=False)
        if res.returncode != 0:
            if self._tip() is None:  # not the remote: the clone itself is broken (a garbage HEAD…)
                log.warning("the clone of %s at %s is broken: cloning again", self.public_url,
                            self.directory)
                self._clone()  # a fetch of everything
                return
            raise self._remote_error("fetch", res.stderr)
        self._fetched_at = time.monotonic()
        tip = self._read_ref(f"refs/remotes/origin/{self.branch}") or self._tip()
        if tip is None:
            raise GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        self._head = tip

    def _read_ref(self, name: str) -> Optional[str]:
        """The object id a ref holds, read from the ref files (a loose ref, else packed-refs)
        without a process; None when it is not there in a plain form (the caller asks git)."""
        git_dir = self.directory / ".git"
        try:
            value = (git_dir / name).read_text(encoding="ascii").strip()
            return value if _OBJECT_ID.fullmatch(value) else None
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError):
            return None
        try:
            with open(git_dir / "packed-refs", encoding="utf-8", errors="replace") as packed:
                for line in packed:
                    sha, _, ref = line.rstrip("\n").partition(" ")
                    if ref == name:
                        return sha if _OBJECT_ID.fullmatch(sha) else None
        except OSError:
            pass
        return None

    def _tip(self) -> Optional[str]:
        res = self._local("rev-parse", "--verify", "--quiet",
                          f"refs/remotes/origin/{self.branch}^{{commit}}", check=False)
        if res.returncode != 0:
            return None
        return res.stdout.decode().strip() or None

    def _origin_url(self) -> str:
        res = self._local("config", "--get", "remote.origin.url", check=False)
        return res.stdout.decode().strip()

    def _list_tree(self, commit: str) -> tuple[dict, dict, list]:
        """(path -> blob sha of the regular files, path -> mode where not 100644, the paths of
        symlinks and submodules)."""
        out = self._local("ls-tree", "-r", "-z", "--full-tree", commit, "--").stdout
        blobs, modes, others = {}, {}, []
        for entry in out.split(b"\0"):
            if not entry:
                continue
            meta, path = entry.split(b"\t", 1)
            mode, kind, sha = meta.split(b" ")
            name = path.decode("utf-8", errors="surrogateescape")
            if kind == b"blob" and mode != b"120000":
                blobs[name] = sha.decode()
                if mode != b"100644":
                    modes[name] = mode.decode()
            else:
                others.append(name)
        return blobs, modes, others

    def _read_blob(self, sha: str) -> Optional[bytes]:
        data = self._read_object(sha, "blob")
        if data is None:
            # A blob the clone's own tree lists is missing: its objects were lost or damaged
            # under it. Clone again (once) and read it from the fresh clone.
            with self._lock:
                if self._reader.read(sha) is None:
                    log.warning("the clone of %s at %s lost object %s: cloning again",
                                self.public_url, self.directory, sha[:12])
                    self._clone()
            data = self._read_object(sha, "blob")
        return data

    def _read_object(self, name: str, kind: str) -> Optional[bytes]:
        found = self._repairing(lambda: self._reader.read(name))
        return found[1] if found is not None and found[0] == kind else None

    def _repairing(self, read: Callable):
        """Run a local read; if the clone broke under it, repair the clone (re-clone) and retry once."""
        try:
            return read()
        except GitCommandFailed as first:
            with self._lock:
                self._verified = False
                self._ensure_clone()
            try:
                return read()
            except GitCommandFailed:
                raise first from None

    # ---- running git -----------------------------------------------------------------------

    def _local(self, *args: str, check: bool = True, stdin: Optional[bytes] = None,
               env: Optional[dict] = None) -> _Result:
        """A git command inside the clone, with its git directory explicit: a broken clone must
        fail, not let git walk up to an enclosing repository (the project's own, say)."""
        full = [f"--git-dir={self.directory / '.git'}", f"--work-tree={self.directory}", *args]
        try:
            res = _run(full, self.directory, {**self._env, **(env or {})}, stdin, None)
        except OSError as e:  # the directory vanished under us
            raise GitCommandFailed(args, -1, str(e)) from None
        if check and res.returncode != 0:
            raise GitCommandFailed(args, res.returncode, self._scrub(res.stderr))
        return res

    def _network(self, what: str, *args: str, cwd: Optional[Path] = None, check: bool = True) -> _Result:
        """A git command that talks to the remote: bounded in time, failures classified."""
        if cwd is None:
            args = (f"--git-dir={self.directory / '.git'}", f"--work-tree={self.directory}", *args)
        try:
            res = _run(list(args), cwd or self.directory, self._env, None, self.timeout)
        except _Timeout:
            log.warning("git %s with %s took longer than %g s: killed", what, self.public_url,
                        self.timeout)
            raise GitUnavailable(f"The Git repository {self.public_url} did not answer within "
                                 f"{self.timeout:g} s ({what}). Try again later.") from None
        if check and res.returncode != 0:
            raise self._remote_error(what, res.stderr)
        return res

    def _remote_error(self, what: str, stderr: str) -> Exception:
        detail = self._scrub(stderr)
        log.warning("git %s with %s failed: %s", what, self.public_url, detail.strip())
        if _UNAUTHORIZED.search(stderr):
            return GitUnauthorized(f"The Git repository {self.public_url} refused Ferry's credentials "
                                   f"({what}): check the token or SSH key.")
        if _NO_BRANCH.search(stderr):
            return GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        reason = next((text for pattern, text in _REASONS if pattern.search(stderr)),
                      "see the bot's log")
        return GitUnavailable(f"Cannot reach the Git repository {self.public_url} ({what}: {reason}).")

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)


# ---- helpers other modules use ---------------------------------------------------------------

def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` without URL credentials and without any of ``secrets`` (longest first)."""
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
        if quote(secret, safe="") != secret:
            text = text.replace(quote(secret, safe=""), "***")
    return text


def author_identity(requester: Requester) -> tuple[str, str]:
    """(name, email) for a commit by ``requester``; a stable placeholder built from the chat id
    when the backend does not know them."""
    ident = _ident_text(requester.id) or "unknown"
    name = _ident_text(requester.name) or ident
    email = _ident_text(requester.email)
    if "@" not in email:
        local = re.sub(r"[^A-Za-z0-9._-]+", "-", requester.id or "").strip("-.") or "unknown"
        email = f"{local}@{PLACEHOLDER_EMAIL_DOMAIN}"
    return name, email


def git_environment(token: str = "", ssh_key_file: str = "", *,
                    helper_dir: Optional[Path] = None) -> dict[str, str]:
    """The environment for git subprocesses: credentials without putting them in a URL or a file.

    A token is handed to git by a GIT_ASKPASS script that prints it from an environment variable;
    credential helpers are switched off so none of them stores it. An SSH key goes through
    ``GIT_SSH_COMMAND``. Prompts are always off: a bot has no terminal.
    """
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if token:
        env.update({"GIT_ASKPASS": str(_askpass_script(helper_dir)), TOKEN_VARIABLE: token})
        env = _with_config(env, [("credential.helper", "")])
    if ssh_key_file:
        env["GIT_SSH_COMMAND"] = (f"ssh -i {shlex.quote(str(ssh_key_file))} -o IdentitiesOnly=yes "
                                  "-o StrictHostKeyChecking=accept-new -o ConnectTimeout=10 "
                                  "-o BatchMode=yes")
    return env


_FORGES = {"github.com": "{base}/commit/{sha}", "gitlab.com": "{base}/-/commit/{sha}",
           "bitbucket.org": "{base}/commits/{sha}"}
_FORGE_ALIASES = {"www.github.com": "github.com", "ssh.github.com": "github.com",
                  "altssh.gitlab.com": "gitlab.com", "www.gitlab.com": "gitlab.com",
                  "altssh.bitbucket.org": "bitbucket.org", "www.bitbucket.org": "bitbucket.org"}


def commit_url(remote_url: str, sha: str) -> str:
    """A web link to ``sha`` on a known forge (https, ssh:// or scp-like remote), else ""."""
    if not remote_url or not sha:
        return ""
    scp = re.match(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$", remote_url)
    if "://" in remote_url:
        parts = urlsplit(remote_url)
        host, path = (parts.hostname or "").lower(), parts.path
    elif scp:
        host, path = scp.group(1).lower(), scp.group(2)
    else:
        return ""
    host = _FORGE_ALIASES.get(host, host)
    path = path.strip("/")
    path = path[:-4] if path.endswith(".git") else path
    if host not in _FORGES or path.count("/") < 1:
        return ""
    return _FORGES[host].format(base=f"https://{host}/{path}", sha=sha)


# ---- internals -------------------------------------------------------------------------------

def _run(args: list, cwd: Path, env: dict, stdin: Optional[bytes], timeout: Optional[float]) -> _Result:
    """Run git in its own process group, so a timeout also kills its helpers (ssh, remote-https)."""
    proc = subprocess.Popen(["git", *args], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise _Timeout() from None
    return _Result(proc.returncode, out, err.decode("utf-8", errors="replace"))


def _process_env(git_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in _FOREIGN_VARIABLES and not re.match(r"GIT_CONFIG_(KEY|VALUE)_\d+$", k)}
    env.update(git_env)
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")  # bytes/s; below it for 30 s = dead
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", "30")
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=10"
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "",  # English errors to classify
                "GIT_LITERAL_PATHSPECS": "1"})
    return _with_config(env, _PINNED_CONFIG)


def _with_config(env: dict, pairs) -> dict:
    """``env`` plus git config entries through GIT_CONFIG_COUNT: they apply to every git command
    and are never written into the clone (git drops them before running a local remote's side)."""
    env = dict(env)
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    for key, value in pairs:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def _askpass_script(helper_dir: Optional[Path]) -> Path:
    global _askpass_dir
    with _askpass_lock:
        if helper_dir is not None:
            folder = Path(helper_dir)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            if _askpass_dir is None or not _askpass_dir.is_dir():
                _askpass_dir = Path(tempfile.mkdtemp(prefix="ferry-git-"))  # mode 0700
            folder = _askpass_dir
        script = folder / "askpass.sh"
        if not script.is_file() or script.read_text() != _ASKPASS_SCRIPT:
            staging = folder / f".askpass.{os.getpid()}"
            staging.write_text(_ASKPASS_SCRIPT)
            staging.chmod(0o700)
            staging.replace(script)
        return script


def _without_userinfo(url: str) -> str:
    if "://" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def _same_remote(configured: str, wanted: str) -> bool:
    """Git records a local remote as an absolute path: compare local paths resolved."""
    if configured == wanted:
        return True
    local = [u[len("file://"):] if u.startswith("file://") else u for u in (configured, wanted)]
    if any(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/]+:", u) for u in local):
        return False
    return Path(local[0]).resolve() == Path(local[1]).resolve()


def _remote_said(stderr: str) -> str:
    """The remote's own words (``remote: …`` lines, e.g. a hook's reason), on one line."""
    lines = [_ANSI.sub("", line[len("remote:"):]).strip()
             for line in stderr.splitlines() if line.startswith("remote:")]
    return " ".join(line for line in lines if line)


def _trailers(text: str) -> dict:
    trailers: dict = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            key, value = key.strip(), value.strip()
            trailers[key] = f"{trailers[key]}, {value}" if key in trailers else value
    return trailers


def _ident_text(text: str) -> str:
    return re.sub(r"[<>\x00-\x1f\x7f]+", "", text or "").strip()


# What git trims from both ends of an identity's name and email (ident.c: crud). Control
# characters, < and > are gone already (_ident_text).
_CRUD = " .,:;\"\\'"


def _fast_import_ident(name: str, email: str) -> bytes:
    """``Name <email>`` the way ``git commit`` writes it (no <, >, newline; "crud" trimmed at both
    ends), for a fast-import author or committer line."""
    email = _ident_text(email).strip(_CRUD)
    name = _ident_text(name).strip(_CRUD) or email.partition("@")[0] or "unknown"
    return f"{name} <{email}>".encode("utf-8")


def _fast_import_data(data: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(data), data)


def _c_quote(path: str) -> bytes:
    """A path for fast-import: always C-quoted, so any name (a leading quote, a newline) is safe."""
    raw = path.encode("utf-8", errors="surrogateescape")
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'


def _clean_message(message: str) -> str:
    """What ``git commit --cleanup=whitespace`` keeps: no trailing blanks, no leading or trailing
    empty lines, runs of empty lines made one, one final newline; lines starting with # stay."""
    lines: list = []
    for line in message.split("\n"):
        line = line.rstrip(" \t\r")
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def _has_changed_path_graph(git_dir: Path) -> bool:
    """True when every layer of the clone's commit-graph has changed-path Bloom filters (a
    ``BIDX`` chunk in each file's table of contents)."""
    info = git_dir / "objects" / "info"
    try:
        chain = (info / "commit-graphs" / "commit-graph-chain").read_text().split()
        files = [info / "commit-graphs" / f"graph-{h}.graph" for h in chain] or [info / "commit-graph"]
    except OSError:
        files = [info / "commit-graph"]
    for file in files:
        try:
            with open(file, "rb") as graph:
                head = graph.read(8)
                if len(head) < 8 or head[:4] != b"CGPH":
                    return False
                table = graph.read(12 * (head[6] + 1))
        except OSError:
            return False
        if not any(table[i:i + 4] == b"BIDX" for i in range(0, len(table), 12)):
            return False
    return True


def _directories(paths) -> set:
    """Every directory above the given repo-relative paths ("a/b/c" -> "a", "a/b")."""
    found: set = set()
    for path in paths:
        cut = path.rfind("/")
        while cut > 0:
            parent = path[:cut]
            if parent in found:
                break  # and so are its own parents
            found.add(parent)
            cut = path.rfind("/", 0, cut)
    return found


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
