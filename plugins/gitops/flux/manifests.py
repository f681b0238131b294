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
from typing import Callable, Optional, Protocol

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

class SharedShapes:
    """Equal mappings and sequences of cached documents held once: a fleet's manifests repeat
    the same subtrees thousands of times (a ``sourceRef``, ``interval: 10m``, a values block), and
    a parse builds each anew (at 10,000 apps × 4 environments, 411,000 containers of which 136,000
    differ: 74 MB of documents held, 26 MB shared).

    Only for documents nobody changes (the cache's, shared already); a container is replaced by an
    equal one seen before, with its keys in the same order. Children first, so that a parent's
    identity is its keys in order, its scalars and its children's identities; the hash only finds
    the candidate. The scalars of parsed documents are text, booleans and None: equal ones are
    the same value.
    The table is let go of (``forget``) after each discovery: the documents keep what they share.
    """

    def __init__(self):
        self._seen: dict = {}  # hash of (keys, children) -> the first container with them

    def share(self, docs: tuple) -> tuple:
        return tuple(self._shared(doc) if type(doc) is dict or type(doc) is list else doc for doc in docs)

    def forget(self) -> None:
        self._seen = {}

    def _shared(self, node):
        mapping = type(node) is dict
        marks = []  # per entry: the scalar, or the identity of the (shared) container
        for at, value in (node.items() if mapping else enumerate(node)):
            kind = type(value)
            if kind is dict or kind is list:
                same = self._shared(value)
                if same is not value:
                    node[at] = same  # a value replaced, no key added: safe while iterating
                marks.append(id(same))
            else:
                marks.append(value)
        keys = tuple(node) if mapping else None
        mark = hash((keys, tuple(marks)))
        found = self._seen.get(mark)
        if found is not None and type(found) is type(node) and _marks(found) == marks \
                and (keys is None or tuple(found) == keys):
            return found
        self._seen[mark] = node
        return node


def _marks(node) -> list:
    values = node.values() if type(node) is dict else node
    return [id(v) if type(v) is dict or type(v) is list else v for v in values]


class Parsed:
    __slots__ = ("docs", "error", "skipped_for")

    def __init__(self, docs: Optional[tuple], error: Optional[str], skipped_for: tuple = ()):
        self.docs = docs  # None: not parsed, the text held none of ``skipped_for``
        self.error = error
        self.skipped_for = skipped_for


class DocumentCache:
    """Parsed documents by blob id: re-discovery after a one-file change re-parses that file only.

    ``store``: a second tier on disk (``parsestore.ParseStore``), read on a miss here and written
    with every parse, so a restart reads from Git and parses only the blobs it has not seen;
    ``backed_by`` makes such a view sharing this cache's memory. The cached data is shared between
    discoveries: callers must not change it.
    """

    def __init__(self, max_entries: int = 200_000, store=None):
        self.max_entries = max_entries
        self.store = store
        self._parsed: dict = {}
        self._lock = threading.Lock()
        self._shapes = SharedShapes()

    def backed_by(self, store) -> "DocumentCache":
        """This cache's memory with ``store`` behind it."""
        view = DocumentCache(self.max_entries, store)
        view._parsed, view._lock, view._shapes = self._parsed, self._lock, self._shapes
        return view

    def __len__(self) -> int:
        return len(self._parsed)

    def get(self, tree: FileTree, path: str, keywords: tuple = ()) -> Parsed:
        """The file's documents; with ``keywords``, a file holding none of them is not parsed
        (its documents are reported as none)."""
        try:
            key = tree.blob_id(path)
            found = self._parsed.get(key)
            if found is None and self.store is not None:
                found = self._stored(key)
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
            parsed = Parsed(self._shapes.share(docs), error)
        self._keep(key, parsed)
        if self.store is not None:
            self.store.put(key, (parsed.docs, parsed.error) if parsed.docs is not None
                           else (None, parsed.skipped_for))
        return parsed if parsed.docs is not None else _NOTHING

    def fact(self, tree: FileTree, path: str, name: str, compute: Callable[[str], object],
             restore: Callable[[object], object] = lambda plain: plain):
        """What ``compute(text)`` says of the file, kept by blob like its documents (``name``
        tells one fact from another; ``restore`` turns the stored plain data back into what
        ``compute`` returns). None when the file cannot be read."""
        try:
            blob = tree.blob_id(path)
        except (OSError, KeyError):
            return None
        key = (name, blob)  # in memory: the blob id's one string, not a new one per fact and file
        found = self._parsed.get(key)
        if found is None and self.store is not None:
            stored = self.store.get(f"{name}:{blob}")
            if stored is not None:
                found = restore(stored)
                self._keep(key, found)
        if found is None:
            try:
                found = compute(tree.read(path))
            except (OSError, UnicodeDecodeError):
                return None
            self._keep(key, found)
            if self.store is not None:
                self.store.put(f"{name}:{blob}", found)
        return found

    def flush(self) -> None:
        """What was parsed since the last flush, written to the store (one transaction). The
        documents stay in memory: carrying an inventory to a new commit and building one
        environment again read them (read back from the store instead, the inventory after a
        commit took 0.42 s, not 0.29 s, at 10k apps); bounding them during a discovery would
        read back second copies of documents discovery still holds."""
        self._shapes.forget()
        if self.store is not None:
            self.store.flush()

    def clear(self) -> None:
        with self._lock:
            self._parsed.clear()
        self._shapes.forget()

    def _stored(self, key: str) -> Optional[Parsed]:
        entry = self.store.get(key)
        if entry is None:
            return None
        docs, second = entry
        parsed = Parsed(self._shapes.share(docs), second) if docs is not None else Parsed(None, None, tuple(second))
        self._keep(key, parsed)
        return parsed

    def _keep(self, key, parsed) -> None:
        with self._lock:
            if len(self._parsed) >= self.max_entries:
                self._parsed.clear()
                self._shapes.forget()  # it would hold the documents let go of
            self._parsed[key] = parsed


_NOTHING = Parsed((), None)
DEFAULT_CACHE = DocumentCache()
