"""The shell around ``verify``: starts a verification when Flux reports a pushed change live (or
fails it when Flux reports a failure), evaluates the checks against Prometheus when a poller
asks, reverts a failed change when the environment's ``on_failure`` says ``rollback``, and at a
restart resumes or loses what was verifying. Each decision is one transaction in the state file;
what to say comes back as ``Verdict``s (the chat plugin renders them in the change's thread).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from ..errors import CheckUnreadable, FerryError
from ..model import Requester
from ..sources.prometheus import PrometheusClient
from . import verify as v
from .events import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """Something to say about a verification, in the thread of the change it is about; a
    ``rolled-back`` one is said in the environment's notify channel too."""

    kind: str  # verifying | verified | failed | rolled-back | not-rolled-back | resumed | lost | superseded
    record: v.Verification
    change: object = None  # rolled-back: the rollback's Change
    problem: str = ""  # not-rolled-back: why Ferry could not revert it
    checks: tuple = ()  # verifying: the labels of the checks that must hold
    soak: float = 0.0  # verifying: for how long


class Verifier:
    def __init__(self, gitops, clock: Callable[[], float] = time.time,
                 prometheus: Optional[PrometheusClient] = None):
        self.gitops = gitops
        self.clock = clock
        self.prometheus = prometheus or PrometheusClient(gitops.settings.secrets.prometheus_host,
                                                         timeout=gitops.settings.registry_timeout)
        self.book = gitops.verifications
        self._lock = threading.RLock()  # one tick at a time: a check is never evaluated twice at once

    def _verify(self, environment: str):
        return self.gitops.settings.environment(environment).verify

    @property
    def interval(self) -> float:
        """How often the poller should look: the shortest interval of any environment."""
        found = [e.verify.interval for e in self.gitops.settings.environments if e.verify is not None]
        return min(found, default=30.0)

    # ---- Flux's outcome ----------------------------------------------------------------------

    def settled(self, outcome: Outcome) -> list:
        """Flux settled a pushed change (``live`` or ``failed``): begin its verification, or fail it."""
        pending, verify = outcome.pending, None
        if pending is not None and outcome.kind in ("live", "failed"):
            verify = self._verify(pending.environment)
        if verify is None:
            return []
        with self._lock:
            now = self.clock()
            if outcome.kind == "live":
                record = v.started(pending, verify, now)
                with self.gitops.state.transaction():
                    self.book.save(record)
                return [Verdict(record.state, record, checks=tuple(c.label for c in verify.checks),
                                soak=verify.soak)]
            message = f"Flux reports {outcome.event.reason}: {outcome.event.message}".strip()
            return self._failed(v.flux_failed(pending, message, now), verify)

    def superseded(self, change) -> list:
        """Another change of the same release was pushed: a verification still running ends."""
        with self._lock:
            record = self.book.get(change.environment, change.app, change.part)
            if record is None or record.state != v.VERIFYING or (change.commit and record.commit == change.commit.sha):
                return []
            record = replace(record, state=v.SUPERSEDED, updated=self.clock(),
                             reason=f"{change.new} was pushed before it ended")
            with self.gitops.state.transaction():
                self.book.save(record)
        return [Verdict(v.SUPERSEDED, record)]

    # ---- the poller ----------------------------------------------------------------------------

    def tick(self) -> list:
        """Evaluate every verification that is due; what to say about those that ended."""
        said = []
        with self._lock:
            for record in self.book.in_state(v.VERIFYING):
                verify = self._verify(record.environment) if record.environment in \
                    self.gitops.settings.environment_names else None
                if verify is None or not v.due(record, verify, self.clock()):
                    continue
                readings = {check.label: self._read(check) for check in verify.checks}
                now = self.clock()
                record = v.evaluated(record, verify, readings, now)
                if record.state == v.FAILED:
                    said += self._failed(record, verify)
                    continue
                with self.gitops.state.transaction():
                    if self._still(record):
                        self.book.save(record)
                if record.state == v.VERIFIED:
                    said.append(Verdict(v.VERIFIED, record))
        return said

    def _read(self, check):
        try:
            return self.prometheus.query(check.prometheus, check.query)
        except CheckUnreadable as e:
            return e

    def _still(self, record: v.Verification) -> bool:
        """The record in the file is still the one evaluated (no newer change replaced it)."""
        found = self.book.get(record.environment, record.app, record.part)
        return found is not None and found.commit == record.commit and found.state == v.VERIFYING

    # ---- failure -------------------------------------------------------------------------------

    def _failed(self, record: v.Verification, verify) -> list:
        with self.gitops.state.transaction():
            self.book.save(record)
        said = [Verdict(v.FAILED, record)]
        if verify.on_failure != "rollback" or not record.rolls_back:
            return said
        if not record.old:
            return said + [Verdict("not-rolled-back", record, problem="nothing was pinned before it")]
        requester = Requester(record.requester, record.requester)
        try:
            change = self.gitops.roll_back_failed(record.app, record.environment, record.part,
                                                  record.version, record.old, requester,
                                                  record.commit, record.reason)
        except FerryError as e:
            log.warning("rolling back %s %s in %s failed: %s", record.app, record.version,
                        record.environment, e)
            return said + [Verdict("not-rolled-back", record, problem=str(e))]
        record = replace(record, state=v.ROLLED_BACK, updated=self.clock(),
                         rollback=change.commit.sha if change.commit else "")
        with self.gitops.state.transaction():
            self.book.save(record)
        return said + [Verdict(v.ROLLED_BACK, record, change=change)]

    # ---- a restart -----------------------------------------------------------------------------

    def resume(self) -> list:
        """At start: every verification still ``verifying`` begins its soak again, or is lost."""
        said = []
        names = self.gitops.settings.environment_names
        for record in self.book.in_state(v.VERIFYING):
            verify = self._verify(record.environment) if record.environment in names else None
            pinned = self._pinned(record) if verify is not None else None
            record = v.resumed(record, verify, pinned, self.clock())
            with self.gitops.state.transaction():
                self.book.save(record)
            said.append(Verdict("resumed" if record.state == v.VERIFYING else v.LOST, record))
        return said

    def _pinned(self, record: v.Verification) -> Optional[str]:
        try:
            return self.gitops.pin(record.app, record.environment, part=record.part).version
        except FerryError as e:  # resumed all the same: a rollback checks the pin before it writes
            log.warning("verification of %s in %s resumed without reading its pin: %s", record.app,
                        record.environment, e)
            return record.version
