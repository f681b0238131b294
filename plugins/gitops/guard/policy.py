"""Who may change what, where and when: per-environment policy as pure functions.

The settings file gives each environment an optional ``policy``; locks live in the core's memory.
Nothing here reads a clock or a store: callers pass ``now`` and the records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import (FerryError, Locked, NoLongerAllowed, NotAllowed, OutsideWindow, PreviewNotClean,
                      RolledBackVersion, SettingsError)
from ..identity import channel, mention, person
from ..model import Blocker, Lock, Requester, RolledBack
from ..versions import same_version
from . import windows as promotion

ACTIONS = ("deploy", "promote", "rollback")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MOMENT = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+([01]?\d|2[0-3]):([0-5]\d)$", re.I)
_WEEK = 7 * 24 * 60
MAX_WAITING = 5


@dataclass(frozen=True)
class FreezeWindow:
    start: int  # minutes since Monday 00:00, local time
    end: int
    timezone: str = "UTC"
    text: str = ""  # as written: "Fri 16:00 → Mon 08:00 Europe/Paris"

    def contains(self, now: datetime) -> bool:
        t = _minute_of_week(now.astimezone(ZoneInfo(self.timezone)))
        return self.start <= t < self.end if self.start <= self.end else t >= self.start or t < self.end

    def ends_after(self, now: datetime) -> datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        minutes = (self.end - _minute_of_week(local)) % _WEEK
        return (local + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Policy:
    """One environment's rules. ``None`` for a list means: anyone (Errbot's ACLs still apply)."""

    allowed: tuple = ()  # (action, user IDs) pairs; an action absent = anyone
    channels: Optional[tuple] = None  # channel IDs or #names changes may come from
    approval: bool = False
    approvers: Optional[tuple] = None  # default: whoever may do the action
    approval_minutes: float = 60
    freezes: tuple = ()
    bots: tuple = ()  # (action, bot IDs) pairs: the only bots or integrations that may act
    max_waiting: int = MAX_WAITING  # changes one person may have waiting for approval at once
    preview: str = ""  # "require_clean": a chart change whose preview is not clean needs --force
    windows: tuple = ()  # promotion windows (guard.windows.Window): changes land only in one
    review: bool = False  # `approval: pull-request`: the forge's required review is the approval

    def who_may(self, action: str) -> Optional[tuple]:
        return dict(self.allowed).get(action)

    def may_approve(self, action: str) -> Optional[tuple]:
        return self.approvers if self.approvers is not None else self.who_may(action)


def authorise(policy: Policy, environment: str, action: str, user: str, channels: tuple,
              bot: bool = False) -> None:
    """Refuse ``user`` asking for ``action`` in ``environment`` from ``channels`` (() = a DM).
    A bot (``bot``: ``user`` is its bot ID) may act only where ``policy.bots`` names it."""
    refuse_bot(policy, environment, action, user, bot)
    allowed = policy.who_may(action)
    if not bot and not _named(allowed, user):
        raise NotAllowed(f"You may not {action} to {environment}: ask {_people(allowed)}.")
    _from_channels(policy, environment, channels, "asked")


def may_still_ask(policy: Policy, environment: str, action: str, requester: Requester) -> None:
    """Refuse a waiting change whose requester the policy no longer lets ask for it from where
    they asked (the policy changed since): ``authorise``'s rules, said of them to the approver."""
    who, allowed = f"{person(requester)}, who asked for it,", policy.who_may(action)
    if requester.bot and not _bot_named(policy, action, requester.id):
        raise NoLongerAllowed(f"{who} is no longer named in the policy of {environment} "
                              f"(`policy.bots.{action}`)")
    if not requester.bot and not _named(allowed, requester.id):
        raise NoLongerAllowed(f"{who} may no longer {action} to {environment} (the policy names "
                              f"{_people(allowed)})")
    if not _in_channels(policy, requester.channels):
        raise NoLongerAllowed(f"changes to {environment} are now asked in {_channels(policy)}, "
                              f"not where {person(requester)} asked")


def may_approve(policy: Policy, environment: str, action: str, approver: str, requester: str,
                channels: tuple, bot: bool = False) -> None:
    """Refuse ``approver`` approving ``requester``'s change, or approving it from elsewhere than
    the environment's channels; a bot only where ``policy.bots.approve`` names it."""
    refuse_bot(policy, environment, "approve", approver, bot)
    if approver == requester:
        raise NotAllowed("You cannot approve your own change: another person has to.")
    allowed = policy.may_approve(action)
    if not bot and not _named(allowed, approver):
        raise NotAllowed(f"You may not approve changes to {environment}: ask {_people(allowed)}.")
    _from_channels(policy, environment, channels, "approved")


def refuse_bot(policy: Policy, environment: str, action: str, bot_id: str, bot: bool) -> None:
    """Only people change things, unless the environment's policy names the bot for the action."""
    if bot and not _bot_named(policy, action, bot_id):
        who = f"the bot {bot_id}" if bot_id else "an integration without a bot ID"
        raise NotAllowed(f"Only people {action} in {environment}: {who} is not named in its policy "
                         f"(`policy.bots.{action}`).")


def may_reject(policy: Policy, environment: str, action: str, user: str, requester: str,
               channels: tuple, bot: bool = False) -> None:
    """The requester may withdraw a change, someone who may approve it may reject it; from the
    environment's channels either way."""
    if user == requester and not bot:
        _from_channels(policy, environment, channels, "approved")
    else:
        may_approve(policy, environment, action, user, requester, channels, bot)


def _from_channels(policy: Policy, environment: str, channels: tuple, verb: str) -> None:
    if not _in_channels(policy, channels):
        where = _channels(policy)
        raise NotAllowed(f"Changes to {environment} are {verb} in {where}, not here.")


def _channels(policy: Policy) -> str:
    return ", ".join(map(channel, policy.channels))


def _named(allowed: Optional[tuple], user: str) -> bool:
    return allowed is None or user in allowed


def _bot_named(policy: Policy, action: str, bot_id: str) -> bool:
    return bot_id in dict(policy.bots).get(action, ())


def _in_channels(policy: Policy, channels: tuple) -> bool:
    return policy.channels is None or bool(set(channels) & set(policy.channels))


# ---- the decision ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What the checks found for one change and what follows from it, at the moment it is taken:
    ``refusal`` (the error to answer) or allowed, past the ``forced`` blockers."""

    found: tuple = ()  # tuple[Blocker, ...]: everything that stands in the way now
    forced: tuple = ()  # the blockers --force overrides (recorded in the commit)
    refusal: Optional[FerryError] = None
    held: Optional[Blocker] = None  # --queue: the closed window the change waits for instead

    def require(self) -> "Decision":
        if self.refusal is not None:
            raise self.refusal
        return self


def blockers(environment: str, app: str, version: str, action: str, locks: Mapping[str, Lock],
             rolled_back: Optional[RolledBack], policy: Policy, now: datetime) -> tuple:
    """Every lock, freeze, closed promotion window and rolled-back version that stands in the way
    of this change now."""
    found = []
    for key, what in ((f"{environment}/{app}", f"`{app}` in {environment}"), (environment, environment)):
        lock = locks.get(key)
        if lock is not None:
            reason = f": {lock.reason}" if lock.reason else ""
            stable = lock.release.key if lock.release is not None else key
            found.append(Blocker("lock", f"lock {stable} by {lock.by} at {lock.when}",
                                 f"{what} is locked by {mention(lock.by)} since {lock.when}{reason}"))
    for window in policy.freezes:
        if window.contains(now):
            until = window.ends_after(now).strftime("%a %Y-%m-%d %H:%M %Z")
            found.append(Blocker("freeze", f"freeze {environment} {window.text}",
                                 f"{environment} is frozen ({window.text}) until {until}"))
    closed = outside_windows(environment, policy, now)
    if closed is not None:
        found.append(closed)
    if action != "rollback" and rolled_back is not None and same_version(rolled_back.version, version):
        stable = rolled_back.release.key if rolled_back.release is not None else f"{environment}/{app}"
        found.append(Blocker(
            "rolled-back", f"rolled-back {stable} {rolled_back.version} at {rolled_back.when}",
            f"`{app}` {version} was rolled back from {environment} by {mention(rolled_back.by)} "
            f"({rolled_back.when})",
            admin_only=False))
    return tuple(found)


def decide(policy: Policy, environment: str, action: str, found: tuple, *, who: str, channels: tuple,
           force: bool = False, admin: bool = False, requested_by: Optional[Requester] = None,
           overridden: Optional[tuple] = None, bot: bool = False) -> Decision:
    """The one decision over a change, the same when it is asked and when it is approved.

    Asked (``requested_by`` None): ``who`` must be allowed from ``channels``; a blocker refuses it
    unless ``force`` (an admin's, for locks and freezes) overrides it, and what was overridden is
    the decision's ``forced``. Approved: ``who`` must be allowed to approve ``requested_by``'s
    change from ``channels`` (first: one who may not approve changes nothing and learns nothing
    more), the requester must still be allowed to ask for it from where they asked
    (``NoLongerAllowed``), and only the blockers the request ``overridden`` may still stand: a
    lock or freeze that came since refuses it."""
    try:
        if requested_by is None:
            authorise(policy, environment, action, who, channels, bot)
        else:
            may_approve(policy, environment, action, who, requested_by.id, channels, bot)
            may_still_ask(policy, environment, action, requested_by)
    except NotAllowed as e:
        return Decision(found, refusal=e)
    if overridden is not None:
        known = {b.key for b in overridden}
        new = [b for b in found if b.key not in known]
        return Decision(found, tuple(overridden), _error(new[0]) if new else None)
    if not found:
        return Decision()
    if not force:
        return Decision(found, refusal=_error(found[0]))
    needs_admin = [b for b in found if b.admin_only]
    if needs_admin and (not admin or bot):
        return Decision(found, refusal=NotAllowed(
            f"Only an admin may force a change past this: {needs_admin[0].message}"))
    return Decision(found, found)


WINDOW = "window"  # the kind of blocker a closed promotion window is (``--queue`` waits for it)


def outside_windows(environment: str, policy: Policy, now: datetime) -> Optional[Blocker]:
    """The closed promotion windows of ``environment`` as a blocker, with the next opening in
    the zone of the window that opens it; None while one is open (or there are none)."""
    if promotion.in_window(policy.windows, now):
        return None
    moment, window = promotion.next_opening(policy.windows, now)
    hours = ", ".join(w.text for w in policy.windows)
    return Blocker(WINDOW, f"window {environment}",
                   f"{environment} takes changes {hours}; next opening "
                   f"{promotion.opening_text(moment, window, now)}; add `--queue` to apply it then")


def _error(blocker: Blocker) -> FerryError:
    kind = {"rolled-back": RolledBackVersion, "preview": PreviewNotClean, WINDOW: OutsideWindow}.get(blocker.kind, Locked)
    return kind(blocker.message)


def refuse_locked(environment: str, app: str, locks: Mapping[str, Lock], policy: Policy,
                  now: datetime) -> None:
    """Refuse a change into a locked app or environment, or a frozen environment."""
    found = blockers(environment, app, "", "deploy", locks, None, policy, now)
    if found:
        raise _error(found[0])


def _people(ids: tuple) -> str:
    return ", ".join(ids) if ids else "nobody (the policy allows no one)"


def _minute_of_week(local: datetime) -> int:
    return local.weekday() * 24 * 60 + local.hour * 60 + local.minute


# ---- settings ---------------------------------------------------------------------------------

def parse_policy(raw, where: str, environment: str, aliases: tuple = ()) -> Policy:
    """An environment's ``policy`` from the settings file; approval defaults on for production."""
    production = bool({environment, *aliases} & {"prod", "production"})
    if raw is None:
        return Policy(approval=production)
    if not isinstance(raw, dict):
        raise SettingsError(f"`{where}` must be a mapping (deploy, promote, rollback, channels, approval, "
                            "freeze, windows, bots).")
    unknown = sorted(set(raw) - {*ACTIONS, "channels", "approval", "freeze", "windows", "bots", "preview"})
    if unknown:
        raise SettingsError(f"`{where}` has an unknown key `{unknown[0]}`; allowed: "
                            "approval, bots, channels, deploy, freeze, preview, promote, rollback, windows.")
    if raw.get("preview", "require_clean") != "require_clean":
        raise SettingsError(f"`{where}.preview` must be `require_clean` (a chart change whose preview "
                            "shows schema errors or removed keys the environment sets needs `--force`).")
    allowed = tuple((a, _ids(raw[a], f"{where}.{a}")) for a in ACTIONS if a in raw)
    channels = _ids(raw["channels"], f"{where}.channels") if "channels" in raw else None
    review = raw.get("approval") == "pull-request"  # the forge's review, not `!approve`
    approval, approvers, minutes, waiting = _approval(False if review else raw.get("approval", production),
                                                      f"{where}.approval")
    freezes = tuple(_freeze(w, f"{where}.freeze[{i}]") for i, w in enumerate(_list(raw.get("freeze", []), f"{where}.freeze")))
    windows = tuple(_window(w, f"{where}.windows[{i}]")
                    for i, w in enumerate(_list(raw.get("windows", []), f"{where}.windows")))
    return Policy(allowed, channels, approval, approvers, minutes, freezes,
                  _bots(raw.get("bots"), f"{where}.bots"), waiting, str(raw.get("preview", "")), windows, review)


def _bots(raw, where: str) -> tuple:
    """``bots: {deploy: [B…], approve: [B…]}``: the bot IDs allowed each action (none by default)."""
    if raw is None:
        return ()
    actions = (*ACTIONS, "approve")
    if not isinstance(raw, dict) or set(raw) - set(actions):
        raise SettingsError(f"`{where}` must map actions ({', '.join(actions)}) to lists of bot IDs (Slack `B…`).")
    return tuple((a, _ids(raw[a], f"{where}.{a}")) for a in actions if a in raw)


def _approval(raw, where: str):
    if isinstance(raw, bool):
        return raw, None, 60, MAX_WAITING
    if not isinstance(raw, dict) or set(raw) - {"approvers", "expire_minutes", "max_waiting"}:
        raise SettingsError(f"`{where}` must be true, false or "
                            "{approvers: [...], expire_minutes: 60, max_waiting: 5} (or pull-request: the forge's review).")
    minutes = raw.get("expire_minutes", 60)
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not 0 < minutes <= 7 * 24 * 60:
        raise SettingsError(f"`{where}.expire_minutes` must be a number of minutes, up to 10080.")
    waiting = raw.get("max_waiting", MAX_WAITING)
    if not isinstance(waiting, int) or isinstance(waiting, bool) or not 1 <= waiting <= 100:
        raise SettingsError(f"`{where}.max_waiting` must be a number of changes, from 1 to 100.")
    approvers = _ids(raw["approvers"], f"{where}.approvers") if "approvers" in raw else None
    return True, approvers, minutes, waiting


def _window(raw, where: str) -> promotion.Window:
    """``{days: Mon-Thu, from: "09:00", to: "16:00", timezone: Europe/Berlin}``."""
    shape = f"`{where}` must be {{days: Mon-Thu, from: \"09:00\", to: \"16:00\", timezone: Europe/Berlin}}"
    if not isinstance(raw, dict) or not {"days", "from", "to"} <= set(raw) or \
            set(raw) - {"days", "from", "to", "timezone"}:
        raise SettingsError(f"{shape}.")
    zone = _zone(raw.get("timezone", "UTC"), where)
    try:
        days = promotion.parse_days(raw["days"])
    except ValueError:
        raise SettingsError(f"`{where}.days` must be `daily`, a range such as `Mon-Thu` or a list "
                            "such as `Mon,Wed,Fri`.") from None
    try:
        start, end = promotion.parse_minute(raw["from"]), promotion.parse_minute(raw["to"])
    except ValueError:
        raise SettingsError(f"{shape}: `from` and `to` are times of day, HH:MM.") from None
    if start == end or start == 1440:
        raise SettingsError(f"`{where}` opens and closes at the same time: give a `to` after `from` "
                            "(one before it crosses midnight).")
    return promotion.Window(days, start, end, zone)


def _zone(zone, where: str) -> str:
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"`{where}.timezone` `{zone}` is not a time zone such as Europe/Paris.") from None
    return str(zone)


def _freeze(raw, where: str) -> FreezeWindow:
    if not isinstance(raw, dict) or not {"from", "to"} <= set(raw) or set(raw) - {"from", "to", "timezone"}:
        raise SettingsError(f"`{where}` must be {{from: \"Fri 16:00\", to: \"Mon 08:00\", timezone: Europe/Paris}}.")
    zone = _zone(raw.get("timezone", "UTC"), where)
    start, end = _moment(raw["from"], f"{where}.from"), _moment(raw["to"], f"{where}.to")
    if start == end:
        raise SettingsError(f"`{where}` starts and ends at the same moment.")
    return FreezeWindow(start, end, str(zone), f"{raw['from']} → {raw['to']} {zone}")


def _moment(raw, where: str) -> int:
    match = _MOMENT.match(str(raw).strip())
    if not match:
        raise SettingsError(f"`{where}` must be a weekday and a time, such as \"Fri 16:00\".")
    day, hour, minute = match.groups()
    return DAYS.index(day.lower()[:3]) * 24 * 60 + int(hour) * 60 + int(minute)


def _ids(raw, where: str) -> tuple:
    items = _list(raw, where)
    if not all(isinstance(i, str) and i.strip() for i in items):
        raise SettingsError(f"`{where}` must be a list of chat user or channel IDs (Slack `U…`, `C…`).")
    return tuple(i.strip() for i in items)


def _list(raw, where: str) -> list:
    if not isinstance(raw, list):
        raise SettingsError(f"`{where}` must be a list.")
    return raw
