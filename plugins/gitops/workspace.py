"""The Git workspace: the one way the core reads and changes a Flux repository.

One working clone per repository and branch, reused across commands. Reads (``head``, ``tree``,
``file_history``) come from Git's objects through one persistent ``git cat-file --batch``, never
from the worktree, so they run safely while a ``change`` rewrites the worktree in another thread.
Writes are serialised per workspace; a failure leaves the remote untouched and the clone clean.

Git runs as a plain subprocess (not GitPython's wrappers) so that every call gets the same
bounded timeout, a scrubbed stderr and one classification of failures; GitPython's push also
logs the raw stderr itself, where a remote's message could carry a secret.
"""
from __future__ import annotations

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

    It never looks at the worktree, so a writer resetting the clone cannot show a reader a
    half-made state. Symlinks and submodules are left out: they are not manifests Flux reads.
    """

    def __init__(self, commit: str, blobs: dict, read_object: Callable[[str], Optional[bytes]]):
        self.commit = commit
        self._blobs = blobs  # repo-relative POSIX path -> blob sha
        self._read_object = read_object
        self._texts: dict = {}
        self._sorted: Optional[list] = None

    def files(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._blobs)
        return list(self._sorted)

    def blob_id(self, path: str) -> str:
        try:
            return self._blobs[path]
        except KeyError:
            raise FileNotFoundError(f"{path} is not in commit {self.commit[:12]}") from None

    def read(self, path: str) -> str:
        text = self._texts.get(path)
        if text is None:
            data = self._read_object(self.blob_id(path))
            if data is None:
                raise FileNotFoundError(f"{path}: object missing from the clone at {self.commit[:12]}")
            text = self._texts[path] = data.decode("utf-8", errors="replace")
        return text

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
    """One repository and branch: a working clone under ``directory``, reads and serialised writes."""

    def __init__(self, url: str, branch: str, directory: Path, *,
                 committer: tuple[str, str] = ("Ferry", "ferry@localhost"),
                 git_env: Optional[dict] = None, fetch_interval: float = 5.0,
                 push_attempts: int = 3, secrets: Sequence[str] = (), timeout: float = 120.0):
        self.url = url
        self.branch = branch
        self.directory = Path(directory).absolute()
        self.committer = committer
        self.fetch_interval = fetch_interval
        self.push_attempts = max(1, push_attempts)
        self.timeout = timeout  # seconds any one network operation may take
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._env = _process_env(git_env or {})
        self._lock = threading.RLock()  # the clone, fetches and writes; reentrant for callbacks
        self._head: Optional[str] = None
        self._fetched_at: Optional[float] = None
        self._verified = False  # the clone's remote URL was checked once by this instance
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
        tree = GitTree(commit, self._repairing(lambda: self._list_tree(commit)), self._read_blob)
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

    def change(self, edit: Callable[[GitTree, Path], Optional[list]], *, author: Requester,
               message: str) -> Optional[tuple[str, list[str]]]:
        """Edit the newest tip, commit the paths ``edit`` returns as ``author``, push.

        ``edit(tree, worktree_root)`` changes files in the worktree and returns the repo-relative
        paths it changed, or None/[] when there is nothing to do. After a rejected push (someone
        pushed first) it runs again on the new tip, up to ``push_attempts`` times; never forced.
        Returns (commit sha, changed paths), or None when nothing was committed. On any failure
        the clone is reset to the remote's branch and cleaned, and the error re-raised.
        """
        if not message.strip():
            raise ValueError("a commit needs a message")
        with self._lock:
            try:
                return self._change(edit, author, message)
            except BaseException:
                self._restore()
                raise

    def close(self) -> None:
        """Stop the persistent cat-file process (a later read starts a new one)."""
        self._reader.close()

    def _change(self, edit, author: Requester, message: str) -> Optional[tuple[str, list[str]]]:
        for attempt in range(1, self.push_attempts + 1):
            self._ensure_clone()
            self._fetch()
            base = self._reset()
            paths = edit(self.tree(base), self.directory)
            staged = self._stage(paths) if paths else []
            if not staged:
                self._restore()
                return None
            sha = self._commit(author, message)
            if self._push(sha):
                # The push landed: nothing after this line may turn it into a reported failure.
                self._head = sha
                self._local("update-ref", f"refs/remotes/origin/{self.branch}", sha, check=False)
                # Housekeeping here, in the foreground, not racing reads: -c beats the pinned gc.auto=0.
                self._local("-c", "gc.auto=6700", "-c", "gc.autoDetach=false", "gc", "--auto",
                            "--quiet", check=False)
                log.info("pushed %s to %s (%s)", sha[:12], self.public_url, ", ".join(staged))
                return sha, staged
            log.info("push %d/%d to %s rejected: the branch moved; re-planning on the new tip",
                     attempt, self.push_attempts, self.public_url)
        raise PushRejected(
            f"The Git repository {self.public_url} kept moving: the push was rejected "
            f"{self.push_attempts} times because others pushed at the same moment. Try again.")

    def _reset(self) -> str:
        """The clone at exactly origin/<branch>: local edits and untracked files gone."""
        self._local("checkout", "--quiet", "--force", "-B", self.branch,
                    f"refs/remotes/origin/{self.branch}")
        self._local("clean", "-ffdxq")
        return self._head

    def _restore(self) -> None:
        """Best effort after a failure: the clone back to the remote's branch, never raising."""
        try:
            if (self.directory / ".git").is_dir():
                self._reset()
        except (GitCommandFailed, _Timeout, OSError) as e:
            self._verified = False  # look again before the next use; re-clone if need be
            log.warning("could not reset the clone of %s: %s", self.public_url, self._scrub(str(e)))

    def _stage(self, paths) -> list[str]:
        """Stage exactly ``paths`` (new, changed or deleted); the paths that really changed."""
        wanted = list(dict.fromkeys(self._relative(p) for p in paths))
        tracked = self._local("ls-files", "-z", "--", *wanted).stdout.decode().split("\0")
        known = [p for p in wanted if os.path.lexists(self.directory / p)
                 or any(t == p or t.startswith(p + "/") for t in tracked if t)]
        if known:
            self._local("add", "--all", "--", *known)
        names = self._local("diff", "--cached", "--no-renames", "--name-only", "-z").stdout
        return [n for n in names.decode("utf-8", errors="surrogateescape").split("\0") if n]

    def _relative(self, path) -> str:
        """A path the callback returned, as a repo-relative POSIX path that stays in the repo."""
        p = Path(path)
        if p.is_absolute():
            p = p.relative_to(self.directory)  # ValueError when outside: a bug in the callback
        posix = PurePosixPath(p.as_posix())
        if not posix.parts or posix.parts[0] == ".git" or ".." in posix.parts:
            raise ValueError(f"{path} is not a file inside the repository")
        return str(posix)

    def _commit(self, author: Requester, message: str) -> str:
        name, email = author_identity(author)
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": self.committer[0], "GIT_COMMITTER_EMAIL": self.committer[1]}
        # --cleanup=whitespace: the core's message is final; a line starting with # is not a comment.
        self._local("commit", "--quiet", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace",
                    "--file=-", stdin=message.encode("utf-8"), env=env)
        return self._local("rev-parse", "HEAD").stdout.decode().strip()

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
        """A usable clone of the right remote at ``directory``; (re-)clone when it is not."""
        if (self.directory / ".git").is_dir():
            tip = self._tip()
            if tip and (self._verified or _same_remote(self._origin_url(), self.url)):
                self._verified = True
                self._head = tip
                return
            log.warning("the clone of %s at %s is unusable or points elsewhere: cloning again",
                        self.public_url, self.directory)
        self._clone()

    def _clone(self) -> None:
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
        self._head, self._fetched_at, self._verified = tip, time.monotonic(), True

    def _fetch(self) -> None:
        self._network("fetch", "fetch", "--quiet", "--no-tags", "origin",
                      f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        self._fetched_at = time.monotonic()
        tip = self._tip()
        if tip is None:
            raise GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        self._head = tip

    def _tip(self) -> Optional[str]:
        res = self._local("rev-parse", "--verify", "--quiet",
                          f"refs/remotes/origin/{self.branch}^{{commit}}", check=False)
        if res.returncode != 0:
            return None
        return res.stdout.decode().strip() or None

    def _origin_url(self) -> str:
        res = self._local("config", "--get", "remote.origin.url", check=False)
        return res.stdout.decode().strip()

    def _list_tree(self, commit: str) -> dict:
        out = self._local("ls-tree", "-r", "-z", "--full-tree", commit, "--").stdout
        blobs = {}
        for entry in out.split(b"\0"):
            if not entry:
                continue
            meta, path = entry.split(b"\t", 1)
            mode, kind, sha = meta.split(b" ")
            if kind == b"blob" and mode != b"120000":
                blobs[path.decode("utf-8", errors="surrogateescape")] = sha.decode()
        return blobs

    def _read_blob(self, sha: str) -> Optional[bytes]:
        return self._read_object(sha, "blob")

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


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
