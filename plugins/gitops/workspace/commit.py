"""Building a commit: the edit's new texts checked against the tree they were planned on, and the
``git fast-import`` stream that writes their blobs, the trees above them and the commit (pure:
bytes in, bytes out; the workspace runs fast-import on it)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from ..model import Requester
from .trees import GitTree

PLACEHOLDER_EMAIL_DOMAIN = "users.ferry.invalid"
SCRATCH_REF = "refs/ferry/pending"  # named in fast-import's input only; never written
# What git trims from both ends of an identity's name and email (ident.c: crud). Control
# characters, < and > are gone already (_ident_text).
_CRUD = " .,:;\"\\'"


def planned_writes(tree: GitTree, changes) -> list[tuple[str, str, bytes, str]]:
    """What an edit returned ({path: new text} for files of ``tree``), checked: [(path, mode,
    content, blob id)] for the files that really change, sorted by path. Anything else (a new
    file, a directory, a symlink, a path outside the repository, not a text) is a bug in the
    caller: ValueError or TypeError."""
    if not changes:
        return []
    if not isinstance(changes, Mapping):
        raise TypeError(f"edit must return {{path: new text}} or None, not {type(changes).__name__}")
    hash_kind = hashlib.sha256 if len(tree.commit) == 64 else hashlib.sha1
    writes: dict = {}
    for raw, content in changes.items():
        path = _relative(raw)
        if path in writes:
            raise ValueError(f"{raw} names the same file as another path the edit returned")
        if path not in tree:
            raise ValueError(f"{path} is not a file in commit {tree.commit[:12]}: a change "
                             "rewrites existing files only")
        if not isinstance(content, str):
            raise TypeError(f"new content of {path} must be str, not {type(content).__name__}")
        data = content.encode("utf-8")
        blob = hash_kind(b"blob %d\0%s" % (len(data), data)).hexdigest()
        if blob != tree.blob_id(path):  # the same content is not a change
            writes[path] = (path, tree.mode(path), data, blob)
    return [writes[p] for p in sorted(writes)]


def fast_import_stream(base: str, writes: list, author: Requester, committer: tuple[str, str],
                       message: str) -> bytes:
    """The input of ``git fast-import --done --date-format=now`` for one commit on ``base`` with
    ``writes``: it prints the commit's id (get-mark) and leaves no ref (the scratch branch it is
    told to commit on is reset before the end)."""
    name, email = author_identity(author)
    scratch_ref = SCRATCH_REF
    chunks = [b"commit %s\nmark :1\n" % scratch_ref.encode(),
              b"author %s now\n" % _fast_import_ident(name, email),
              b"committer %s now\n" % _fast_import_ident(*committer),
              _fast_import_data(_clean_message(message).encode("utf-8")),
              b"from %s\n" % base.encode()]
    for path, mode, data, _ in writes:
        chunks.append(b"M %s inline %s\n" % (mode.encode(), _c_quote(path)))
        chunks.append(_fast_import_data(data))
    chunks.append(b"get-mark :1\nreset %s\ndone\n" % scratch_ref.encode())
    return b"".join(chunks)


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


def _relative(path) -> str:
    """A path the edit returned, as a repo-relative POSIX path that stays in the repo."""
    if not isinstance(path, (str, PurePosixPath)):
        raise TypeError(f"a path must be a repo-relative str, not {type(path).__name__}")
    text = str(path)
    posix = PurePosixPath(text)
    if (not text or "\0" in text or posix.is_absolute() or not posix.parts
            or ".." in posix.parts or any(p.lower() == ".git" for p in posix.parts)):
        raise ValueError(f"{path!r} is not a file inside the repository")
    return str(posix)


def _ident_text(text: str) -> str:
    return re.sub(r"[<>\x00-\x1f\x7f]+", "", text or "").strip()


def commit_ident(name: str, email: str) -> tuple[str, str]:
    """(name, email) the way ``git commit`` writes them: no <, >, newline; "crud" trimmed at both
    ends; a name at all."""
    email = _ident_text(email).strip(_CRUD)
    return _ident_text(name).strip(_CRUD) or email.partition("@")[0] or "unknown", email


def _fast_import_ident(name: str, email: str) -> bytes:
    """``Name <email>`` for a fast-import author or committer line."""
    name, email = commit_ident(name, email)
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
