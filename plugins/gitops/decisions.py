"""The façade's guard rails over held changes, as a part of ``GitOps``: a waiting change decided
again and applied, rejected, listed; locks kept by release and listed by the app's name now.

A mixin, as ``Reports`` is: it reads the core's settings, inventory, guard and writing through
``self`` and is never used alone.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .changes import planning
from .changes.pins import app_name
from .changes.writing import PinMoved
from .errors import ApprovalRefused, ChangeDropped, FerryError, NoLongerAllowed
from .guard import approvals as held
from .guard import policy
from .identity import Release
from .inventory import Inventory
from .model import CHART, Change, Lock, PendingChange, Pin, Plan, Requester


class Decisions:
    def approve(self, change_id: str, approver: Requester) -> Change:
        """Apply a pending change, decided again now on everything its request was decided on.

        First the approver, allowed from where they ask: one who may not approve leaves the
        request as it was. Then what drops it for good: its requester no longer allowed to ask for
        it, a pin no longer at the value its diff was made from. Then what refuses it while it
        still waits: a promoted version no longer in the stage before (rolled back from there
        since), a blocker the request did not override, a version not in its registry. The change
        is claimed once: a concurrent reject or a second approval is told it is being applied."""
        waiting = self.guard.waiting(change_id)
        try:
            decision = self._decide(waiting, approver, requested_by=waiting.requester,
                                    overridden=waiting.forced)
        except NoLongerAllowed as e:
            self.guard.claim(waiting.id, held.DROPPED, str(e))
            raise ChangeDropped(f"Change `{waiting.id}` was dropped: {e}. Nothing changed.") from None
        inventory = self.inventory()
        pin = self._waiting_pin(waiting, inventory, waiting.part)
        if pin.version != waiting.old:
            self._pin_moved(waiting, waiting.part, waiting.old, pin.version)
        also = []
        for part, old, new in waiting.also:  # every other part must still be where it was asked
            other = self._waiting_pin(waiting, inventory, part)
            if other.version != old:
                self._pin_moved(waiting, part, old, other.version)
            also.append((other, new))
        plan = Plan(waiting.action, pin, waiting.new, waiting.source_environment, tuple(also))
        try:
            if plan.action == "promote":
                planning.require_chain(self.settings, plan, inventory)
            self._check_state(plan, decision)
        except FerryError as e:
            raise ApprovalRefused(f"Change `{waiting.id}` cannot be applied now: {e}") from None
        asked = {waiting.part: waiting.old, **{part: old for part, old, _ in waiting.also}}
        self.guard.claim(waiting.id, held.APPLYING, approver.id)
        try:
            change = self._write(plan, waiting.requester, False, forced=waiting.forced,
                                 approver=approver, expect=asked)
        except PinMoved as moved:
            self.guard.settle(waiting.id, held.WAITING)
            self._pin_moved(waiting, moved.part, asked[moved.part], moved.now)
        except BaseException:
            self.guard.settle(waiting.id, held.WAITING)  # nothing was pushed: it may be approved again
            raise
        self.guard.settle(waiting.id, held.APPLIED)
        return change

    def _waiting_pin(self, waiting: PendingChange, inventory: Inventory, part: str) -> Pin:
        """The pin a waiting change edits, found by its release (namespace/name), whatever the app
        is called now; by its app name for a change held before releases had identities."""
        if waiting.release is None:
            return self.pin(waiting.app, waiting.environment, inventory, part=part)
        pin = inventory.released(replace(waiting.release, part=part))
        if pin is None:
            asked = {waiting.part: waiting.old, **{p: old for p, old, _ in waiting.also}}
            self._pin_moved(waiting, part, asked.get(part), "nothing (its release is no longer in Git)")
        return pin

    def _pin_moved(self, waiting: PendingChange, part: str, old: Optional[str], now: Optional[str]):
        """The approved diff no longer applies: drop the request and say so."""
        label = "" if part == CHART else f" {part}"
        moved = f"`{waiting.app}`{label} in {waiting.environment} moved from {old} to {now}"
        self.guard.claim(waiting.id, held.DROPPED, f"{moved} since it was asked")
        raise ChangeDropped(
            f"{moved} since change `{waiting.id}` was asked: nothing changed; ask for it again.")

    def pending_change(self, change_id: str) -> Optional[PendingChange]:
        """The change ``change_id`` held for approval, in whatever state it is now (``state``:
        waiting, applying, applied, rejected, expired or dropped); None once forgotten."""
        return self.guard.find(change_id)

    def reject(self, change_id: str, by: Requester) -> PendingChange:
        """Drop a pending change: its requester withdrawing it, or someone who may approve it,
        from the environment's channels; claimed once, like an approval."""
        waiting = self.guard.waiting(change_id)
        env = self.settings.environment(waiting.environment)
        policy.may_reject(env.policy, env.name, waiting.action, by.id, waiting.requester.id, by.channels,
                          by.bot)
        return self.guard.claim(waiting.id, held.REJECTED, by.id)

    def pending(self) -> list[PendingChange]:
        return self.guard.pending()

    def lock(self, environment: str, app: Optional[str], by: Requester, reason: str = "") -> Lock:
        """Lock an environment, or every part of one app's release in it, against changes (admins
        may still force). The lock holds the release's namespace and name, not the app's name."""
        return self.guard.lock(self._lockable(environment, app), by, reason)

    def unlock(self, environment: str, app: Optional[str] = None) -> Lock:
        env = self.settings.environment(environment)
        what = f"`{app_name(app, self.inventory())}` in {env.name}" if app else env.name
        return self.guard.unlock(self._lockable(environment, app), what)

    def _lockable(self, environment: str, app: Optional[str]) -> Release:
        env = self.settings.environment(environment)
        if not app:
            return Release(env.name, "", "", "")
        inventory = self.inventory()
        name = app_name(app, inventory)
        # Not deployed there yet: the release it is elsewhere (an app may be locked before it lands).
        pin = inventory.find(name, env.name) or next(p for p in inventory.pins if p.app == name)
        return replace(pin.release, environment=env.name, part="")

    def locks(self) -> list[tuple[str, Lock]]:
        """Every lock (``env``, or ``env/app`` by the app's name now) and every freeze in force now.
        Named from the last fetched commit: listing locks never waits for a slow remote."""
        inventory = self.inventory(refresh=False)
        found = []
        for lock in self.guard.locks():
            release = lock.release
            app = _named(inventory, release) if release.name else None
            found.append((f"{release.environment}/{app}" if app else release.key, lock))
        found.sort(key=lambda item: item[0])
        now = self.clock()
        for env in self.settings.environments:
            for window in env.policy.freezes:
                if window.contains(now):
                    until = window.ends_after(now).strftime("%a %Y-%m-%d %H:%M %Z")
                    found.append((env.name, Lock(by="freeze window", reason=window.text,
                                                 when=f"until {until}")))
        return found


def _named(inventory: Inventory, release: Release) -> Optional[str]:
    """The app name a locked release goes by now: in its environment, else anywhere (a lock may
    come before the app); None when no such release is in Git."""
    found = [p for p in inventory.pins + inventory.others
             if p.release.name == release.name and release.namespace in (None, p.namespace)]
    here = [p.app for p in found if p.environment == release.environment]
    return (here or [p.app for p in found] or [None])[0]
