"""Flux feedback: events in, what to say out, state in ``GitOps.memory``. No chat, no HTTP.

``Feedback`` ties the pure functions of ``events`` to the core: it verifies and accepts an event
for an environment, maps it to the app Ferry discovered there, records the live state, settles
the pushed change waiting for it, and returns the ``Outcome``s to say. The chat plugin renders and
sends them; the HTTP endpoint turns ``EventRefused`` into its status code.

Memory (``GitOps.memory``: JSON records in Ferry's state file, ``state.store``; each event, push and
timeout is one transaction, so a kill leaves every record as it was before or after it):
``flux/live/<env>/<app>`` the last live or failed event, ``flux/pending/<env>/<app>`` the pushed
change waiting for Flux, ``flux/notified/<env>/<app>`` the last notice sent, ``flux/replay-until`` the
digests of the bodies accepted, each until its timestamp stops being accepted.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Optional

from . import events
from ..errors import EventTooLarge, FeedbackNotConfigured
from .events import FluxEvent, Outcome
from ..ops.metrics import observed_events
from .records import ReplyTarget, WaitingDeploy
from ..settings import flux_token_variable

log = logging.getLogger(__name__)

NOTICE_WINDOW = 6 * 3600.0  # seconds: the same notice is not repeated within this time
FORGET_AFTER = 24 * 3600.0  # seconds: a change that timed out still hears its outcome this long


@dataclass(frozen=True)
class Received:
    """What became of one accepted event."""

    environment: str
    event: FluxEvent
    app: str = ""  # "" when the event is about nothing Ferry manages
    ignored: str = ""  # why nothing was done, for the HTTP answer and the log
    outcomes: tuple = ()  # tuple[Outcome, ...] to say


class Feedback:
    """One per process, over the core's settings, inventory and memory."""

    def __init__(self, gitops, clock: Callable[[], float] = time.time):
        self.gitops = gitops
        self.clock = clock
        self._lock = threading.RLock()

    @property
    def memory(self):
        return self.gitops.memory

    @contextmanager
    def _decision(self):
        """One event, push or timeout: the threads of this process one at a time, and one
        transaction in the state file."""
        with self._lock, self.gitops.state.transaction():
            yield

    @property
    def settings(self):
        return self.gitops.settings

    @property
    def timeout(self) -> float:
        return self.settings.flux.timeout_minutes * 60

    @property
    def max_age(self) -> float:
        return self.settings.flux.max_age_minutes * 60

    def configured(self, environment: str) -> bool:
        """Flux can report on this environment: a token is set for it."""
        return bool(self.settings.secrets.flux_token(self.settings.environment(environment).name))

    # ---- events in -------------------------------------------------------------------------

    @observed_events
    def receive(self, environment: str, body: bytes, signature: Optional[str]) -> Received:
        """Verify, parse and act on one request body for ``environment`` (a name or an alias).

        Raises ``UnknownEnvironment`` or an ``EventRefused`` (signature, size, JSON, age, replay):
        nothing is recorded or said then."""
        env = self.settings.environment(environment)
        token = self.settings.secrets.flux_token(env.name)
        if not token:
            raise FeedbackNotConfigured(
                f"No token is set for {env.name}'s Flux events ({flux_token_variable(env.name)}): "
                "none is accepted.")
        if len(body) > events.MAX_BODY:  # the one size check (the HTTP edge reads MAX_BODY + 1 at most)
            raise EventTooLarge(f"The body has {len(body)} bytes; at most {events.MAX_BODY} are accepted.")
        events.verify(body, signature, token)
        event = events.parse_event(body)
        now = self.clock()
        max_age = timedelta(seconds=self.max_age)
        events.check_fresh(event, _utc(now), max_age)
        digest = events.body_digest(body, env.name)
        with self._decision():
            seen = self._get(events.SEEN_KEY) or {}
            events.check_replay(seen, digest, now)
            self.memory[events.SEEN_KEY] = events.remember(seen, digest,
                                                           events.replay_until(event, max_age), now)
        if event.kind != "HelmRelease":
            log.info("Flux event %s for %s %s in %s ignored: only HelmReleases are apps", event.reason,
                     event.kind, event.release, env.name)
            return Received(env.name, event, ignored=f"a {event.kind} event, not a HelmRelease one")
        pin = self._release(env.name, event)
        if pin is None:
            log.info("Flux event %s for HelmRelease %s in %s ignored: no such release in the repository",
                     event.reason, event.release, env.name)
            return Received(env.name, event, ignored=f"HelmRelease {event.release} is not an app in {env.name}")
        return self._act(env, pin.app, event, now)

    def _release(self, environment: str, event: FluxEvent):
        """The pin the event is about: the clone as it is, then the remote's newest commit."""
        for refresh in (False, True):
            inventory = self.gitops.inventory(refresh=refresh)
            pin = events.match_release(inventory.in_environment(environment), event)
            if pin is not None:
                return pin
        return None

    def _act(self, env, app: str, event: FluxEvent, now: float) -> Received:
        said = []
        with self._decision():
            previous = self._get(events.live_key(env.name, app))
            record = events.live_record(event, app, env.name, _utc(now))
            if record is not None:
                self.memory[events.live_key(env.name, app)] = record
            key = events.pending_key(env.name, app)
            pending = self._waiting(key)
            outcome, settled = events.decide(event, app, env.name, pending, now, previous)
            if settled:
                del self.memory[key]
            if outcome is not None and outcome.pending is None:
                outcome = self._notice(env, app, event, outcome, now)
            if outcome is not None:
                said.append(outcome)
        log.info("Flux event %s for %s in %s (revision %s): %s", event.reason, app, env.name,
                 event.revision or "-", ", ".join(o.kind for o in said) or "nothing to say")
        return Received(env.name, event, app, "" if said or record else f"{event.reason} changes nothing Ferry shows",
                        tuple(said))

    def _notice(self, env, app: str, event: FluxEvent, outcome: Outcome, now: float) -> Optional[Outcome]:
        if not env.notify:
            return None
        key = events.notified_key(env.name, app)
        notice = events.notice_key(event)
        if events.is_duplicate_notice(self._get(key), notice, now, NOTICE_WINDOW):
            return None
        self.memory[key] = {"key": notice, "at": now}
        return outcome

    # ---- changes pushed --------------------------------------------------------------------

    def expect(self, change, requester, target: ReplyTarget) -> Optional[Outcome]:
        """A change was pushed on ``requester``'s behalf (a ``Requester``): wait for Flux to report
        on it. ``target`` says where to answer. Returns what to tell an older change of the same app and
        environment that this one replaces, if any."""
        if change.commit is None or not self.configured(change.environment):
            return None
        now = self.clock()
        key = events.pending_key(change.environment, change.app)
        record = events.pending_record(change, requester, target, now,
                                       self._get(events.live_key(change.environment, change.app)))
        with self._decision():
            older = self._waiting(key)
            self.memory[key] = asdict(record)
        if older is None or older.timed_out:
            return None
        return Outcome("superseded", change.app, change.environment, older,
                       elapsed=now - older.pushed_at, by=record)

    def expired(self) -> list[Outcome]:
        """Pushed changes Flux said nothing about within the timeout: said once; they still hear
        their outcome for a day, then are forgotten."""
        now, said = self.clock(), []
        with self._decision():
            for key in [k for k in list(self.memory.keys()) if k.startswith(events.PENDING_PREFIX)]:
                pending = self._waiting(key)
                if pending is None:
                    continue
                if events.overdue(pending, now, self.timeout):
                    pending = replace(pending, timed_out=True)
                    self.memory[key] = asdict(pending)
                    said.append(Outcome("timeout", pending.app, pending.environment, pending,
                                        elapsed=now - pending.pushed_at))
                elif pending.timed_out and now - pending.pushed_at > FORGET_AFTER:
                    del self.memory[key]
        return said

    def pending(self) -> list[WaitingDeploy]:
        return [p for k in list(self.memory.keys()) if k.startswith(events.PENDING_PREFIX)
                if (p := self._waiting(k)) is not None]

    def _waiting(self, key: str) -> Optional[WaitingDeploy]:
        """The change waiting for Flux under ``key``: stored as a dict, typed here only."""
        record = self._get(key)
        if record is None:
            return None
        return WaitingDeploy(**{**record, "target": ReplyTarget(**record["target"]),
                                "pushed_at": float(record["pushed_at"])})

    # ---- live state ------------------------------------------------------------------------

    def live(self, pins: Iterable) -> dict:
        return live_states(self.memory, pins)

    def _get(self, key: str):
        try:
            return self.memory[key] if key in self.memory else None
        except KeyError:
            return None


def live_states(memory: Mapping, pins: Iterable) -> dict:
    """The last live or failed event per (app, environment) of ``pins``, as recorded."""
    # For a whole table the state file answers every live record in one read, not one per pin.
    pins = list(pins)
    many = len(pins) > 64 and hasattr(memory, "items_under")
    recorded = memory.items_under(events.LIVE_PREFIX) if many else memory
    found = {}
    for pin in pins:
        key = events.live_key(pin.environment, pin.app)
        if key in recorded:
            found[(pin.app, pin.environment)] = recorded[key]
    return found


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)

