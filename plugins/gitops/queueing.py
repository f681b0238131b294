"""The façade's changes queued for a promotion window (``--queue``), as a part of ``GitOps``:
queued with what was asked, listed, withdrawn; at the opening planned and decided again on
everything, as if asked then (policy, locks, the registry, approval), and applied or refused.

A mixin, as ``Decisions`` is: it reads the core's settings, clock, state and planning through
``self`` and is never used alone.
"""
from __future__ import annotations

from datetime import timezone
from typing import Optional

from .errors import ApprovalRefused, UnknownEnvironment
from .guard import policy
from .guard import queue as held
from .guard.queue import Queue, QueuedChange
from .guard.windows import in_window, next_opening, opening_text, state_text
from .model import Change, Requester

MISSED = "its window ({hours}) opened at {opens} UTC and closed while Ferry was stopped: ask for it again"


class Queueing:
    @property
    def queue(self) -> Queue:
        found = getattr(self, "_queue", None)
        if found is None:
            found = self._queue = Queue(self.state, lambda: self.clock())
        return found

    def enqueue(self, command: str, app: str, environment: str, requester: Requester, *,
                version: Optional[str] = None, source: Optional[str] = None, part: Optional[str] = None,
                target: tuple = ("", False, ""), asker: tuple = ("", "")) -> QueuedChange:
        """Keep a change asked outside ``environment``'s windows for its next opening."""
        env = self.settings.environment(environment)
        moment, _ = next_opening(env.policy.windows, self.clock())
        return self.queue.add(QueuedChange(
            "", command, app, env.name, moment.astimezone(timezone.utc).isoformat(), requester, version=version, source=source,
            part=part, target=tuple(target), asker=tuple(asker)))

    def queued(self) -> list[QueuedChange]:
        """Every change waiting for a window, the soonest first."""
        return self.queue.waiting()

    def queued_change(self, change_id: str) -> Optional[QueuedChange]:
        return self.queue.find(change_id)

    def when_opens(self, change: QueuedChange) -> str:
        """``Mon 09:00 (in 2 d 16 h)`` in the zone of the window it waits for."""
        env = self.settings.environment(change.environment)
        moment, window = next_opening(env.policy.windows, change.opening)
        return opening_text(moment, window, self.clock())

    def window_states(self, closed_only: bool = False) -> list[tuple[str, str]]:
        """(environment, its state in one line) for each environment with promotion windows: open
        or closed now and until when, in the zone of its windows (``closed_only``: the closed
        ones), in promotion order."""
        now = self.clock()
        return [(env.name, state_text(env.name, env.policy.windows, now)) for env in self.settings.environments
                if env.policy.windows and not (closed_only and in_window(env.policy.windows, now))]

    def cancel(self, change_id: str, by: Requester) -> QueuedChange:
        """Withdraw a queued change: its requester, or someone who may approve changes there, from
        the environment's channels (``policy.may_reject``, as for a change waiting for approval)."""
        change = self.queue.find(change_id)
        if change is None or change.state != held.QUEUED:
            raise ApprovalRefused(f"No change `{change_id}` is queued (`!pending` lists them).")
        env = self.settings.environment(change.environment)
        policy.may_reject(env.policy, env.name, change.command, by.id, change.requester.id, by.channels,
                          by.bot)
        return self.queue.cancel(change_id, by.id)

    def opened(self) -> list[QueuedChange]:
        """The queued changes whose window is open now, each claimed for applying; those whose
        window opened and closed again while Ferry was stopped (or whose environment is gone)
        are settled as lost, with the reason. Both kinds are returned: ``state`` says which."""
        now, found = self.clock(), []
        for change in self.queue.due(now):
            try:
                windows = self.settings.environment(change.environment).policy.windows
            except UnknownEnvironment:
                claimed = self.queue.claim(change.id, held.LOST, f"{change.environment} is no longer in "
                                                                 "Ferry's settings")
            else:
                if in_window(windows, now):
                    claimed = self.queue.claim(change.id, held.APPLYING)
                else:
                    hours = ", ".join(w.text for w in windows) or "none now"
                    claimed = self.queue.claim(change.id, held.LOST, MISSED.format(
                        hours=hours, opens=change.opens[:16].replace("T", " ")))
            if claimed is not None:
                found.append(claimed)
        return found

    def apply_queued(self, change: QueuedChange) -> Change:
        """Plan a claimed change now and apply it through every check, as if asked now; its
        outcome is settled (applied, or refused with the reason) before it is returned or raised."""
        try:
            if change.command == "deploy":
                plan = self.plan_deploy(change.app, change.environment, change.version, change.part)
            elif change.command == "promote":
                plan = self.plan_promotion(change.app, change.environment, change.source, change.version,
                                           change.part)
            else:
                plan = self.plan_rollback(change.app, change.environment, change.version, change.part)
            result = self.apply(plan, change.requester)  # never forced: the grammar keeps --force from --queue
        except Exception as e:
            self.queue.settle(change.id, held.REFUSED, getattr(e, "message", "") or type(e).__name__)
            raise
        waiting = f"waiting for approval as `{result.pending.id}`" if result.pending is not None else ""
        self.queue.settle(change.id, held.APPLIED, waiting)
        return result

    def refuse_queued(self, change: QueuedChange, why: str) -> None:
        """Settle a claimed change as refused before it is planned (the chat's ACLs refused it)."""
        self.queue.settle(change.id, held.REFUSED, why)

    def recover_queue(self) -> list[QueuedChange]:
        """At start: queued changes a stopped bot was applying, now lost (never applied twice)."""
        return self.queue.recover()
