"""One SQLite file for Ferry's state: WAL, a connection per thread, one transaction per decision.

Errbot's shelf (``shelve`` over ``dbm``) is not safe across threads: concurrent lock, scrape and
Flux-event writes raised (``FileNotFoundError``, ``UnpicklingError``) and left records unreadable
or read back as another. Here every decision is one ``BEGIN IMMEDIATE`` transaction: SQLite takes
the write lock first, so two threads (or two processes) deciding at once run one after the other,
and a kill at any point leaves the file at the last committed decision (WAL, ``synchronous=FULL``).

Tables: ``locks``, ``pending`` (changes waiting for approval: a claim is one ``UPDATE … WHERE
state='waiting'``), ``rolled_back``, ``records`` (Feedback's keyed JSON records: live states,
Flux waits, notices, replay windows), ``verifications`` (the last verification of a change
after Flux reported it live, per environment, app and part: ``feedback.verify``), ``queued``
(changes waiting for a promotion window: claimed once, like ``pending``), ``meta`` (the schema
version and what was imported once).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

SCHEMA_VERSION = 2  # 2: verifications, queued (a file of schema 1 gets the tables at its next start)
BUSY_SECONDS = 30.0  # how long a writer waits for another's transaction before it fails

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    environment TEXT NOT NULL, namespace TEXT, name TEXT NOT NULL, part TEXT NOT NULL,
    by_id TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS locks_release ON locks (environment, ifnull(namespace, '*'), name, part);
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, settled_by TEXT NOT NULL DEFAULT '',
    requester_id TEXT NOT NULL, expires TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pending_state ON pending (state, requester_id);
CREATE TABLE IF NOT EXISTS rolled_back (
    environment TEXT NOT NULL, namespace TEXT, name TEXT NOT NULL, part TEXT NOT NULL,
    version TEXT NOT NULL, by_id TEXT NOT NULL, at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rolled_back_release
    ON rolled_back (environment, ifnull(namespace, '*'), name, part);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS verifications (
    environment TEXT NOT NULL, app TEXT NOT NULL, part TEXT NOT NULL, version TEXT NOT NULL,
    state TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (environment, app, part));
CREATE INDEX IF NOT EXISTS verifications_state ON verifications (state);
CREATE TABLE IF NOT EXISTS queued (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, environment TEXT NOT NULL, opens TEXT NOT NULL,
    requester_id TEXT NOT NULL, record TEXT NOT NULL, settled TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS queued_state ON queued (state, opens);
"""


class Store:
    """The state file at ``path``; safe to share between the threads of a process (each gets its
    own connection) and between processes (SQLite's locks)."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Who asked for what and the diffs waiting: for the bot's user only (SQLite gives its
        # -wal and -shm files the database file's permissions).
        self.path.touch(mode=0o600, exist_ok=True)
        self._local = threading.local()
        self._connections: list = []
        self._guard = threading.Lock()
        with self.transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is not None and int(found[0]) > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer Ferry (schema {found[0]}, "
                                   f"this one knows {SCHEMA_VERSION}): run that version, or restore a backup.")
            # Every table is created if missing (above): an older file is migrated by that alone.
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # Autocommit mode: transactions are opened explicitly, BEGIN IMMEDIATE per decision.
            db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            self._local.db, self._local.depth = db, 0
            with self._guard:
                self._connections.append(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One decision: everything inside commits together or not at all. Re-entrant in a thread
        (an inner block joins the outer transaction)."""
        db = self._connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield db
            finally:
                self._local.depth -= 1
            return
        db.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield db
        except BaseException:
            self._local.depth = 0
            db.execute("ROLLBACK")
            raise
        self._local.depth = 0
        db.execute("COMMIT")

    def read(self, sql: str, args: tuple = ()) -> list:
        """One query's rows; a single statement reads one consistent snapshot."""
        return self._connection().execute(sql, args).fetchall()

    def meta(self, key: str):
        found = self.read("SELECT value FROM meta WHERE key = ?", (key,))
        return found[0][0] if found else None

    def close(self) -> None:
        """Close every thread's connection (the store is not used afterwards)."""
        with self._guard:
            connections, self._connections = self._connections, []
        for db in connections:
            try:
                db.close()
            except sqlite3.ProgrammingError:  # closed by its thread already
                pass
        self._local = threading.local()


class Records(MutableMapping):
    """Feedback's keyed records (plain JSON values) in the ``records`` table, as a mapping: each
    assignment is its own statement, or part of the transaction its thread is in."""

    def __init__(self, store: Store):
        self.store = store

    def __getitem__(self, key: str):
        found = self.store.read("SELECT value FROM records WHERE key = ?", (key,))
        if not found:
            raise KeyError(key)
        return json.loads(found[0][0])

    def __setitem__(self, key: str, value) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (key, json.dumps(value)))

    def __delitem__(self, key: str) -> None:
        with self.store.transaction() as db:
            if db.execute("DELETE FROM records WHERE key = ?", (key,)).rowcount != 1:
                raise KeyError(key)

    def __contains__(self, key) -> bool:
        return bool(self.store.read("SELECT 1 FROM records WHERE key = ?", (key,)))

    def __iter__(self):
        return iter([k for (k,) in self.store.read("SELECT key FROM records ORDER BY key")])

    def __len__(self) -> int:
        return self.store.read("SELECT count(*) FROM records")[0][0]

    def items_under(self, prefix: str) -> dict:
        """Every record whose key starts with ``prefix``, in one query (a range of the key's
        index): a question about the whole fleet is one read, not one per app."""
        rows = self.store.read("SELECT key, value FROM records WHERE key >= ? AND key < ?",
                               (prefix, prefix + "\U0010ffff"))
        return {k: json.loads(v) for k, v in rows if k.startswith(prefix)}
