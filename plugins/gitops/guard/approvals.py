"""What Git cannot hold, kept in the core's memory (Errbot's storage in the bot): locks, changes
waiting for approval, and versions rolled back from an environment.

Records are typed here (``Lock``, ``RolledBack``, ``PendingChange``) and stored as plain dicts:
this module is the only one that converts between the two. Every record is assigned whole under
one key, so Errbot's storage persists it and a restart keeps it; a lock serialises
read-modify-write between the bot's threads.

A change waiting for approval is claimed once: approving, rejecting, expiring or dropping it moves
it out of ``waiting`` under that lock, and the record stays a day so whoever comes second is told
what became of it.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Callable, MutableMapping, Optional

from ..errors import ApprovalRefused, NotLocked, TooManyWaiting
from ..model import Blocker, Lock, PendingChange, Requester, RolledBack
from ..versions import same_version

LOCKS, PENDING, ROLLED_BACK = "locks", "pending", "rolled-back"
ID_BYTES = 5  # change ids of 10 hex digits: no collision among the few changes that wait at once
KEEP_SETTLED = timedelta(days=1)  # a settled change is remembered this long past its expiry
WAITING, APPLYING, APPLIED, REJECTED, EXPIRED, DROPPED = (
    "waiting", "applying", "applied", "rejected", "expired", "dropped")


class Guard:
    def __init__(self, memory: MutableMapping, clock: Callable[[], datetime]):
        self.memory = memory
        self.clock = clock
        self._lock = threading.RLock()

    def _get(self, key: str) -> dict:
        return dict(self.memory[key]) if key in self.memory else {}

    def _update(self, key: str, change: Callable[[dict], object]):
        with self._lock:
            records = self._get(key)
            result = change(records)
            self.memory[key] = records
            return result

    # ---- locks ------------------------------------------------------------------------------

    def locks(self) -> dict[str, Lock]:
        """``env`` or ``env/app`` → the lock."""
        return {key: Lock(**record) for key, record in self._get(LOCKS).items()}

    def lock(self, environment: str, app: Optional[str], by: Requester, reason: str) -> Lock:
        lock = Lock(by=by.name or by.id, when=self._now_text(), reason=reason)
        self._update(LOCKS, lambda r: r.__setitem__(_lock_key(environment, app), asdict(lock)))
        return lock

    def unlock(self, environment: str, app: Optional[str]) -> Lock:
        key = _lock_key(environment, app)

        def remove(records):
            if key not in records:
                what = f"`{app}` in {environment}" if app else environment
                raise NotLocked(f"{what} is not locked. `!locks` lists the locks.")
            return Lock(**records.pop(key))
        return self._update(LOCKS, remove)

    # ---- approvals --------------------------------------------------------------------------

    def propose(self, minutes: float, max_waiting: int, **fields) -> PendingChange:
        """Hold a change for approval under a new id; refused when its requester already has
        ``max_waiting`` changes waiting."""
        now = self.clock()

        def add(records):
            self._expire(records, now)
            requester = fields["requester"]
            mine = [r for r in records.values()
                    if r.get("state", WAITING) == WAITING and r["requester"]["id"] == requester.id]
            if len(mine) >= max_waiting:
                raise TooManyWaiting(
                    f"You already have {len(mine)} changes waiting for approval, the most one person "
                    f"may: `!reject` one of yours (`!pending` lists them) or have one approved first.")
            change_id = secrets.token_hex(ID_BYTES)
            while change_id in records:  # a proposal never overwrites another
                change_id = secrets.token_hex(ID_BYTES)
            change = PendingChange(id=change_id, created=_iso(now),
                                   expires=_iso(now + timedelta(minutes=minutes)), **fields)
            records[change.id] = asdict(change)
            return change
        return self._update(PENDING, add)

    def pending(self) -> list[PendingChange]:
        """Changes waiting for approval, oldest first; expired ones are marked so."""
        now = self.clock()

        def waiting(records):
            self._expire(records, now)
            return [_pending(v) for v in records.values() if v.get("state", WAITING) == WAITING]
        return sorted(self._update(PENDING, waiting), key=lambda p: p.created)

    def waiting(self, change_id: str) -> PendingChange:
        """The change ``change_id`` if it still waits, or why it does not (ApprovalRefused)."""
        key = _key(change_id)

        def look(records):
            self._expire(records, self.clock())
            return self._still_waiting(records, key)
        return self._update(PENDING, look)

    def find(self, change_id: str) -> Optional[PendingChange]:
        """The change ``change_id`` in whatever state it is now (expired ones marked so), or None."""
        key = _key(change_id)

        def look(records):
            self._expire(records, self.clock())
            return _pending(records[key]) if key in records else None
        return self._update(PENDING, look)

    def claim(self, change_id: str, state: str, by: str) -> PendingChange:
        """Take a waiting change out of ``waiting`` into ``state`` (applying, rejected, dropped), at
        most once: a second claim, or one after expiry, is refused saying what happened."""
        key = _key(change_id)

        def take(records):
            self._expire(records, self.clock())
            self._still_waiting(records, key)
            records[key] = {**records[key], "state": state, "settled_by": by}
            return _pending(records[key])
        return self._update(PENDING, take)

    def settle(self, change_id: str, state: str) -> None:
        """A claimed change's outcome: ``applied``, ``dropped``, or ``waiting`` again when applying
        it failed before anything was pushed."""
        def mark(records):
            if change_id in records:
                records[change_id] = {**records[change_id], "state": state}
        self._update(PENDING, mark)

    def _still_waiting(self, records: dict, key: str) -> PendingChange:
        record = records.get(key)
        if record is None:
            raise ApprovalRefused(f"No change `{key[:12]}` is waiting for approval: `!pending` lists them.")
        change = _pending(record)
        said = {
            APPLYING: f"is already being applied by {change.settled_by}",
            APPLIED: f"was already approved by {change.settled_by}",
            REJECTED: f"was already rejected by {change.settled_by}",
            DROPPED: f"was dropped: {change.settled_by}",
            EXPIRED: f"expired at {change.expires[:16].replace('T', ' ')} UTC without approval: "
                     "ask for it again",
        }.get(change.state)
        if said:
            raise ApprovalRefused(f"Change `{key}` {said}.")
        return change

    def _expire(self, records: dict, now: datetime) -> None:
        """Mark the waiting changes past their time expired; forget settled ones a day later."""
        moment, forget = _iso(now), _iso(now - KEEP_SETTLED)
        for key, record in list(records.items()):
            if record["expires"] <= forget:
                records.pop(key)
            elif record["expires"] <= moment and record.get("state", WAITING) == WAITING:
                records[key] = {**record, "state": EXPIRED}

    # ---- rolled-back versions ---------------------------------------------------------------

    def remember_rollback(self, environment: str, app: str, version: str, by: Requester) -> None:
        record = RolledBack(version=version, by=by.name or by.id, when=self._now_text())
        self._update(ROLLED_BACK, lambda r: r.__setitem__(f"{environment}/{app}", asdict(record)))

    def rolled_back(self, environment: str, app: str) -> Optional[RolledBack]:
        record = self._get(ROLLED_BACK).get(f"{environment}/{app}")
        return RolledBack(**record) if record else None

    def forget_rollback(self, environment: str, app: str, version: str) -> None:
        def forget(records):
            record = records.get(f"{environment}/{app}")
            if record and same_version(record["version"], version):
                records.pop(f"{environment}/{app}")
        self._update(ROLLED_BACK, forget)

    def _now_text(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M UTC")


def _key(change_id: str) -> str:
    return (change_id or "").strip().lower()


def _lock_key(environment: str, app: Optional[str]) -> str:
    return f"{environment}/{app}" if app else environment


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _pending(record: dict) -> PendingChange:
    change = PendingChange(**{**record, "requester": Requester(**record["requester"])})
    forced = tuple(Blocker(**b) if isinstance(b, dict) else Blocker("lock", b, b.split(". An admin")[0])
                   for b in change.forced)  # records from before blockers were typed hold text
    return replace(change, approvers=tuple(change.approvers) if change.approvers is not None else None,
                   forced=forced, requester=replace(change.requester,
                                                    channels=tuple(change.requester.channels)))
