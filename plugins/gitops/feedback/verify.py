"""Verification of a change after Flux reports it live: the record, the pure decisions over it, and
its rows in the state file (``verifications``, one per environment, app and part: the last one).

A record is ``verifying`` from the live event (``since``) until every check held over its soak
(``verified``, ``verified_at``), or one evaluation did not hold or Flux reported a failure
(``failed``), then ``rolled-back`` once Ferry reverted it; ``lost`` when a restart could not resume
it; ``superseded`` when another change of the same release was pushed before it ended. ``cause`` says why it failed: ``flux`` (Flux's failure), ``check`` (a query's value), or
``unreadable`` (a check could not be evaluated: never rolled back on that, only said).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Optional

from ..guard.soak import Verify
from .records import ReplyTarget

VERIFYING, VERIFIED, FAILED, ROLLED_BACK, LOST, SUPERSEDED = (
    "verifying", "verified", "failed", "rolled-back", "lost", "superseded")


@dataclass(frozen=True)
class Verification:
    environment: str
    app: str
    part: str
    version: str
    old: str  # the version before the change: what a rollback restores
    commit: str  # the change's commit
    action: str  # deploy | promote | rollback (a rollback is never rolled back automatically)
    requester: str
    target: ReplyTarget
    state: str
    since: float  # epoch seconds: the live event, or the restart that began the soak again
    updated: float = 0.0
    figures: Mapping = field(default_factory=dict)  # check label -> the last value it returned
    evaluations: int = 0
    verified_at: Optional[float] = None
    reason: str = ""  # why it failed or was lost
    cause: str = ""  # flux | check | unreadable
    rollback: str = ""  # the rollback's commit

    @property
    def rolls_back(self) -> bool:
        """Whether a failure of this change may be reverted automatically."""
        return self.action != "rollback" and self.cause in ("flux", "check")


def started(pending, verify: Verify, now: float) -> Verification:
    """A change Flux reports live (``pending``: its ``WaitingDeploy``): verifying, or verified at
    once when the environment has no checks."""
    record = Verification(pending.environment, pending.app, pending.part, pending.version, pending.old,
                          pending.commit, pending.action, pending.requester, pending.target,
                          VERIFYING, now, now)
    if not verify.checks:
        return replace(record, state=VERIFIED, verified_at=now)
    return record


def flux_failed(pending, message: str, now: float) -> Verification:
    return Verification(pending.environment, pending.app, pending.part, pending.version, pending.old,
                        pending.commit, pending.action, pending.requester, pending.target,
                        FAILED, now, now, reason=message, cause="flux")


def evaluated(record: Verification, verify: Verify, readings: Mapping, now: float) -> Verification:
    """The record after one evaluation of every check: ``readings`` maps each check's label to its
    ``Reading`` or the ``CheckUnreadable`` it raised. The first false or unreadable evaluation
    fails it; all true over the soak verifies it."""
    figures = dict(record.figures)
    for check in verify.checks:
        found = readings[check.label]
        if isinstance(found, Exception):
            return replace(record, state=FAILED, updated=now, cause="unreadable",
                           reason=f"`{check.label}` could not be evaluated: {found}")
        figures[check.label] = found.figure
        if not found.holds:
            return replace(record, state=FAILED, updated=now, figures=figures, cause="check",
                           reason=f"`{check.query}` on {check.prometheus} does not hold: it returned "
                                  f"{found.figure}")
    record = replace(record, updated=now, figures=figures, evaluations=record.evaluations + 1)
    if now - record.since >= verify.soak:
        return replace(record, state=VERIFIED, verified_at=now)
    return record


def due(record: Verification, verify: Verify, now: float) -> bool:
    """An evaluation is due: verifying, and an interval since the last (or the soak is over)."""
    return record.state == VERIFYING and (
        record.evaluations == 0 or now - record.updated >= verify.interval
        or now - record.since >= verify.soak)


def resumed(record: Verification, verify: Optional[Verify], pinned: Optional[str], now: float) -> Verification:
    """A record found ``verifying`` at a restart: the soak begins again from ``now`` (what Prometheus
    said while Ferry was away was not evaluated), or it is lost when the environment verifies
    nothing now or ``pinned`` (the version in Git now) is another."""
    if verify is None:
        return replace(record, state=LOST, updated=now,
                       reason="the environment's settings no longer say how to verify it")
    if pinned != record.version:
        return replace(record, state=LOST, updated=now,
                       reason=f"Git pins {pinned or 'nothing'} there now, not {record.version}")
    return replace(record, since=now, updated=now, evaluations=0)


# ---- the state file ----------------------------------------------------------------------------

class VerificationBook:
    """The ``verifications`` table: the last verification per environment, app and part."""

    def __init__(self, store):
        self.store = store

    def save(self, record: Verification) -> None:
        row = asdict(record)
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO verifications VALUES (?, ?, ?, ?, ?, ?)",
                       (record.environment, record.app, record.part, record.version, record.state,
                        json.dumps(row)))

    def get(self, environment: str, app: str, part: str) -> Optional[Verification]:
        rows = self.store.read("SELECT record FROM verifications WHERE environment = ? AND app = ? AND part = ?",
                               (environment, app, part))
        return _record(rows[0][0]) if rows else None

    def of_app(self, app: str) -> list[Verification]:
        rows = self.store.read("SELECT record FROM verifications WHERE app = ? ORDER BY environment, part", (app,))
        return [_record(r) for (r,) in rows]

    def in_state(self, state: str) -> list[Verification]:
        rows = self.store.read("SELECT record FROM verifications WHERE state = ?", (state,))
        return [_record(r) for (r,) in rows]

    def verified_at(self, environment: str, app: str, part: str, version: str) -> Optional[float]:
        """When ``version`` was verified there (its last verification), or None."""
        found = self.get(environment, app, part)
        if found is None or found.state != VERIFIED or found.version != version:
            return None
        return found.verified_at


def _record(text: str) -> Verification:
    row = json.loads(text)
    return Verification(**{**row, "target": ReplyTarget(**row["target"])})
