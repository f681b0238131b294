"""Flux told of each push: the environment's ``Receiver`` makes its GitRepository reconcile at once
instead of at its interval.

notification-controller serves a Receiver on ``/hook/<sha256(token + name + namespace)>`` (its
``status.webhookPath``; Ferry takes the whole URL from the settings). A ``generic-hmac`` Receiver
(internal/server/receiver_handlers.go) reads the body, checks ``X-Signature`` with go-github's
``ValidateSignature`` (``sha1=``, ``sha256=`` or ``sha512=`` and the hex HMAC of the raw body keyed
with the Secret's ``token``) and answers 400 when it does not match; any body is accepted, so it
is JSON naming the repository, branch and commit (a Receiver's CEL ``resourceFilter`` may read it).

One call per push (a group commit included) for each distinct Receiver of the environments the
repository holds, in the background: the reply never waits for it. A Receiver that fails is
logged once per kind of failure (again after it answered), counted, and never an error of the
change: Flux still reconciles at its interval. The request goes through the one HTTP door
(``sources.transport``): a time bound, one attempt, no proxy credentials from the environment,
never a link-local or metadata address; private (in-cluster) addresses are allowed.
"""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import urlsplit

import requests

from ..credentials import receiver_token_variable
from ..errors import ForbiddenAddress, SourceBusy
from ..ops.metrics import repository_label
from ..sources import transport
from .events import sign

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "refused", "error", "unreachable")
TIMEOUT = 5.0  # seconds one call may take; Flux's interval is the fallback anyway
WORKERS = 2  # calls under way at once (pushes are seconds apart; a slow Receiver waits its turn)


@dataclass(frozen=True)
class Receiver:
    """One Receiver URL and the environments (in promotion order) that name it."""

    url: str = field(repr=False)  # the digest in its path is half of what lets anyone call it
    token: str = field(repr=False)
    environments: tuple

    @property
    def shown(self) -> str:
        """The Receiver as logs name it: its host and ``/hook/…``, not the digest."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/hook/… ({', '.join(self.environments)})"


def payload(repository: str, branch: str, commit: str) -> bytes:
    """The body of one call: what was pushed, as JSON."""
    return json.dumps({"repository": repository, "branch": branch, "commit": commit},
                      sort_keys=True).encode("utf-8")


def headers(body: bytes, token: str) -> dict:
    """What a generic-hmac Receiver checks: the body's HMAC-SHA256 with the token."""
    return {"Content-Type": "application/json", "X-Signature": sign(body, token, "sha256")}


def outcome(status: Optional[int]) -> str:
    """An answer as a counted outcome; None: no answer at all."""
    if status is None:
        return "unreachable"
    if status < 300:
        return "ok"
    return "refused" if status < 500 else "error"


def receivers(settings, repo) -> tuple:
    """The distinct Receivers of the environments ``repo`` (a ``RepoSettings``) holds."""
    found: dict = {}
    for env in settings.environments:
        if env.repo == repo and env.flux_receiver:
            token = settings.secrets.receiver_token(env.name)
            names = found.get((env.flux_receiver, token), ())
            found[(env.flux_receiver, token)] = (*names, env.name)
    return tuple(Receiver(url, token, names) for (url, token), names in found.items())


def signed_post(session, target: Receiver, body: bytes, timeout: float) -> tuple:
    """One signed call through the one HTTP door: (its HTTP status or None, what went wrong)."""
    try:
        response = transport.send(session, "POST", target.url, timeout=timeout,
                                  headers=headers(body, target.token), data=body)
        response.close()
        return response.status_code, f"it answered HTTP {response.status_code}"
    except (ForbiddenAddress, SourceBusy) as e:
        return None, str(e)
    except requests.RequestException as e:
        return None, f"no answer ({type(e).__name__})"
    except Exception:  # a bug of ours: never the change's error; logged once like the others
        log.exception("calling the Flux Receiver %s failed", target.shown)
        return None, "an error in Ferry (logged)"


# What notification-controller's answers mean (internal/server/receiver_handlers.go, handlePayload):
# no Receiver has the path, it is suspended or not ready, the signature does not match, or it could
# not annotate a resource of ``spec.resources``.
ANSWERS = {
    404: "no Receiver has this webhook path: set `flux_receiver.url` to the Receiver's address "
         "(`kubectl get receiver <name> -o jsonpath='{.status.webhookPath}'`)",
    503: "the Receiver is suspended or not ready (`kubectl describe receiver <name>`)",
    400: "it refused the signature: {variable} is not the `token` of the Receiver's Secret, or the "
         "Receiver is not of type `generic-hmac`",
    500: "notification-controller could not request the reconciliation (its log says why: a "
         "resource of `spec.resources` not found, or RBAC)",
}


def tried(settings, timeout: float = TIMEOUT) -> list:
    """`ferry check`: each distinct Receiver called once, signed as after a push, naming the
    repository and branch with an empty commit (a call only asks Flux to reconcile its sources
    now): (the Receiver, what it answered, "" or what is wrong and how to fix it)."""
    session, found = transport.bounded_session(timeout), []
    try:
        for repo in settings.repos():
            body = payload(repository_label(repo.url, settings.secrets.values()), repo.branch, "")
            for target in receivers(settings, repo):
                status, problem = signed_post(session, target, body, timeout)
                if status is not None and status < 300:
                    found.append((target, f"Flux asked to reconcile (HTTP {status})", ""))
                    continue
                advice = ANSWERS.get(status, problem)
                variable = receiver_token_variable(target.environments[0])
                found.append((target, "", advice.replace("{variable}", variable) if status else
                              f"{problem}: is notification-controller's webhook-receiver Service "
                              f"reachable from Ferry at {urlsplit(target.url).netloc}?"))
    finally:
        session.close()
    return found


class Receivers:
    """Calls the Receivers after each push, in the background. ``counted(environment, outcome)``
    is the metrics' hook (the first environment naming the Receiver)."""

    def __init__(self, settings, counted: Callable[[str, str], None] = lambda env, outcome: None,
                 timeout: float = TIMEOUT):
        self.settings, self.counted, self.timeout = settings, counted, timeout
        self._session = transport.bounded_session(timeout)
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._failing: dict = {}  # Receiver URL -> the kinds of failure logged since it last answered

    def landing(self, repo, public_url: str) -> Optional[Callable[[str], None]]:
        """What the workspace of ``repo`` calls with the tip of each push it landed (None when no
        environment of that repository has a Receiver)."""
        targets = receivers(self.settings, repo)
        if not targets:
            return None
        return lambda tip: self.notify(targets, payload(public_url, repo.branch, tip))

    def notify(self, targets: tuple, body: bytes) -> list[Future]:
        """Call each of ``targets`` with ``body``, in the background."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="flux-receiver")
            return [self._pool.submit(self.call, target, body) for target in targets]

    def call(self, target: Receiver, body: bytes) -> str:
        """One signed POST; its outcome, counted and (a failure's first of its kind) logged."""
        status, problem = signed_post(self._session, target, body, self.timeout)
        found = outcome(status)
        self.counted(target.environments[0], found)
        self._log(target, found, problem)
        return found

    def _log(self, target: Receiver, found: str, problem: str) -> None:
        with self._lock:
            seen = self._failing.setdefault(target.url, set())
            if found == "ok":
                recovered = bool(seen)
                seen.clear()
            elif found in seen:
                return
            else:
                seen.add(found)
        if found == "ok":
            if recovered:
                log.info("the Flux Receiver %s answers again", target.shown)
            return
        log.warning("the Flux Receiver %s was not told of a push: %s; Flux still reconciles at its "
                    "interval (said once until it answers again)", target.shown, problem)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        self._session.close()
