"""Verification of a change after Flux reports it live: the record, the pure decisions over it, and
its rows in the state file (``verifications``, one per release: the last one).

A record is ``verifying`` from the live event (``since``) until every check held over its soak
(``verified``, ``verified_at``), or one evaluation did not hold or Flux reported a failure
(``failed``), then ``rolled-back`` once Ferry reverted it; ``lost`` when a restart could not resume
it; ``superseded`` when another change of the same release was pushed before it ended. ``cause``
says why it failed: ``flux`` (Flux's failure), ``timeout`` (Flux said nothing of it within
``flux.timeout_minutes``), ``check`` (a query's value), or ``unreadable`` (a check could not be
evaluated: never rolled back on that, only said).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Mapping, Optional

from ..guard.soak import Verify
from ..identity import Release
from ..model import Requester
from .records import ReplyTarget, release_of, requester_of

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
    requester: Requester  # on whose behalf the change was pushed: a rollback's author and Requested-by
    target: ReplyTarget
    state: str
    since: float  # epoch seconds: the live event, or the restart that began the soak again
    updated: float = 0.0
    figures: Mapping = field(default_factory=dict)  # check label -> the last value it returned
    evaluations: int = 0
    verified_at: Optional[float] = None
    reason: str = ""  # why it failed or was lost
    cause: str = ""  # flux | timeout | check | unreadable
    rollback: str = ""  # the rollback's commit
    namespace: Optional[str] = None  # the release it is about (None, "": see ``records.release_of``)
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "requester", requester_of(self.requester))

    @property
    def release(self) -> Release:
        return release_of(self.environment, self.app, self.part, self.namespace, self.name)

    @property
    def rolls_back(self) -> bool:
        """Whether a failure of this change may be reverted automatically."""
        return self.action != "rollback" and self.cause in ("flux", "check", "timeout")


def started(pending, verify: Verify, now: float) -> Verification:
    """A change Flux reports live (``pending``: its ``WaitingDeploy``): verifying, or verified at
    once when the environment has no checks."""
    record = _of(pending, VERIFYING, now)
    if not verify.checks:
        return replace(record, state=VERIFIED, verified_at=now)
    return record


def flux_failed(pending, message: str, now: float) -> Verification:
    return replace(_of(pending, FAILED, now), reason=message, cause="flux")


def flux_silent(pending, timeout_minutes: float, now: float) -> Verification:
    """Flux said nothing of the change within its wait: nothing shows it healthy, so it failed."""
    return replace(_of(pending, FAILED, now), cause="timeout",
                   reason=f"Flux did not report it live within {timeout_minutes:g} minute"
                          f"{'' if timeout_minutes == 1 else 's'} of the push")


def _of(pending, state: str, now: float) -> Verification:
    release = pending.release
    return Verification(pending.environment, pending.app, pending.part, pending.version, pending.old,
                        pending.commit, pending.action, pending.requester, pending.target, state, now, now,
                        namespace=release.namespace, name=release.name)


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
    """A record found ``verifying`` at a restart, as it was (what Prometheus said while Ferry was
    away is read next: ``missed``, then ``caught_up`` or ``restarted``), or lost when the
    environment verifies nothing now or ``pinned`` (the version in Git now) is another."""
    if verify is None:
        return replace(record, state=LOST, updated=now,
                       reason="the environment's settings no longer say how to verify it")
    if pinned != record.version:
        return replace(record, state=LOST, updated=now,
                       reason=f"Git pins {pinned or 'nothing'} there now, not {record.version}")
    return record


def missed(record: Verification, verify: Verify, now: float) -> Optional[tuple]:
    """The evaluations a restart missed, as (start, end, step) of a range query: from an interval
    after the last one to ``now``, or to the soak's end when it ended while Ferry was away; None
    when none was missed."""
    start = record.updated + verify.interval if record.evaluations else record.since
    end = min(now, record.since + verify.soak)
    return (start, end, verify.interval) if start <= end else None


def caught_up(record: Verification, verify: Verify, readings: Mapping, now: float) -> Verification:
    """The record after the evaluations a restart missed, read back from Prometheus: ``readings``
    maps each check's label to ``[(time, Reading), …]``. The first that did not hold fails it
    (at its time, while Ferry was away); all held: the soak goes on from when it began, or it is
    verified when it ended meanwhile."""
    figures, last = dict(record.figures), record.updated
    for check in verify.checks:
        for at, found in readings.get(check.label, ()):
            if not found.holds:
                when = datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M:%S UTC")
                return replace(record, state=FAILED, updated=now, figures={**figures, check.label: found.figure},
                               cause="check", reason=f"`{check.query}` on {check.prometheus} did not hold at "
                                                     f"{when}, while Ferry was away: it returned {found.figure}")
            figures[check.label], last = found.figure, max(last, at)
    steps = max((len(r) for r in readings.values()), default=0)
    record = replace(record, figures=figures, updated=last, evaluations=record.evaluations + steps)
    if now >= record.since + verify.soak:  # the soak ended while Ferry was away, every step held
        return replace(record, state=VERIFIED, verified_at=record.since + verify.soak)
    return record


def restarted(record: Verification, now: float) -> Verification:
    """What a restart missed could not be read: the soak begins again from ``now``."""
    return replace(record, since=now, updated=now, evaluations=0)


# ---- the state file ----------------------------------------------------------------------------

class VerificationBook:
    """The ``verifications`` table: the last verification of each release (one part of it), keyed
    as locks are: whatever its app is called, two releases of one name never share one."""

    def __init__(self, store):
        self.store = store

    def save(self, record: Verification) -> None:
        release = record.release
        with self.store.transaction() as db:
            # A record from before releases (any namespace) is replaced by the release's own.
            db.execute("DELETE FROM verifications WHERE environment = ? AND name = ? AND part = ? "
                       "AND (namespace IS NULL OR namespace = ?)",
                       (release.environment, release.name, release.part, release.namespace))
            db.execute("INSERT INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (release.environment, release.namespace, release.name, release.part, record.app,
                        record.version, record.state, json.dumps(asdict(record))))

    def get(self, release: Release) -> Optional[Verification]:
        """The last verification of ``release``: its own, else one from before releases by its name."""
        rows = self.store.read("SELECT namespace, record FROM verifications WHERE environment = ? "
                               "AND name = ? AND part = ?", (release.environment, release.name, release.part))
        found = [(namespace, text) for namespace, text in rows
                 if release.namespace is None or namespace in (None, release.namespace)]
        found.sort(key=lambda row: row[0] is None)
        return _record(found[0][1]) if found else None

    def of_releases(self, releases) -> list[Verification]:
        """The last verification of each of ``releases`` that has one, by environment and part."""
        found = [r for r in map(self.get, dict.fromkeys(releases)) if r is not None]
        return sorted(found, key=lambda r: (r.environment, r.part != "chart", r.part))

    def in_state(self, state: str) -> list[Verification]:
        rows = self.store.read("SELECT record FROM verifications WHERE state = ?", (state,))
        return [_record(r) for (r,) in rows]

    def verified_at(self, release: Release, version: str) -> Optional[float]:
        """When ``version`` was verified in ``release`` (its last verification), or None."""
        found = self.get(release)
        if found is None or found.state != VERIFIED or found.version != version:
            return None
        return found.verified_at


def _record(text: str) -> Verification:
    row = json.loads(text)
    return Verification(**{**row, "target": ReplyTarget(**row["target"])})
