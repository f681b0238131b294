"""The local Slack's faults, as Slack's Web API has them (``FakeSlack`` mixes this in):
``fault(method, Fault(...), …)`` queues the answers the next calls of ``method`` get, in order:

- ``Fault(429, retry_after=1)``: rate limited (``ratelimited``, a ``Retry-After`` header), nothing done;
- ``Fault(500)`` (or 502, 503, 504): a server error, nothing done;
- ``Fault(500, kept=True)``: the call is done (a message posted is kept), then answered 500, as
  Slack sometimes does: a client that posts again on it posts twice;
- ``Fault(200, error="internal_error")``: refused with HTTP 200, ``{"ok": false, "error": …}``.

``outage(method, seconds, Fault(...))``: every call of ``method`` gets that answer for ``seconds``
(``apps.connections.open`` refusing for minutes, shortened).

And the two history methods a client reads to learn what landed: ``conversations.history``
(messages of a channel since ``oldest``) and ``conversations.replies`` (a thread's, with its parent),
newest first, each message with the ``bot_id`` of the bot that posted it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: int = 0
    kept: bool = False  # the call takes effect before the fault is answered
    error: str = ""  # Slack's error code in the answer (default: ratelimited or fatal_error)


class WebApiFaults:
    def fault(self, method: str, *answers: Fault) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend(answers)

    def outage(self, method: str, seconds: float, answer: Fault) -> None:
        with self._lock:
            self._outages = {**getattr(self, "_outages", {}), method: (time.monotonic() + seconds, answer)}

    def next_fault(self, method: str) -> Optional[Fault]:
        with self._lock:
            until, answer = getattr(self, "_outages", {}).get(method, (0.0, None))
            if answer is not None and time.monotonic() < until:
                return answer
            queued = getattr(self, "_faults", {}).get(method)
            return queued.pop(0) if queued else None

    def fault_answer(self, fault: Fault) -> tuple[dict, dict]:
        if fault.status == 429:
            return {"ok": False, "error": fault.error or "ratelimited"}, {"Retry-After": str(fault.retry_after)}
        return {"ok": False, "error": fault.error or "fatal_error"}, {}

    def _history(self, method: str, args: dict) -> dict:
        channel, oldest = args.get("channel"), float(args.get("oldest") or 0)
        with self._lock:
            kept = [dict(m) for (c, ts), m in self.messages.items() if c == channel and float(ts) > oldest]
        if method == "conversations.replies":
            parent = str(args.get("ts", ""))
            kept = [m for m in kept if m.get("thread_ts") == parent or m["ts"] == parent]
        return {"ok": True, "messages": sorted(kept, key=lambda m: float(m["ts"]), reverse=True),
                "has_more": False}
