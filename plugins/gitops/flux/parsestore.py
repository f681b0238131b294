"""The parse cache on disk: what ``safeyaml.parse_documents`` made of a blob, by blob id.

Derived state, so it must be provably the same as parsing again: the key is the content's hash
(Git's blob id), the value exactly what a fresh parse gives (documents and the loader's refusal,
a file skipped for holding none of the wanted kinds as such); a cache written by another parser
(``PARSER_VERSION``: the loader's own source and bounds) is dropped on open; entries go in
SQLite transactions, so a crash never leaves half an entry to be read back; past ``max_entries``
the oldest are dropped. A restart then re-parses, and reads from Git, only the blobs it has not
seen. Anything wrong with the file (unreadable, corrupt, a full disk) makes it a cache that
remembers nothing, never an error: discovery parses instead.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Optional

from .. import safeyaml

log = logging.getLogger(__name__)

FORMAT = 1
# What the entries are made by: the loader, and the text facts discovery keeps beside the
# documents (image setter markers, variable references). Any change there: a cache of its own.
_MAKERS = (Path(safeyaml.__file__), Path(__file__).with_name("images.py"),
           Path(__file__).with_name("substitution.py"))
PARSER_VERSION = hashlib.sha256(b"".join(p.read_bytes() for p in _MAKERS)
                                + repr((FORMAT, safeyaml.LIMITS)).encode()).hexdigest()[:16]
FILE_NAME = "parse-cache.sqlite"

# A mapping whose keys are not all text (YAML allows `null:` and `true:` keys), or which has this
# key itself, is written as {PAIRS: [[key, value], …]}: JSON alone would turn its keys into text.
PAIRS = "\x00pairs"
_PAIRS_JSON = json.dumps(PAIRS)[1:-1]  # as it is spelt inside JSON text


def encode(value) -> str:
    """Plain data (mappings, lists and tuples, text, numbers, booleans, None) as JSON; tuples come
    back as lists, mappings with any keys as mappings with the same keys."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is tuple:
        # A file's documents (the bulk of a first start): JSON's own encoder, in C, and the text
        # read back once to prove it says the same; only where it does not (a mapping with keys
        # that are not text, a tuple inside) is the data walked to spell those out.
        plain = [list(value[0]), value[1]]
        try:
            text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
            if json.loads(text) == plain and _PAIRS_JSON not in text:
                return text
        except (TypeError, ValueError):
            pass
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def decode(text: str):
    return json.loads(text, object_pairs_hook=_mapping)


def _plain(value):
    if type(value) is dict:
        if all(type(k) is str for k in value) and PAIRS not in value:
            return {k: _plain(v) for k, v in value.items()}
        return {PAIRS: [[k, _plain(v)] for k, v in value.items()]}
    if type(value) in (list, tuple):
        return [_plain(v) for v in value]
    return value


def _mapping(pairs: list):
    """A mapping read back, its keys and short text values interned as the loader interns them:
    the JSON decoder makes a new string of every key of every document (a restart read 80,000
    entries back: 150 MB of them made, 90 MB so)."""
    if len(pairs) == 1 and pairs[0][0] == PAIRS:
        return {k: v for k, v in pairs[0][1]}
    return {sys.intern(k): sys.intern(v) if type(v) is str and len(v) <= safeyaml.INTERNED else v
            for k, v in pairs}


class ParseStore:
    """One SQLite file of entries by blob id; safe to share between threads."""

    def __init__(self, path: Path, max_entries: int = 500_000):
        self.path = Path(path)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pending: dict = {}
        self._db: Optional[sqlite3.Connection] = None
        self._count = 0
        try:
            self._open()
        except (sqlite3.Error, OSError) as e:
            log.warning("the parse cache %s cannot be used (%s): parsing without it", self.path, e)
            self._db = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS parsed (blob TEXT PRIMARY KEY, entry TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'parser'").fetchone()
            if row is None or row[0] != PARSER_VERSION:
                if row is not None:
                    log.info("the parse cache %s was written by another parser: starting it afresh", self.path)
                db.execute("DELETE FROM parsed")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('parser', ?)", (PARSER_VERSION,))
            self._count = db.execute("SELECT count(*) FROM parsed").fetchone()[0]
        self._db = db

    def __len__(self) -> int:
        return self._count + len(self._pending)
    def get(self, blob: str):
        """The entry kept under ``blob`` (decoded: see ``encode``), or None when there is none."""
        with self._lock:
            pending = self._pending.get(blob)
            if pending is not None:
                return decode(pending)
            if self._db is None:
                return None
            try:
                row = self._db.execute("SELECT entry FROM parsed WHERE blob = ?", (blob,)).fetchone()
                return decode(row[0]) if row is not None else None
            except (sqlite3.Error, ValueError, TypeError) as e:
                self._fail(e)
                return None

    def put(self, blob: str, entry) -> None:
        """Kept until ``flush`` (discovery flushes when it is done), or every thousand."""
        try:
            text = encode(entry)
        except (TypeError, ValueError, UnicodeError):
            return  # not representable: parsed again next time, never stored wrong
        with self._lock:
            self._pending[blob] = text
            full = len(self._pending) >= 1000
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            if not pending or self._db is None:
                return
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany("INSERT OR REPLACE INTO parsed VALUES (?, ?)", pending.items())
                    self._count += len(pending)
                    if self._count > self.max_entries:
                        # The oldest written first: keep three quarters of the bound.
                        drop = self._count - self.max_entries * 3 // 4
                        self._db.execute("DELETE FROM parsed WHERE rowid IN "
                                         "(SELECT rowid FROM parsed ORDER BY rowid LIMIT ?)", (drop,))
                    self._count = self._db.execute("SELECT count(*) FROM parsed").fetchone()[0]
            except sqlite3.Error as e:
                self._fail(e)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _fail(self, error: Exception) -> None:
        log.warning("the parse cache %s failed (%s): parsing without it", self.path, error)
        try:
            self._db.close()
        except (sqlite3.Error, AttributeError):
            pass
        self._db = None
