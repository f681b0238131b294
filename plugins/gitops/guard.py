"""What Git cannot hold, kept in the core's memory (Errbot's storage in the bot): locks, changes
waiting for approval, and versions rolled back from an environment.

Every record is plain data assigned whole under one key, so Errbot's shelf persists it and a
restart keeps it; a lock serialises read-modify-write between the bot's threads.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Callable, MutableMapping, Optional

from .errors import FerryError, RolledBackVersion
from .model import PendingChange, Requester
from .versions import same_version

LOCKS, PENDING, ROLLED_BACK = "locks", "pending", "rolled-back"


class ApprovalRefused(FerryError):
    """An approval or rejection that cannot be taken."""


class NotLocked(FerryError):
    """An unlock of something that is not locked."""


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

    def locks(self) -> dict:
        """``env`` or ``env/app`` → {by, reason, when}."""
        return self._get(LOCKS)

    def lock(self, environment: str, app: Optional[str], by: Requester, reason: str) -> dict:
        record = {"by": by.name or by.id, "reason": reason, "when": self._now_text()}
        self._update(LOCKS, lambda r: r.__setitem__(_lock_key(environment, app), record))
        return record

    def unlock(self, environment: str, app: Optional[str]) -> dict:
        key = _lock_key(environment, app)

        def remove(records):
            if key not in records:
                what = f"`{app}` in {environment}" if app else environment
                raise NotLocked(f"{what} is not locked. `!locks` lists the locks.")
            return records.pop(key)
        return self._update(LOCKS, remove)

    # ---- approvals --------------------------------------------------------------------------

    def propose(self, minutes: float, **fields) -> PendingChange:
        now = self.clock()
        change = PendingChange(id=secrets.token_hex(3), created=_iso(now),
                               expires=_iso(now + timedelta(minutes=minutes)), **fields)
        self._update(PENDING, lambda r: r.__setitem__(change.id, asdict(change)))
        return change

    def pending(self) -> list[PendingChange]:
        """Changes waiting for approval, oldest first; expired ones are dropped."""
        now = _iso(self.clock())

        def purge(records):
            for key in [k for k, v in records.items() if v["expires"] <= now]:
                records.pop(key)
            return [_pending(v) for v in records.values()]
        return sorted(self._update(PENDING, purge), key=lambda p: p.created)

    def waiting(self, change_id: str) -> PendingChange:
        """The pending change ``change_id``, or why there is none."""
        key = (change_id or "").strip().lower()
        record = self._get(PENDING).get(key)
        if record is None:
            raise ApprovalRefused(f"No change `{key[:12]}` is waiting for approval: `!pending` lists them.")
        change = _pending(record)
        if change.expires <= _iso(self.clock()):
            self.drop(key)
            raise ApprovalRefused(f"Change `{key}` expired at {change.expires[:16].replace('T', ' ')} UTC "
                                  "without approval: ask for it again.")
        return change

    def drop(self, change_id: str) -> None:
        self._update(PENDING, lambda r: r.pop(change_id, None))

    # ---- rolled-back versions ---------------------------------------------------------------

    def remember_rollback(self, environment: str, app: str, version: str, by: Requester) -> None:
        record = {"version": version, "by": by.name or by.id, "when": self._now_text()}
        self._update(ROLLED_BACK, lambda r: r.__setitem__(f"{environment}/{app}", record))

    def rolled_back(self, environment: str, app: str) -> Optional[dict]:
        return self._get(ROLLED_BACK).get(f"{environment}/{app}")

    def refuse_rolled_back(self, environment: str, app: str, version: str, force: bool) -> None:
        record = self.rolled_back(environment, app)
        if record and same_version(record["version"], version) and not force:
            raise RolledBackVersion(
                f"`{app}` {version} was rolled back from {environment} by {record['by']} "
                f"({record['when']}): add `--force` to bring it back on purpose.")

    def forget_rollback(self, environment: str, app: str, version: str) -> None:
        def forget(records):
            record = records.get(f"{environment}/{app}")
            if record and same_version(record["version"], version):
                records.pop(f"{environment}/{app}")
        self._update(ROLLED_BACK, forget)

    def _now_text(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M UTC")


def _lock_key(environment: str, app: Optional[str]) -> str:
    return f"{environment}/{app}" if app else environment


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _pending(record: dict) -> PendingChange:
    change = PendingChange(**{**record, "requester": Requester(**record["requester"])})
    return replace(change, approvers=tuple(change.approvers) if change.approvers is not None else None,
                   forced=tuple(change.forced))
