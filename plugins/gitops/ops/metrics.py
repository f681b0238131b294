"""Ferry's Prometheus metrics: every definition in this one module, one registry per core.

Each ``GitOps`` core owns a ``Metrics`` with its own ``CollectorRegistry`` (not prometheus_client's
global one): two bots in one process, or the many cores the tests start, never add to each
other's counters, and ``/metrics`` shows only this bot's.

No label holds a value a person or a remote chose: every label value goes through a function
here that maps it onto a fixed set (Ferry's commands, the configured environments, repositories
and registry hosts, fixed operation, outcome and reason names), anything else becoming ``other``.
An app name, a typed environment, a Flux reason or a host found in the repository can therefore
not grow the number of series.

The instrumented places call one method each: the chat replies (``command``), the Ferry plugin
(``change_pushed``), the workspace (``RepoObserver``: each git network call, each push and retry),
the registry client's one request function (``observed_request``) and the Flux events' one entry
(``observed_events``). Pending approvals are counted at scrape time (``PendingApprovals``).
"""
from __future__ import annotations

import contextvars
import functools
import logging
import time
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..workspace.observer import GitObserver
from ..workspace.process import scrub, without_userinfo

log = logging.getLogger(__name__)

OTHER = "other"
# Ferry's chat commands (the ``@answers`` functions' names); any other name is ``other``.
COMMANDS = frozenset({"versions", "diff", "deploy", "promote", "rollback", "approve", "reject",
                      "pending", "lock", "unlock", "locks", "audit"})
COMMAND_OUTCOMES = ("ok", "refused", "error")
FLUX_RESULTS = ("accepted", "refused", "error")
# Why an event was refused, by the typed error's class; ``acted``/``ignored`` for accepted ones.
FLUX_REASONS = {"Unsigned": "unsigned", "BadSignature": "bad_signature",
                "FeedbackNotConfigured": "not_configured", "EventTooLarge": "too_large",
                "MalformedEvent": "malformed", "StaleEvent": "stale", "ReplayedEvent": "replay",
                "UnknownEnvironment": "unknown_environment"}
GIT_OPERATIONS = frozenset({"clone", "fetch", "push"})
GIT_OUTCOMES = ("ok", "failed", "timeout", "error")
RETRY_REASONS = frozenset({"moved", "replan"})  # the branch moved under a push / the pin under a plan
REGISTRY_OUTCOMES = ("ok", "not_found", "refused", "error", "unreachable")
RECEIVER_OUTCOMES = ("ok", "refused", "error", "unreachable")

# Seconds: a command to its push is Git and registry round trips; Flux takes minutes.
PUSH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LIVE_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


def one_of(value, allowed) -> str:
    """``value`` when it is one of ``allowed`` (compared as text), else ``other``."""
    text = value if isinstance(value, str) else ""
    return text if text in allowed else OTHER


def command_label(name) -> str:
    return one_of(name, COMMANDS)


def command_outcome(outcome) -> str:
    """The log's outcome (``ok``, ``refused: …``, ``error 1a2b``) as one of ok, refused, error."""
    text = outcome if isinstance(outcome, str) else ""
    return next((o for o in COMMAND_OUTCOMES if text == o or text.startswith(o + " ")
                 or text.startswith(o + ":")), "error")


def git_operation(what) -> str:
    return one_of(what, GIT_OPERATIONS)


def flux_reason(error: BaseException) -> str:
    return FLUX_REASONS.get(type(error).__name__, "error")


def registry_operation(url) -> str:
    """What a request asks for, by its path: tags, manifest or blob (OCI distribution), index or
    chart (a Helm repository's ``index.yaml`` and chart archives)."""
    path = urlsplit(url if isinstance(url, str) else "").path
    if path.endswith("/tags/list"):
        return "tags"
    if path.endswith(("/index.yaml", "/index.json")):
        return "index"
    if path.endswith(".tgz"):
        return "chart"
    for part, name in (("/manifests/", "manifest"), ("/blobs/", "blob")):
        if part in path:
            return name
    return OTHER


def registry_outcome(status: Optional[int]) -> str:
    """An HTTP status as an outcome; None: no answer at all."""
    if status is None:
        return "unreachable"
    if status < 400:
        return "ok"
    if status == 404:
        return "not_found"
    if status in (401, 403):
        return "refused"
    return "error"


def repository_label(url: str, secrets: Iterable[str] = ()) -> str:
    """A repository as a label: its URL without user, password or any secret."""
    return scrub(without_userinfo(url), sorted({s for s in secrets if s}, key=len, reverse=True))


class Metrics:
    """The metrics of one core, over its settings (the fixed label sets come from them)."""

    def __init__(self, settings, pending: Callable[[], Iterable] = lambda: ()):
        self.registry = CollectorRegistry()
        secrets = settings.secrets.values()
        self._secrets = secrets
        self.environments = {n: e.name for e in settings.environments for n in (e.name, *e.aliases)}
        self.repositories = frozenset((repository_label(r.url, secrets), r.branch) for r in settings.repos())
        hosts = [c.host for c in settings.secrets.registries]
        registries = [settings.registry] + [a.registry for a in settings.apps.values()]
        hosts += [urlsplit(r.url).netloc for r in registries if r is not None]
        self.registry_hosts = frozenset(h.lower() for h in hosts if h)
        r = self.registry

        self.commands = Counter("ferry_commands", "Chat commands answered, by command and outcome "
                                "(ok; refused: a one-line refusal; error: a bug, logged with an id).",
                                ["command", "outcome"], registry=r)
        self.push_latency = Histogram("ferry_change_push_seconds", "Seconds from a chat command "
                                      "starting to its change pushed to Git.", buckets=PUSH_BUCKETS,
                                      registry=r)
        self.pushes = Counter("ferry_git_pushes", "Changes pushed to a repository (landed).",
                              ["repository", "branch"], registry=r)
        self.push_retries = Counter("ferry_git_push_retries", "Changes planned again on a newer tip: "
                                    "the push was rejected because the branch moved (moved), or the "
                                    "pin moved under the plan (replan).",
                                    ["repository", "branch", "reason"], registry=r)
        self.git_requests = Histogram("ferry_git_request_seconds", "Git network calls (clone, fetch, "
                                      "push) by outcome, and their duration.",
                                      ["repository", "branch", "operation", "outcome"],
                                      buckets=REQUEST_BUCKETS, registry=r)
        self.last_fetch = Gauge("ferry_git_last_fetch_timestamp_seconds", "When the repository was "
                                "last fetched or cloned successfully (Unix time; 0: never since start).",
                                ["repository", "branch"], registry=r)
        self.registry_requests = Histogram("ferry_registry_request_seconds", "Chart registry HTTP "
                                           "requests by host (configured ones; else other), operation "
                                           "and outcome, and their duration.",
                                           ["host", "operation", "outcome"], buckets=REQUEST_BUCKETS,
                                           registry=r)
        self.flux_events = Counter("ferry_flux_events", "Flux events received, by environment, result "
                                   "and reason (accepted: acted or ignored; refused: why).",
                                   ["environment", "result", "reason"], registry=r)
        self.flux_live = Histogram("ferry_flux_live_seconds", "Seconds from a change pushed to Flux "
                                   "reporting it live.", ["environment"], buckets=LIVE_BUCKETS,
                                   registry=r)
        self.receiver_calls = Counter("ferry_flux_receiver_calls", "Flux Receivers told of a push, by "
                                      "environment (the first naming the Receiver) and outcome.",
                                      ["environment", "outcome"], registry=r)
        r.register(PendingApprovals(pending, sorted(set(self.environments.values()))))

        for command in sorted(COMMANDS):  # every series exists from the start: rate() sees the first
            for outcome in COMMAND_OUTCOMES:
                self.commands.labels(command, outcome)
        for repository, branch in self.repositories:
            self.last_fetch.labels(repository, branch).set(0)
            self.pushes.labels(repository, branch)

    # ---- labels ----------------------------------------------------------------------------

    def environment(self, name) -> str:
        """A configured environment's name for ``name`` (its name or an alias), else ``other``."""
        return self.environments.get(name.strip().lower(), OTHER) if isinstance(name, str) else OTHER

    def repository(self, url: str, branch: str) -> tuple[str, str]:
        found = (repository_label(url, self._secrets), branch)
        return found if found in self.repositories else (OTHER, OTHER)

    def host(self, host) -> str:
        return one_of(host.lower() if isinstance(host, str) else "", self.registry_hosts)

    # ---- what the instrumented places call -------------------------------------------------

    def command(self, name, outcome) -> None:
        self.commands.labels(command_label(name), command_outcome(outcome)).inc()

    def change_pushed(self, seconds: Optional[float]) -> None:
        if seconds is not None:
            self.push_latency.observe(max(0.0, seconds))

    def flux_event(self, environment, result: str, reason: str) -> None:
        self.flux_events.labels(self.environment(environment), one_of(result, FLUX_RESULTS),
                                one_of(reason, {"acted", "ignored", "error", *FLUX_REASONS.values()})).inc()

    def went_live(self, environment, seconds: float) -> None:
        self.flux_live.labels(self.environment(environment)).observe(max(0.0, seconds))

    def receiver_called(self, environment, outcome) -> None:
        self.receiver_calls.labels(self.environment(environment), one_of(outcome, RECEIVER_OUTCOMES)).inc()

    def registry_request(self, host, url, status: Optional[int], seconds: float) -> None:
        self.registry_requests.labels(self.host(host), registry_operation(url),
                                      registry_outcome(status)).observe(seconds)

    def watch_chat(self, link) -> None:
        """The chat connection's state (a ``readiness.ChatLink``), read at each scrape."""
        self.registry.register(ChatConnection(link))

    def repo(self, url: str, branch: str, landed: Optional[Callable[[str], None]] = None) -> "RepoObserver":
        """What one repository's workspace reports to; ``landed(tip)``: told of each push."""
        return RepoObserver(self, *self.repository(url, branch), landed=landed)


class RepoObserver(GitObserver):
    """One repository's git calls, pushes and retries (the workspace's hooks), counted here; each
    landed push passed on to ``on_landed`` (the Flux Receivers)."""

    def __init__(self, metrics: Optional[Metrics], repository: str = OTHER, branch: str = OTHER,
                 landed: Optional[Callable[[str], None]] = None):
        self.metrics, self.labels, self.on_landed = metrics, (repository, branch), landed

    def landed(self, tip: str) -> None:
        if self.on_landed is None:
            return
        try:
            self.on_landed(tip)
        except Exception:  # the push landed: nothing here may turn it into a failure
            log.exception("telling of the push of %s failed", tip[:12])

    def run(self, operation: str, run: Callable, *args):
        """``run(*args)``: one git network command (a result with ``returncode``), timed and counted;
        a successful clone or fetch is the repository's last fetch."""
        if self.metrics is None:
            return run(*args)
        started = time.monotonic()
        try:
            result = run(*args)
        except Exception as e:
            self._request(operation, "timeout" if "timeout" in type(e).__name__.lower() else "error", started)
            raise
        self._request(operation, "ok" if result.returncode == 0 else "failed", started)
        return result

    def pushed(self) -> None:
        if self.metrics is not None:
            self.metrics.pushes.labels(*self.labels).inc()

    def retried(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.push_retries.labels(*self.labels, one_of(reason, RETRY_REASONS)).inc()

    def _request(self, operation: str, outcome: str, started: float) -> None:
        m, op = self.metrics, git_operation(operation)
        m.git_requests.labels(*self.labels, op, outcome).observe(time.monotonic() - started)
        if outcome == "ok" and op in ("clone", "fetch"):
            m.last_fetch.labels(*self.labels).set(time.time())



class ChatConnection:
    """Whether the bot hears chat now, how often it connected again and how long it could not."""

    def __init__(self, link):
        self.link = link

    def describe(self):
        return list(self._families())

    def collect(self):
        connected, reconnects, seconds = self.link.connected, self.link.reconnects, self.link.seconds_without()
        yield from self._families(connected, reconnects, seconds)

    @staticmethod
    def _families(connected=None, reconnects=None, seconds=None):
        families = (
            (GaugeMetricFamily, "ferry_chat_connected", "1 while the bot is connected to chat (hears "
             "commands), else 0.", connected),
            (CounterMetricFamily, "ferry_chat_reconnects", "Times the bot connected to chat again after "
             "losing its connection.", reconnects),
            (CounterMetricFamily, "ferry_chat_disconnected_seconds", "Seconds without a chat connection "
             "since the first one (the current outage included).", seconds),
        )
        for family, name, doc, value in families:
            yield family(name, doc, value=None if value is None else float(value))


class PendingApprovals:
    """The changes waiting for a second person, per environment, counted when scraped."""

    def __init__(self, pending: Callable[[], Iterable], environments: list):
        self.pending, self.environments = pending, environments

    def describe(self):
        return [GaugeMetricFamily("ferry_pending_approvals", "Changes waiting for approval.",
                                  labels=["environment"])]

    def collect(self):
        family = GaugeMetricFamily("ferry_pending_approvals", "Changes waiting for approval.",
                                   labels=["environment"])
        counts = dict.fromkeys(self.environments, 0)
        try:
            for change in self.pending():
                env = change.environment if change.environment in counts else OTHER
                counts[env] = counts.get(env, 0) + 1
        except Exception:  # a scrape must answer; the log says why this gauge is missing
            log.exception("counting pending approvals for the metrics failed")
            return
        for env, count in counts.items():
            family.add_metric([env], count)
        yield family


# ---- the one-line hooks at the edges -----------------------------------------------------------

def observed_request(do_request):
    """For the registry's one request function ``do_request(self, url, method, …)``: each request
    timed and counted on ``self.observe`` (a ``Metrics``, or None)."""

    @functools.wraps(do_request)
    def request(self, url, *args, **kwargs):
        metrics = getattr(self, "observe", None)
        if metrics is None:
            return do_request(self, url, *args, **kwargs)
        started, status = time.monotonic(), None
        try:
            response = do_request(self, url, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            host = getattr(self, "hostname", None) or urlsplit(url).netloc
            metrics.registry_request(host, url, status, time.monotonic() - started)

    return request


def observed_events(receive):
    """For ``Feedback.receive(self, environment, body, signature)``: each event counted by
    environment and result, and a change reported live timed from its push."""

    @functools.wraps(receive)
    def received(self, environment, *args, **kwargs):
        metrics = getattr(self.gitops, "metrics", None)
        if metrics is None:
            return receive(self, environment, *args, **kwargs)
        try:
            found = receive(self, environment, *args, **kwargs)
        except Exception as e:
            reason = flux_reason(e)
            metrics.flux_event(environment, "error" if reason == "error" else "refused", reason)
            raise
        metrics.flux_event(found.environment, "accepted", "ignored" if found.ignored else "acted")
        for outcome in found.outcomes:
            if outcome.kind == "live" and outcome.pending is not None:
                metrics.went_live(found.environment, outcome.elapsed)
        return found

    return received


_command_started: contextvars.ContextVar = contextvars.ContextVar("ferry_command_started", default=None)


def command_started() -> None:
    """A chat command starts in this thread: what ``since_command`` measures from."""
    _command_started.set(time.monotonic())


def since_command() -> Optional[float]:
    """Seconds since the command running in this thread started; None outside a command."""
    started = _command_started.get()
    return None if started is None else time.monotonic() - started
