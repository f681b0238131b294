"""Flux's notification-controller reporting back: pure functions over plain data, no I/O.

A Flux ``Provider`` of type ``generic-hmac`` posts every event an ``Alert`` selects as a JSON
``Event`` (``involvedObject``, ``reason``, ``severity``, ``message``, ``metadata``, ``timestamp``)
with ``X-Signature: sha256=<hex>``, the HMAC of the raw body keyed with the Provider's token.

Here: the signature (``sign``, ``verify``), the event (``parse_event``, ``FluxEvent``), refusing
stale and replayed bodies (``check_fresh``, ``body_digest``, ``is_replay``, ``remember``), the
mapping event → app (``match_release``), the live-state record (``live_record``) and what to say
about a pushed change waiting for its outcome (``decide``, ``overdue``).

Replay protection: an event is refused when its ``timestamp`` is older than the accepted age
(15 minutes by default) or more than 5 minutes in the future, and when the digest of its body was
accepted before and its timestamp would still pass that check: the digest is remembered until the
event's own ``timestamp`` + the accepted age (``replay_until``), not for a window from its arrival,
so a future-dated event cannot be replayed after an arrival-based window ends. Together the two
refuse every replay: while the timestamp is accepted by digest, after that by age.
(notification-controller rate-limits identical events itself, so two identical bodies within
minutes are never two different facts.)

The body's size is checked once, by ``Feedback.receive``, before the signature.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping, Optional

from ..errors import BadSignature, MalformedEvent, ReplayedEvent, StaleEvent, UnreadableDocument, Unsigned
from ..model import CHART
from .records import ReplyTarget, WaitingDeploy
from ..safeyaml import load_json
from ..versions import same_version

MAX_BODY = 256 * 1024  # bytes; Flux events are a few kilobytes, Helm errors included
MAX_MESSAGE = 2000  # characters of Flux's message kept and shown
FUTURE_SKEW = timedelta(minutes=5)  # clocks disagree a little

SUCCEEDED = frozenset({"InstallSucceeded", "UpgradeSucceeded", "TestSucceeded"})
FAILED = frozenset({"InstallFailed", "UpgradeFailed", "TestFailed"})
REMEDIATED = frozenset({"RollbackSucceeded", "RollbackFailed", "UninstallSucceeded",
                        "UninstallFailed", "RemediationFailed"})

_HASHES = {"sha224": hashlib.sha224, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
           "sha512": hashlib.sha512}


# ---- signature ---------------------------------------------------------------------------------

def sign(body: bytes, token: str, algorithm: str = "sha256") -> str:
    """The ``X-Signature`` value notification-controller sends: ``sha256=<hex HMAC of body>``."""
    digest = hmac.new(token.encode("utf-8"), body, _HASHES[algorithm]).hexdigest()
    return f"{algorithm}={digest}"


def verify(body: bytes, header: Optional[str], token: str) -> None:
    """Raise ``Unsigned`` without a signature, ``BadSignature`` unless it is the body's HMAC."""
    if not header or not header.strip():
        raise Unsigned("No X-Signature header: Ferry only accepts signed Flux events (generic-hmac).")
    algorithm, sep, given = header.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if not sep or algorithm not in _HASHES:
        raise BadSignature("X-Signature is not <sha256|sha224|sha384|sha512>=<hex>.")
    expected = hmac.new(token.encode("utf-8"), body, _HASHES[algorithm]).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("ascii", "replace")):
        raise BadSignature("X-Signature does not match the body: wrong token, or the body was changed.")


def body_digest(body: bytes, environment: str = "") -> str:
    """What replay protection remembers of an accepted body (per environment: two clusters may
    send the same bytes)."""
    return hashlib.sha256(environment.encode("utf-8") + b"\n" + body).hexdigest()


# ---- the event ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FluxEvent:
    """One event as notification-controller forwards it."""

    kind: str  # involvedObject.kind: "HelmRelease", "Kustomization", …
    name: str
    namespace: str
    reason: str  # "UpgradeSucceeded", "UpgradeFailed", …
    severity: str  # "info" | "error"
    message: str
    revision: str  # metadata …/revision as sent: "6.6.1+0cc9a8446c95", "" when absent
    timestamp: datetime  # aware, UTC
    controller: str = ""  # reportingController
    # metadata …/token: helm-controller's checksum of the release's values (fluxcd/helm-controller
    # #695), which changes when an image tag in them does while the chart revision stays.
    token: str = ""

    @property
    def version(self) -> str:
        """The chart version: the revision without ``+<digest>`` build metadata."""
        return self.revision.split("+", 1)[0]

    @property
    def outcome(self) -> str:
        """``live`` (installed, upgraded or tested), ``failed`` (a failed action, a remediation by
        Flux, any error), ``drift`` (drift detected or corrected), else ``info`` (progress)."""
        if self.reason in SUCCEEDED:
            return "live"
        if self.reason in FAILED or self.reason in REMEDIATED or self.severity == "error":
            return "failed"
        if "drift" in self.reason.lower():
            return "drift"
        return "info"

    @property
    def release(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def parse_event(body: bytes) -> FluxEvent:
    """The event in a request body (its size already checked); ``MalformedEvent`` says what is wrong."""
    try:
        raw = load_json(body, "The body")
    except UnreadableDocument as e:
        raise MalformedEvent(f"The body {e.problem}.") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("The body is not a JSON object (a Flux event).")
    obj = raw.get("involvedObject")
    if not isinstance(obj, dict):
        raise MalformedEvent("`involvedObject` is missing: this is not a Flux event.")
    kind, name = _text(obj, "kind", "involvedObject.kind"), _text(obj, "name", "involvedObject.name")
    namespace = _text(obj, "namespace", "involvedObject.namespace", required=False)
    reason = _text(raw, "reason", "reason")
    severity = _text(raw, "severity", "severity", required=False).lower() or "info"
    message = _text(raw, "message", "message", required=False)
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedEvent("`metadata` is not a mapping.")
    revision = _revision(metadata)
    token = _revision(metadata, "token")
    stamp = _text(raw, "timestamp", "timestamp")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"`timestamp` is not an RFC 3339 time: {stamp[:40]!r}.") from None
    if when.tzinfo is None:
        raise MalformedEvent("`timestamp` has no time zone.")
    controller = _text(raw, "reportingController", "reportingController", required=False)
    return FluxEvent(kind, name, namespace, reason, severity, message[:MAX_MESSAGE], revision,
                     when.astimezone(timezone.utc), controller, token)


def _text(raw: Mapping, key: str, where: str, required: bool = True) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise MalformedEvent(f"`{where}` is missing.")
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"`{where}` is not a string.")
    if len(value) > 64 * 1024:
        raise MalformedEvent(f"`{where}` is too long.")
    return value


def _revision(metadata: Mapping, key: str = "revision") -> str:
    """``helm.toolkit.fluxcd.io/revision`` (any controller group's ``…/revision``, or ``revision``);
    the same for ``token``."""
    candidates = [k for k in metadata if isinstance(k, str) and (k == key or k.endswith(f"/{key}"))]
    candidates.sort(key=lambda k: (k != f"helm.toolkit.fluxcd.io/{key}", k))
    for key in candidates:
        value = metadata[key]
        if isinstance(value, str) and value.strip() and len(value) <= 256:
            return value.strip()
    return ""


# ---- freshness and replays ---------------------------------------------------------------------

def check_fresh(event: FluxEvent, now: datetime, max_age: timedelta) -> None:
    """Refuse an event older than ``max_age`` or from the future (beyond a little clock skew)."""
    if event.timestamp < now - max_age:
        raise StaleEvent(f"The event's timestamp {event.timestamp:%Y-%m-%dT%H:%M:%SZ} is older than "
                         f"{int(max_age.total_seconds() // 60)} minutes: refused as a possible replay.")
    if event.timestamp > now + FUTURE_SKEW:
        raise StaleEvent(f"The event's timestamp {event.timestamp:%Y-%m-%dT%H:%M:%SZ} is in the future.")


def replay_until(event: FluxEvent, max_age: timedelta) -> float:
    """Until when (epoch seconds) a replay of this event must be refused: as long as
    ``check_fresh`` would accept its timestamp."""
    return (event.timestamp + max_age).timestamp()


def is_replay(seen: Mapping[str, float], digest: str, now: float) -> bool:
    """The same body was accepted and its timestamp is still accepted (``seen``: digest → until)."""
    until = seen.get(digest)
    return until is not None and now <= until


def remember(seen: Mapping[str, float], digest: str, until: float, now: float) -> dict:
    """A new record of accepted digests: this one refused until ``until``, the expired dropped."""
    kept = {d: t for d, t in seen.items() if now <= t}
    kept[digest] = max(until, kept.get(digest, until))
    return kept


def check_replay(seen: Mapping[str, float], digest: str, now: float) -> None:
    if is_replay(seen, digest, now):
        raise ReplayedEvent("This exact event was already accepted: refused as a replay.")


# ---- event → app -------------------------------------------------------------------------------

def match_release(pins: Iterable, event: FluxEvent):
    """The pin of the HelmRelease the event is about, among one environment's pins, or None.

    By name and namespace as discovered; a release discovered without a namespace (one set by
    the Flux Kustomization) matches by name when the name is unique there."""
    if event.kind != "HelmRelease":
        return None
    same_name = [p for p in pins if _bare(p.app) == event.name]
    exact = [p for p in same_name if p.namespace and p.namespace == event.namespace]
    if len(exact) == 1:
        return exact[0]
    loose = [p for p in same_name if not p.namespace]
    if len(loose) == 1 and len(same_name) == 1:
        return loose[0]
    return None


def _bare(app: str) -> str:
    return app.rsplit("/", 1)[-1]


# ---- live state --------------------------------------------------------------------------------

def live_record(event: FluxEvent, app: str, environment: str, received: datetime) -> Optional[dict]:
    """What ``!versions`` shows as live for an app in an environment, from an event that says
    something about it (``live`` or ``failed``); None for progress and drift events."""
    if event.outcome not in ("live", "failed"):
        return None
    return {"app": app, "environment": environment, "state": event.outcome,
            "version": event.version, "revision": event.revision, "token": event.token,
            "reason": event.reason,
            "message": event.message, "at": _iso(event.timestamp), "received": _iso(received)}


LIVE_PREFIX = "flux/live/"


def live_key(environment: str, app: str) -> str:
    return f"{LIVE_PREFIX}{environment}/{app}"


def pending_key(environment: str, app: str) -> str:
    return f"flux/pending/{environment}/{app}"


def notified_key(environment: str, app: str) -> str:
    return f"flux/notified/{environment}/{app}"


SEEN_KEY = "flux/replay-until"  # digest -> epoch seconds (was flux/seen: arrival times)
PENDING_PREFIX = "flux/pending/"


# ---- what to say -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """Something to say. ``pending`` (the change waiting for Flux) set: in its thread;
    otherwise in the environment's notification channel."""

    kind: str  # "live" | "failed" | "timeout" | "superseded" | "notice"
    app: str
    environment: str
    pending: Optional[WaitingDeploy] = None
    event: Optional[FluxEvent] = None
    elapsed: float = 0.0  # seconds since the push
    by: Optional[WaitingDeploy] = None  # superseded: the newer pending change


def pending_record(change, requester, target: ReplyTarget, pushed_at: float,
                   live: Optional[Mapping] = None) -> WaitingDeploy:
    """A pushed change waiting for Flux, on ``requester``'s behalf (a ``Requester``); ``live``:
    the release's live record before the push."""
    token = str((live or {}).get("token") or "") if change.part != CHART else ""
    release = change.release
    return WaitingDeploy(change.app, change.environment, change.action, change.old or "", change.new,
                         change.commit.sha if change.commit else "", requester, target, pushed_at,
                         part=change.part, token=token, namespace=release.namespace if release else None,
                         name=release.name if release else "")


def settles_image(event: FluxEvent, pending: WaitingDeploy) -> bool:
    """Whether a release's event reports on an image tag pushed by ``pending``. Flux's event
    names the chart revision, which an image tag does not change: the event must come after the
    push, and, when helm-controller sent the values token before and now, with other values."""
    if event.timestamp.timestamp() < pending.pushed_at:
        return False
    return not (pending.token and event.token and event.token == pending.token)


def decide(event: FluxEvent, app: str, environment: str, pending: Optional[WaitingDeploy],
           now: float, previous: Optional[Mapping] = None) -> tuple[Optional[Outcome], bool]:
    """What an event means: (what to say, whether it settles the pending change).

    A pending change is settled by the release at its version installed, upgraded or tested
    (``live``), or by a failure at its version, or by Flux remediating (rolling back or
    uninstalling) the release. Any other ``failed`` or ``drift`` event is news for the
    environment's channel, and so is a ``live`` one unless ``previous`` (the live record before
    this event) already had that version live (a test passing after the upgrade it followed);
    progress events say nothing."""
    outcome = event.outcome
    if pending is not None and pending.part != CHART:
        elapsed = max(0.0, now - pending.pushed_at)
        if outcome in ("live", "failed") and settles_image(event, pending):
            return Outcome(outcome, app, environment, pending, event, elapsed), True
    elif pending is not None:
        elapsed = max(0.0, now - pending.pushed_at)
        at_version = bool(event.version) and same_version(event.version, pending.version)
        if outcome == "live" and at_version:
            return Outcome("live", app, environment, pending, event, elapsed), True
        if outcome == "failed" and (at_version or not event.version or event.reason in REMEDIATED):
            return Outcome("failed", app, environment, pending, event, elapsed), True
    if outcome == "live" and previous and previous.get("state") == "live" \
            and same_version(str(previous.get("version", "")), event.version):
        return None, False
    if outcome in ("live", "failed", "drift"):
        return Outcome("notice", app, environment, None, event), False
    return None, False


def notice_key(event: FluxEvent) -> str:
    """Two notices with the same key say the same thing (notification-controller's own
    rate-limit key, without the time)."""
    text = "\n".join([event.kind, event.namespace, event.name, event.reason, event.revision, event.message])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_duplicate_notice(last: Optional[Mapping], key: str, now: float, window: float) -> bool:
    return bool(last) and last.get("key") == key and now - float(last.get("at", 0)) < window


def overdue(pending: WaitingDeploy, now: float, timeout: float) -> bool:
    """Nothing came within ``timeout`` seconds of the push, and that was not said yet."""
    return not pending.timed_out and now - pending.pushed_at >= timeout


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
