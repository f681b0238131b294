"""What Git cannot hold, in Ferry's state file (``state.store``): locks, changes waiting for
approval, and versions rolled back from an environment.

Records are typed here (``Lock``, ``RolledBack``, ``PendingChange``) and stored as rows: this
module is the only one that converts between the two. Each is keyed by the release it is about
(``Release``: environment, namespace/name, part), never by the app's display name, which turns into
``namespace/name`` as soon as a second release of that name appears; and each says who decided by
chat user ID. Every decision is one transaction.

A change waiting for approval is claimed once: approving, rejecting, expiring or dropping it is an
``UPDATE … WHERE state = 'waiting'`` that changes one row or none, and the record stays a day so
whoever comes second is told what became of it.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Callable, Optional

from ..errors import ApprovalRefused, NotLocked, TooManyWaiting
from ..identity import Release, mention
from ..model import Blocker, Lock, PendingChange, Requester, RolledBack
from ..state.store import Store
from ..versions import same_version

ID_BYTES = 5  # change ids of 10 hex digits: no collision among the few changes that wait at once
KEEP_SETTLED = timedelta(days=1)  # a settled change is remembered this long past its expiry
WAITING, APPLYING, APPLIED, REJECTED, EXPIRED, DROPPED = (
    "waiting", "applying", "applied", "rejected", "expired", "dropped")
INTERRUPTED = ("the bot stopped while applying it: `!versions <app> <env>` shows whether it was "
               "pushed; ask for it again if not")


class Guard:
    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store = store
        self.clock = clock

    def recover(self) -> list[str]:
        """At start: changes a stopped bot was applying are dropped, never applied twice (whether
        they were pushed is in Git). Returns their ids."""
        with self.store.transaction() as db:
            ids = [i for (i,) in db.execute("SELECT id FROM pending WHERE state = ?", (APPLYING,))]
            db.execute("UPDATE pending SET state = ?, settled_by = ? WHERE state = ?",
                       (DROPPED, INTERRUPTED, APPLYING))
        return ids

    # ---- locks ------------------------------------------------------------------------------

    def locks(self) -> list[Lock]:
        """Every lock, environments first."""
        rows = self.store.read("SELECT environment, namespace, name, part, by_id, at, reason FROM locks "
                               "ORDER BY environment, name, namespace")
        return [_lock(row) for row in rows]

    def locks_on(self, release: Release) -> list[Lock]:
        """The locks that stand in a change of ``release``'s way: its environment's, its own."""
        return [lock for lock in self.locks() if lock.release.covers(release)]

    def lock(self, release: Release, by: Requester, reason: str) -> Lock:
        """Lock ``release`` (every part when its ``part`` is "", the whole environment when its
        ``name`` is "")."""
        lock = Lock(by=by.id, when=self._now_text(), reason=reason, release=release)
        with self.store.transaction() as db:
            db.execute("DELETE FROM locks WHERE environment = ? AND ifnull(namespace, '*') = ifnull(?, '*') "
                       "AND name = ? AND part = ?", _where(release))
            db.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (*_where(release), lock.by, lock.when, lock.reason))
        return lock

    def unlock(self, release: Release, what: str) -> Lock:
        """Lift the lock on ``release`` (``what``: how people call it, for the refusal)."""
        with self.store.transaction() as db:
            found = [_lock(row) for row in db.execute(
                "SELECT environment, namespace, name, part, by_id, at, reason FROM locks "
                "WHERE environment = ? AND name = ? AND part = ?",
                (release.environment, release.name, release.part))
                if row[1] is None or row[1] == release.namespace]
            if not found:
                raise NotLocked(f"{what} is not locked. `!locks` lists the locks.")
            db.execute("DELETE FROM locks WHERE environment = ? AND ifnull(namespace, '*') = ifnull(?, '*') "
                       "AND name = ? AND part = ?", _where(found[0].release))
        return found[0]

    # ---- approvals --------------------------------------------------------------------------

    def propose(self, minutes: float, max_waiting: int, **fields) -> PendingChange:
        """Hold a change for approval under a new id; refused when its requester already has
        ``max_waiting`` changes waiting."""
        now = self.clock()
        requester = fields["requester"]
        with self.store.transaction() as db:
            self._expire(db, now)
            mine = db.execute("SELECT count(*) FROM pending WHERE state = ? AND requester_id = ?",
                              (WAITING, requester.id)).fetchone()[0]
            if mine >= max_waiting:
                raise TooManyWaiting(
                    f"You already have {mine} changes waiting for approval, the most one person "
                    f"may: `!reject` one of yours (`!pending` lists them) or have one approved first.")
            change_id = secrets.token_hex(ID_BYTES)
            while db.execute("SELECT 1 FROM pending WHERE id = ?", (change_id,)).fetchone():
                change_id = secrets.token_hex(ID_BYTES)  # a proposal never overwrites another
            change = PendingChange(id=change_id, created=_iso(now),
                                   expires=_iso(now + timedelta(minutes=minutes)), **fields)
            db.execute("INSERT INTO pending VALUES (?, ?, '', ?, ?, ?)",
                       (change.id, WAITING, requester.id, change.expires, _record(change)))
        return change

    def pending(self) -> list[PendingChange]:
        """Changes waiting for approval, oldest first; expired ones are marked so."""
        with self.store.transaction() as db:
            self._expire(db, self.clock())
            rows = db.execute("SELECT record, state, settled_by FROM pending WHERE state = ?",
                              (WAITING,)).fetchall()
        return sorted((_pending(*row) for row in rows), key=lambda p: p.created)

    def waiting(self, change_id: str) -> PendingChange:
        """The change ``change_id`` if it still waits, or why it does not (ApprovalRefused)."""
        with self.store.transaction() as db:
            self._expire(db, self.clock())
            return self._still_waiting(db, _key(change_id))

    def find(self, change_id: str) -> Optional[PendingChange]:
        """The change ``change_id`` in whatever state it is now (expired ones marked so), or None."""
        with self.store.transaction() as db:
            self._expire(db, self.clock())
            return self._read(db, _key(change_id))

    def claim(self, change_id: str, state: str, by: str) -> PendingChange:
        """Take a waiting change out of ``waiting`` into ``state`` (applying, rejected, dropped), at
        most once: a second claim, or one after expiry, is refused saying what happened. ``by``:
        the chat user ID of who decided (for ``dropped``, why)."""
        key = _key(change_id)
        with self.store.transaction() as db:
            self._expire(db, self.clock())
            taken = db.execute("UPDATE pending SET state = ?, settled_by = ? WHERE id = ? AND state = ?",
                               (state, by, key, WAITING)).rowcount
            if taken != 1:
                self._still_waiting(db, key)  # says what became of it
            return self._read(db, key)

    def settle(self, change_id: str, state: str) -> None:
        """A claimed change's outcome: ``applied``, ``dropped``, or ``waiting`` again when applying
        it failed before anything was pushed."""
        with self.store.transaction() as db:
            db.execute("UPDATE pending SET state = ? WHERE id = ? AND state = ?", (state, change_id, APPLYING))

    def _read(self, db, key: str) -> Optional[PendingChange]:
        row = db.execute("SELECT record, state, settled_by FROM pending WHERE id = ?", (key,)).fetchone()
        return _pending(*row) if row else None

    def _still_waiting(self, db, key: str) -> PendingChange:
        change = self._read(db, key)
        if change is None:
            raise ApprovalRefused(f"No change `{key[:12]}` is waiting for approval: `!pending` lists them.")
        by = mention(change.settled_by)
        said = {
            APPLYING: f"is already being applied by {by}",
            APPLIED: f"was already approved by {by}",
            REJECTED: f"was already rejected by {by}",
            DROPPED: f"was dropped: {change.settled_by}",
            EXPIRED: f"expired at {change.expires[:16].replace('T', ' ')} UTC without approval: "
                     "ask for it again",
        }.get(change.state)
        if said:
            raise ApprovalRefused(f"Change `{key}` {said}.")
        return change

    @staticmethod
    def _expire(db, now: datetime) -> None:
        """Mark the waiting changes past their time expired; forget settled ones a day later."""
        db.execute("DELETE FROM pending WHERE expires <= ?", (_iso(now - KEEP_SETTLED),))
        db.execute("UPDATE pending SET state = ? WHERE state = ? AND expires <= ?", (EXPIRED, WAITING, _iso(now)))

    # ---- rolled-back versions ---------------------------------------------------------------

    def remember_rollback(self, release: Release, version: str, by: Requester) -> None:
        """``version`` was rolled back from ``release`` (one part): bringing it back needs --force."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM rolled_back WHERE environment = ? AND ifnull(namespace, '*') = ifnull(?, '*') "
                       "AND name = ? AND part = ?", _where(release))
            db.execute("INSERT INTO rolled_back VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (*_where(release), version, by.id, self._now_text()))

    def rolled_back(self, release: Release) -> Optional[RolledBack]:
        """The version rolled back from this part of this release, if any."""
        rows = self.store.read("SELECT environment, namespace, name, part, version, by_id, at FROM rolled_back "
                               "WHERE environment = ? AND name = ?", (release.environment, release.name))
        found = [RolledBack(version, by, at, Release(env, ns, name, part))
                 for env, ns, name, part, version, by, at in rows]
        return next((r for r in found if r.release.covers(release)), None)

    def forget_rollback(self, release: Release, version: str) -> None:
        """``version`` is in ``release`` again (someone brought it back): its guard goes."""
        with self.store.transaction() as db:
            for ns, part, old in db.execute(
                    "SELECT namespace, part, version FROM rolled_back WHERE environment = ? AND name = ?",
                    (release.environment, release.name)).fetchall():
                record = Release(release.environment, ns, release.name, part)
                if record.covers(release) and same_version(old, version):
                    db.execute("DELETE FROM rolled_back WHERE environment = ? AND ifnull(namespace, '*') = "
                               "ifnull(?, '*') AND name = ? AND part = ?", _where(record))

    def _now_text(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M UTC")


def _where(release: Release) -> tuple:
    return release.environment, release.namespace, release.name, release.part


def _lock(row) -> Lock:
    environment, namespace, name, part, by, when, reason = row
    return Lock(by=by, when=when, reason=reason, release=Release(environment, namespace, name, part))


def _key(change_id: str) -> str:
    return (change_id or "").strip().lower()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _record(change: PendingChange) -> str:
    record = asdict(change)
    record.pop("state"), record.pop("settled_by")
    return json.dumps(record)


def pending_from(record: dict, state: str = WAITING, settled_by: str = "") -> PendingChange:
    """A waiting change from its stored dict (this store's or an older shelf's)."""
    record = {**record, "state": state, "settled_by": settled_by}
    change = PendingChange(**{**record, "requester": Requester(**record["requester"])})
    forced = tuple(Blocker(**b) if isinstance(b, dict) else Blocker("lock", b, b.split(". An admin")[0])
                   for b in change.forced)  # records from before blockers were typed hold text
    return replace(change, approvers=tuple(change.approvers) if change.approvers is not None else None,
                   forced=forced, also=tuple(tuple(a) for a in change.also),
                   requester=replace(change.requester, channels=tuple(change.requester.channels)))


def _pending(record: str, state: str, settled_by: str) -> PendingChange:
    return pending_from(json.loads(record), state, settled_by)
