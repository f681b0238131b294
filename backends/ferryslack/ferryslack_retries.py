"""What the bot does when Slack's Web API answers with a fault: slack_sdk's retry handlers, bounded.

- **429** (rate limited): the call waits the ``Retry-After`` Slack gives and goes again, for every
  method (a reply waits in its own pool thread, so the replies of one command stay in order); past
  ``MAX_WAIT`` seconds in all, the log says what was not delivered, and to whom.
- **5xx and timeouts**: a call that changes nothing twice (``chat.update``, reactions, look-ups) is
  simply sent again; a reply (``chat.postMessage``) is sent again only once Slack's own history
  shows it did not land, so a reply is never posted twice: Slack has no idempotency key for it.
- Connection resets: slack_sdk's own handler, as its default.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from typing import Optional
from urllib.error import URLError
from urllib.parse import parse_qsl

from slack_sdk.errors import SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.web import WebClient

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds one call may wait for Slack's rate limits before it is given up
SERVER_RETRIES = 3
SENT_WINDOW = 30.0  # seconds before the first fault a reply may have been taken by Slack
SERVER_ERRORS = (500, 502, 503, 504)
# Sent twice, these change nothing more than once (or only read).
AGAIN_IS_SAFE = frozenset({
    "chat.update", "reactions.add", "reactions.remove", "auth.test", "apps.connections.open",
    "users.info", "users.list", "bots.info", "team.info", "conversations.info", "conversations.list",
    "conversations.open", "conversations.history", "conversations.replies", "files.getUploadURLExternal"})
POSTS = frozenset({"chat.postMessage"})


def retry_handlers() -> list:
    return [ConnectionErrorRetryHandler(max_retry_count=2), BoundedRateLimits(max_retry_count=20),
            ServerFaults(max_retry_count=SERVER_RETRIES)]


class BoundedRateLimits(RateLimitErrorRetryHandler):
    """Slack's ``Retry-After``, waited for, up to ``MAX_WAIT`` seconds per call."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is None or response.status_code != 429:
            return False
        waited = getattr(state, "ferry_waited", 0.0)
        wait = _retry_after(response)
        if waited + wait > MAX_WAIT:
            log.error("Slack rate-limits %s; not delivered after %.0f s (Retry-After %s s): %s",
                      _method(request), waited, wait, _what(request))
            return False
        state.ferry_waited = waited + wait
        return True


class ServerFaults(RetryHandler):
    """5xx and timeouts: again for what is safe to send twice, and for a reply Slack did not keep."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is not None:
            fault = response.status_code in SERVER_ERRORS
        else:
            fault = _timed_out(error)
        if not fault:
            return False
        method = _method(request)
        if method in AGAIN_IS_SAFE:
            return True
        if method in POSTS:
            since = getattr(state, "ferry_since", None)
            if since is None:
                since = state.ferry_since = time.time() - SENT_WINDOW
            landed = _landed(request, since)
            if landed is None:
                log.error("Slack answered %s with a fault and its history cannot tell whether it landed; "
                          "not sent again (never twice): %s", method, _what(request))
            elif landed:
                log.warning("Slack answered %s with a fault but kept the message; not sent again: %s",
                            method, _what(request))
            return landed is False
        return False


def _landed(request, since: float) -> Optional[bool]:
    """Whether the bot's message is in its channel (or thread) since ``since``; None: cannot tell."""
    args = _args(request)
    channel, text, thread = args.get("channel"), args.get("text"), args.get("thread_ts")
    token = (request.headers.get("Authorization") or [""])[0].removeprefix("Bearer ")
    if not channel or not token:
        return None
    client = WebClient(token=token, base_url=request.url.rsplit("/", 1)[0] + "/", timeout=10,
                       retry_handlers=[])
    try:
        if thread:
            answer = client.conversations_replies(channel=channel, ts=thread, oldest=f"{since:.6f}", limit=200)
        else:
            answer = client.conversations_history(channel=channel, oldest=f"{since:.6f}", limit=200)
    except (SlackClientError, OSError) as e:
        log.warning("Slack's history of %s cannot be read (%s)", channel, type(e).__name__)
        return None
    return any(m.get("text") == text and m.get("bot_id") for m in answer.get("messages", []))


def _retry_after(response) -> float:
    for key, value in response.headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                break
    return 1.0


def _timed_out(error) -> bool:
    if isinstance(error, URLError):
        error = error.reason
    return isinstance(error, (socket.timeout, TimeoutError))


def _method(request) -> str:
    return request.url.rsplit("/", 1)[-1].split("?", 1)[0]


def _args(request) -> dict:
    data = request.data or b""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if data.startswith("{"):
        try:
            return json.loads(data)
        except ValueError:
            return {}
    return dict(parse_qsl(data))


def _what(request) -> str:
    args = _args(request)
    where = args.get("channel", "?") + (f" (thread {args['thread_ts']})" if args.get("thread_ts") else "")
    return f"to {where}: {str(args.get('text', ''))[:200]!r}"
