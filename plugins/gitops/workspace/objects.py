"""Reading Git's objects: a commit's listing (``ls-tree``, ``diff-tree``: ``trees`` makes a tree
of it), any object through one persistent ``git cat-file --batch``, and ``git log`` records; the
parsing is pure, the reader is one process."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from .process import GitCommandFailed

# Names asked of cat-file at once: well under a pipe's buffer (64 KiB), so that writing them all
# never waits for git, which may be waiting for its answers to be read.
MAX_BATCH = 1000
# A tree read from Git file after file (a first discovery) reads ahead in batches, once it has
# read this many files one by one; a tree whose texts are mostly parsed already (a restart)
# reads only what it is asked for.
READ_AHEAD_AFTER, READ_AHEAD = 32, 256

# One record per commit: fields split by \x1f, records by \x1e (neither occurs in git's output);
# the body last, its trailers read by ``_trailers`` (git's own reading stops at the last paragraph,
# and a squash merge's ``Co-authored-by`` paragraph comes after Ferry's).
RECORD_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b"
LOG_FORMAT = RECORD_FORMAT + "%x1e"
# A file's history: each record followed by its ``--raw`` line for the file, all split by NUL
# (``-z``), so the blob id of the file at every commit comes with the log: no tree is walked to
# find the file's text, and a text seen before is not read again.
FILE_LOG_OPTIONS = ("-z", "--root", "--diff-merges=first-parent", "--no-renames", "--raw",
                    "--no-abbrev", f"--format={RECORD_FORMAT}")
_NO_FILE = (b"000000", b"160000")  # the new modes ``--raw`` gives a file deleted, a submodule
TRAILER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*:\s")


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
    parents: tuple = ()  # more than one: a merge commit
    # A file's history: the file's blob id at this commit ("": no file of ours there, deleted or a
    # submodule), None where the log did not say (its text is then read by the commit's name).
    blob: Optional[str] = None


def parse_tree(out: bytes) -> tuple[dict, dict]:
    """``git ls-tree -r -z`` output: (path -> blob sha of the regular files, path -> mode where
    not 100644); symlinks and submodules are left out."""
    blobs, modes = {}, {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, sha = meta.split(b" ")
        if kind == b"blob" and mode != b"120000":
            # Interned: the trees of many commits (and the pins' file names) share one string per
            # path and per blob instead of a copy per listing.
            name = sys.intern(path.decode("utf-8", errors="surrogateescape"))
            blobs[name] = sys.intern(sha.decode())
            if mode != b"100644":
                modes[name] = mode.decode()
    return blobs, modes


def parse_diff(out: bytes) -> list:
    """``git diff-tree -r -z --no-renames`` output between two trees: [(path, mode, blob sha or
    None)] per path that differs, None where the second tree holds no regular file there (deleted,
    or now a symlink or submodule, which ``parse_tree`` leaves out too)."""
    fields = out.split(b"\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        if not meta.startswith(b":"):
            continue
        _, mode, _, sha, _ = meta[1:].split(b" ", 4)
        name = sys.intern(path.decode("utf-8", errors="surrogateescape"))
        regular = mode not in (b"000000", b"120000", b"160000")
        changes.append((name, mode.decode(), sys.intern(sha.decode()) if regular else None))
    return changes


def parse_log(out: bytes) -> list[FileRevision]:
    """``git log --format=LOG_FORMAT`` output, newest first, without file texts."""
    revisions = []
    for record in out.decode("utf-8", errors="replace").split("\x1e"):
        revision = _revision(record)
        if revision is not None:
            revisions.append(revision)
    return revisions


def parse_file_log(out: bytes, path: str) -> list[FileRevision]:
    """``git log FILE_LOG_OPTIONS -- path`` output, newest first, without file texts, each with
    the blob id ``path`` had at that commit (None when its ``--raw`` lines do not name ``path``
    itself: the text is then read by the commit's name)."""
    wanted = path.encode("utf-8", errors="surrogateescape")
    revisions: list = []
    current: Optional[FileRevision] = None  # the record the raw lines that follow belong to
    tokens = iter(out.split(b"\0"))
    for token in tokens:
        token = token.lstrip(b"\n")
        if token.startswith(b":"):  # ":<old mode> <new mode> <old id> <new id> <status>", then its path
            meta = token[1:].split(b" ")
            changed = next(tokens, None)
            if meta[-1][:1] in (b"R", b"C"):  # a rename or a copy names its source first
                changed = next(tokens, None)
            if changed == wanted and current is not None and len(meta) == 5:
                blob = "" if meta[1] in _NO_FILE else meta[3].decode("ascii", errors="replace")
                current = revisions[-1] = replace(current, blob=blob)
            continue
        current = _revision(token.decode("utf-8", errors="replace")) if token else None
        if current is not None:
            revisions.append(current)
    return revisions


def _revision(record: str) -> Optional[FileRevision]:
    """One ``RECORD_FORMAT`` record; None for what is not one (the rest of a body that held a
    separator: its commit is read already)."""
    fields = record.lstrip("\n").split("\x1f", 6)
    if len(fields) < 7:
        return None
    sha, parents, name, email, when, subject, body = fields
    return FileRevision(sha, name, email, when, subject, _trailers(body), parents=tuple(parents.split()))


def _trailers(body: str) -> dict:
    """The trailers of a commit message's body: every last paragraph made of ``Key: value`` lines
    only (continuation lines unfolded), in order."""
    paragraphs = []
    for paragraph in reversed(re.split(r"\n[ \t]*\n", body.strip())):
        lines: list = []
        for line in paragraph.splitlines():
            if line[:1] in (" ", "\t") and lines:
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        if not lines or not all(TRAILER.match(line) for line in lines):
            break
        paragraphs.insert(0, lines)
    trailers: dict = {}
    for line in (line for lines in paragraphs for line in lines):
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        trailers[key] = f"{trailers[key]}, {value}" if key in trailers else value
    return trailers


class ObjectReader:
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

    @contextmanager
    def paused(self):
        """No cat-file runs while inside (the clone's directory is being replaced); the next
        read starts a fresh one on whatever is there then."""
        with self._lock:
            self._stop()
            yield

    def blobs(self, names: list) -> dict:
        """name -> content of the blobs among ``names``, asked for in one go (a cold read of a
        whole tree pays one round trip per batch, not per file). Best effort: what is missing,
        not a blob, or not answered is left out, for ``read`` to ask again one by one."""
        names = [n for n in names[:MAX_BATCH] if "\n" not in n]
        found: dict = {}
        with self._lock:
            try:
                self._process().stdin.write(b"".join(n.encode("utf-8") + b"\n" for n in names))
                self._proc.stdin.flush()
                for name in names:
                    answer = self._answer()
                    if answer is not None and answer[0] == "blob":
                        found[name] = answer[1]
            except (OSError, ValueError):
                self._stop()  # its answers are out of step now: the next read starts afresh
        return found

    def _process(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                ["git", f"--git-dir={self._git_dir}", "cat-file", "--batch"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env)
        return self._proc

    def _ask(self, name: str) -> Optional[tuple[str, bytes]]:
        self._process().stdin.write(name.encode("utf-8") + b"\n")
        self._proc.stdin.flush()
        return self._answer()

    def _answer(self) -> Optional[tuple[str, bytes]]:
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
