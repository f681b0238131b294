"""Reading YAML manifests from a file tree: fast, tolerant, and cached by content.

Discovery parses every manifest of every environment (thousands of files) with the loader's
``parse_documents`` (``gitops.safeyaml``: plain data from libyaml's events, bounded in size,
nesting and aliases). Numbers are kept as the text written (``1.10`` stays ``"1.10"``): a chart
version is text, and Ferry never does arithmetic on manifest values.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Optional, Protocol

from ..safeyaml import parse_documents

YAML_SUFFIXES = (".yaml", ".yml")


class FileTree(Protocol):
    """Read access to one revision of a repository."""

    def files(self) -> list[str]:
        """Every repo-relative POSIX file path."""

    def read(self, path: str) -> str:
        """The file's text (UTF-8)."""

    def blob_id(self, path: str) -> str:
        """An identity of the file's content (the Git blob sha), for caching."""


def git_blob_id(data: bytes) -> str:
    """The sha Git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class DirTree:
    """A ``FileTree`` over a folder on disk (tests, fixtures, a Git work tree)."""

    def __init__(self, root):
        self.root = Path(root)

    def files(self) -> list[str]:
        found = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            rel = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            found.extend(prefix + n for n in names)
        return sorted(found)

    def read(self, path: str) -> str:
        return (self.root / path).read_bytes().decode("utf-8")

    def blob_id(self, path: str) -> str:
        # Content, not mtime: a test rewriting a file twice within one clock tick must not
        # be served the old parse.
        return git_blob_id((self.root / path).read_bytes())


def dig(doc, *keys):
    """``doc[k1][k2]…``, or None where a key is missing or a value is not a mapping."""
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


# ---- cache -----------------------------------------------------------------------------------

class Parsed:
    __slots__ = ("docs", "error", "skipped_for")

    def __init__(self, docs: Optional[tuple], error: Optional[str], skipped_for: tuple = ()):
        self.docs = docs  # None: not parsed, the text held none of ``skipped_for``
        self.error = error
        self.skipped_for = skipped_for


class DocumentCache:
    """Parsed documents by blob id: re-discovery after a one-file change re-parses that file only.

    The cached data is shared between discoveries: callers must not change it.
    """

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._parsed: dict = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._parsed)

    def get(self, tree: FileTree, path: str, keywords: tuple = ()) -> Parsed:
        """The file's documents; with ``keywords``, a file holding none of them is not parsed
        (its documents are reported as none)."""
        try:
            key = tree.blob_id(path)
            found = self._parsed.get(key)
            if found is not None:
                if found.docs is not None:
                    return found
                if keywords and keywords == found.skipped_for:
                    return _NOTHING
            text = tree.read(path)
        except (OSError, UnicodeDecodeError) as e:  # not cached: it may be readable next time
            return Parsed((), f"cannot be read: {e}")
        if keywords and not any(k in text for k in keywords):
            parsed = Parsed(None, None, keywords)
        else:
            docs, error = parse_documents(text)
            parsed = Parsed(tuple(docs), error)
        with self._lock:
            if len(self._parsed) >= self.max_entries:
                self._parsed.clear()
            self._parsed[key] = parsed
        return parsed if parsed.docs is not None else _NOTHING

    def clear(self) -> None:
        with self._lock:
            self._parsed.clear()


_NOTHING = Parsed((), None)
DEFAULT_CACHE = DocumentCache()
