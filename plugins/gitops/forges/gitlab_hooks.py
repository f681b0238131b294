"""GitLab's Merge Request Hook read as a ``PullRequestEvent``: checked, bounded, replay-safe.

GitLab sends the webhook's secret token as it is in ``X-Gitlab-Token`` (no signature): it is
compared in constant time, and a delivery without it, or with another, is refused before the
body is read. The body is bounded (``MAX_BODY``) and read by the one loader (size, nesting).

Replays: GitLab keeps ``Idempotency-Key`` across the retries and the manual resends of one
delivery (GitLab 17.4 and later) and makes ``X-Gitlab-Webhook-UUID`` anew for every request;
``X-Gitlab-Event-UUID`` names the request that caused the event, shared by every hook it fires
(one approval can fire ``approval`` and ``approved``), so it is no delivery's name. A delivery is
refused when its ``Idempotency-Key`` or the digest of its body was accepted before: two real
events never have the same body (the acting user, the action or a time differs), so an older
GitLab without the key is covered too. What was accepted is remembered for ``KEEP`` (a resend is
a person's click in GitLab's webhook log, days later at most) and at most ``REMEMBERED`` of them.

Other events (``Note Hook``, ``Push Hook``, …) and merge requests of other projects (a group
webhook sends every project's) are not about Ferry's merge requests: ``None``.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from typing import Mapping, Optional

from ..errors import (BadSignature, EventTooLarge, FeedbackNotConfigured, MalformedEvent,
                      ReplayedEvent, UnreadableDocument, Unsigned)
from ..safeyaml import Limits, load_json
from . import CLOSED, MERGED, OPEN, PullRequest, PullRequestEvent

MAX_BODY = 1024 * 1024  # bytes: a description is at most 1 MB, most hooks are a few KB
HOOK_LIMITS = Limits(bytes=MAX_BODY, depth=32)  # GitLab's hook nests 5 levels
KEEP = 7 * 24 * 3600.0  # seconds a delivery is remembered
REMEMBERED = 10_000
EVENT = "Merge Request Hook"

# object_attributes.action → the contract's action. `approval`/`unapproval` are one person's
# review while more are required, and `unapproved` takes the approval back: the merge request
# changed, the required reviews are not (or no longer) satisfied.
ACTIONS = {"open": "opened", "reopen": "opened", "update": "updated", "merge": "merged",
           "close": "closed", "approved": "approved", "approval": "updated",
           "unapproval": "updated", "unapproved": "updated"}
STATES = {"opened": OPEN, "locked": OPEN, "merged": MERGED, "closed": CLOSED}


class Deliveries:
    """The deliveries accepted lately (their ``Idempotency-Key`` and body digest), in memory."""

    def __init__(self, keep: float = KEEP, limit: int = REMEMBERED):
        self.keep, self.limit = keep, limit
        self._until: OrderedDict = OrderedDict()  # key -> until (epoch seconds), oldest first
        self._lock = threading.Lock()

    def accept(self, keys: tuple, now: float) -> bool:
        """Remember ``keys`` and say True, or say False when any of them is still remembered."""
        with self._lock:
            while self._until and next(iter(self._until.values())) < now:
                self._until.popitem(last=False)
            if any(self._until.get(k, 0.0) >= now for k in keys):
                return False
            for key in keys:
                self._until[key] = now + self.keep
                self._until.move_to_end(key)
            while len(self._until) > self.limit:
                self._until.popitem(last=False)
            return True


def read_hook(headers: Mapping[str, str], body: bytes, *, secret: str, project: str,
              deliveries: Deliveries, now: float) -> Optional[PullRequestEvent]:
    """The event a delivery is about, None when it is not about one of ``project``'s merge
    requests, or an ``EventRefused`` (the token, the size, the JSON, a replay)."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    if len(body) > MAX_BODY:
        raise EventTooLarge(f"The body is larger than {MAX_BODY // 1024} KiB: not a merge request hook "
                            "Ferry reads.")
    if not secret:
        raise FeedbackNotConfigured("No webhook secret is set for this GitLab project: Ferry accepts "
                                    "no GitLab webhook until one is.")
    given = lower.get("x-gitlab-token", "")
    if not given:
        raise Unsigned("No X-Gitlab-Token header: set the webhook's secret token in GitLab to "
                       "Ferry's webhook secret.")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8")):
        raise BadSignature("X-Gitlab-Token is not Ferry's webhook secret for this project.")
    if lower.get("x-gitlab-event", "").strip() != EVENT:
        return None
    try:
        raw = load_json(body, "The body", HOOK_LIMITS)
    except UnreadableDocument as e:
        raise MalformedEvent(f"The body {e.problem}.") from None
    if not isinstance(raw, dict) or raw.get("object_kind") != "merge_request" or \
            not isinstance(raw.get("object_attributes"), dict):
        raise MalformedEvent("The body is not a merge request hook (`object_kind`, "
                             "`object_attributes`).")
    if not _ours(raw, project):
        return None
    pull_request, action, actor = _parse(raw)
    digest = hashlib.sha256(body).hexdigest()
    key = lower.get("idempotency-key", "").strip()[:200]
    if not deliveries.accept(tuple(filter(None, (key and f"key:{key}", f"body:{digest}"))), now):
        raise ReplayedEvent("This GitLab delivery was accepted before: a replay or a resend.")
    delivery = key or lower.get("x-gitlab-webhook-uuid", "").strip()[:200] or digest
    return PullRequestEvent(delivery, action, pull_request, actor)


def _ours(raw: dict, project: str) -> bool:
    """The hook is about a merge request into ``project`` (its path, or its number)."""
    target = raw.get("project")
    if not isinstance(target, dict):
        return False
    wanted = project.strip("/").lower()
    if wanted.isdigit():
        return str(target.get("id")) == wanted
    return str(target.get("path_with_namespace", "")).lower() == wanted


def _parse(raw: dict) -> tuple:
    attributes = raw["object_attributes"]
    iid = attributes.get("iid")
    if not isinstance(iid, int) or isinstance(iid, bool):
        raise MalformedEvent("`object_attributes.iid` is not a number.")
    state = STATES.get(str(attributes.get("state")))
    if state is None:
        raise MalformedEvent("`object_attributes.state` is not opened, locked, merged or closed.")
    action = ACTIONS.get(str(attributes.get("action")), "updated")
    user = raw.get("user") if isinstance(raw.get("user"), dict) else {}
    actor = _text(user.get("username")) or None
    last_commit = attributes.get("last_commit") if isinstance(attributes.get("last_commit"), dict) else {}
    head = _text(last_commit.get("id"))
    merge_commit = _text(attributes.get("merge_commit_sha")) or \
        _text(attributes.get("squash_commit_sha")) or (head if state == MERGED else "")
    pull_request = PullRequest(
        number=iid, url=_text(attributes.get("url")), state=state,
        branch=_text(attributes.get("source_branch")), base=_text(attributes.get("target_branch")),
        head_sha=head, merge_commit=merge_commit or None,
        merged_by=actor if action == "merged" else None, approved=action == "approved")
    if not pull_request.branch or not pull_request.base:
        raise MalformedEvent("`object_attributes` names no source or target branch.")
    return pull_request, action, actor


def _text(value, limit: int = 1024) -> str:
    return value[:limit] if isinstance(value, str) else ""
