"""Reading YAML manifests from a file tree: fast, tolerant, and cached by content.

Discovery parses every manifest of every environment (thousands of files), so it does not use
ruamel's safe constructor: it builds plain Python data straight from the C parser's events,
about four times faster. Numbers are kept as the text written (``1.10`` stays ``"1.10"``): a chart
version is text, and Ferry never does arithmetic on manifest values.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Optional, Protocol

from ruamel.yaml import events as ev

try:
    from ruamel.yaml.cyaml import CParser
except ImportError:  # no ruamel.yaml.clib: the pure-Python parser gives the same events
    CParser = None

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


# ---- parsing ---------------------------------------------------------------------------------

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_NO_KEY = object()


def _scalar(event) -> object:
    tag = event.tag
    if tag is not None and tag != "!":
        if tag.endswith(":null"):
            return None
        if tag.endswith(":bool"):
            return event.value in _TRUE
        return event.value  # !!str, !!int, custom tags: the text as written
    if event.style or not event.implicit[0]:
        return event.value  # quoted
    value = event.value
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return value


def _events(text: str):
    if CParser is not None:
        parser = CParser(text)
        try:
            while True:
                event = parser.get_event()
                yield event
                if type(event) is ev.StreamEndEvent:
                    return
        finally:
            parser.dispose()
    else:  # pragma: no cover - only without ruamel.yaml.clib
        from ruamel.yaml import YAML
        yield from YAML(typ="safe", pure=True).parse(text)


def parse_documents(text: str) -> tuple[list, Optional[str]]:
    """Every document of a YAML stream as plain data, and the parse error if one stopped it.

    Documents before an error are kept (their indexes are right); an empty document is ``None``,
    so indexes match ruamel's ``load_all``.
    """
    docs: list = []
    stack: list = []  # [container, pending key] for mappings, [container, None] for sequences
    anchors: dict = {}
    root = None

    def add(value):
        nonlocal root
        if not stack:
            root = value
            return
        frame = stack[-1]
        container = frame[0]
        if type(container) is list:
            container.append(value)
        elif frame[1] is _NO_KEY:
            frame[1] = value if _hashable(value) else repr(value)
        else:
            key = frame[1]
            frame[1] = _NO_KEY
            if key == "<<" and isinstance(value, (dict, list)):
                for merged in (value if isinstance(value, list) else [value]):
                    if isinstance(merged, dict):
                        for k, v in merged.items():
                            container.setdefault(k, v)
            else:
                container[key] = value

    try:
        for event in _events(text):
            kind = type(event)
            if kind is ev.ScalarEvent:
                value = _scalar(event)
                if event.anchor:
                    anchors[event.anchor] = value
                add(value)
            elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                container = {} if kind is ev.MappingStartEvent else []
                if event.anchor:
                    anchors[event.anchor] = container
                add(container)
                stack.append([container, _NO_KEY if kind is ev.MappingStartEvent else None])
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                stack.pop()
            elif kind is ev.AliasEvent:
                if event.anchor not in anchors:
                    raise ValueError(f"unknown alias *{event.anchor}")
                add(anchors[event.anchor])
            elif kind is ev.DocumentStartEvent:
                root, stack, anchors = None, [], {}
            elif kind is ev.DocumentEndEvent:
                docs.append(root)
    except Exception as e:  # any parser error: keep what came before it
        return docs, describe_error(e)
    return docs, None


def _hashable(value) -> bool:
    return not isinstance(value, (dict, list))


def describe_error(error: Exception) -> str:
    """A YAML error in one line: where, and the problem."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return f"{where}{problem}"


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
