"""Promotion windows: the recurring hours in which an environment takes changes, as pure functions
of the instant asked about (callers pass ``now``).

A window is days of the week and local wall-clock hours in one time zone: ``Mon-Thu 09:00–16:00
Europe/Berlin``; one whose end is not after its start crosses midnight (``Fri 22:00–02:00`` ends
on Saturday). An instant is in a window when its wall-clock time in that zone is: the hours of a
day that DST skips never happen, the hour it repeats happens twice, so ``next_opening`` looks at
the wall-clock openings (both readings of a repeated time) and at the zone's offset changes, the
only moments at which an instant can enter a window.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional, Sequence
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")
HORIZON = timedelta(days=8)  # every weekly window opens within a week, a skipped one the week after


@dataclass(frozen=True)
class Window:
    """``days`` (0 = Monday) on which it opens at ``start`` and closes at ``end`` (minutes of the
    local day; ``end`` <= ``start``: the next day), in ``timezone``."""

    days: frozenset
    start: int
    end: int
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def text(self) -> str:
        """``Mon–Thu 09:00–16:00 Europe/Berlin``, as people read it."""
        return f"{days_text(self.days)} {_clock(self.start)}–{_clock(self.end)} {self.timezone}"

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        minute, day = local.hour * 60 + local.minute, local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)

    def openings(self, now: datetime) -> list:
        """Every instant from a day before ``now`` to ``HORIZON`` after at which this window may
        open: its opening wall time on each of its days (both readings of a repeated time, the
        instant after a skipped one) and each change of the zone's offset."""
        zone, today = self.zone, now.astimezone(self.zone).date()
        found = []
        for offset in range(-1, HORIZON.days + 1):
            day = today + timedelta(days=offset)
            if day.weekday() in self.days:
                found += _instants(day, self.start, zone)
        return found + transitions(zone, now - timedelta(days=1), now + HORIZON)

    def closings(self, now: datetime) -> list:
        """Every instant from a day before ``now`` to ``HORIZON`` after at which this window may
        close: its closing wall time on every day (the day after, for one crossing midnight;
        callers keep those after which no window holds) and each change of the zone's offset."""
        zone, today = self.zone, now.astimezone(self.zone).date()
        found = []
        for offset in range(-1, HORIZON.days + 2):
            found += _instants(today + timedelta(days=offset), self.end, zone)
        return found + transitions(zone, now - timedelta(days=1), now + HORIZON)


def in_window(windows: Sequence[Window], now: datetime) -> bool:
    """Whether ``now`` is in one of ``windows`` (no windows: always)."""
    return not windows or any(w.contains(now) for w in windows)


def next_opening(windows: Sequence[Window], now: datetime) -> Optional[tuple[datetime, Window]]:
    """The first instant at or after ``now`` in one of ``windows`` and that window (``now`` itself
    when it is in one); None without windows."""
    best = None
    for window in windows:
        for moment in window.openings(now):
            if moment >= now and (best is None or moment < best[0]) and window.contains(moment):
                best = (moment, window)
    if any(w.contains(now) for w in windows):
        return now, next(w for w in windows if w.contains(now))
    return best


def next_closing(windows: Sequence[Window], now: datetime) -> Optional[tuple[datetime, Window]]:
    """While ``now`` is in one of ``windows``: the first instant after it in none of them, and the
    window that held until then (overlapping windows close when the last does); None when ``now``
    is in none, or they never all close within ``HORIZON`` (``daily 00:00–24:00``)."""
    if not any(w.contains(now) for w in windows):
        return None
    moments = sorted({m for w in windows for m in w.closings(now) if m > now})
    for moment in moments:
        if not in_window(windows, moment):
            before = moment - timedelta(seconds=1)
            return moment, next((w for w in windows if w.contains(before)), windows[0])
    return None


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list:
    """The instants in [start, end) at which ``zone``'s UTC offset changes, to the second."""
    found, step = [], 3600
    t, last = int(start.timestamp()), None
    stop = int(end.timestamp())
    while t < stop:
        offset = datetime.fromtimestamp(t, zone).utcoffset()
        if last is not None and offset != last[1]:
            low, high = last[0], t  # the offset of ``low`` is the old one, of ``high`` the new
            while high - low > 1:
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, zone).utcoffset() == last[1]:
                    low = middle
                else:
                    high = middle
            found.append(datetime.fromtimestamp(high, timezone.utc))
        last = (t, offset)
        t += step
    return found


def _instants(day: date, minute: int, zone: ZoneInfo) -> list:
    """The instants whose wall time in ``zone`` is ``minute`` on ``day``: none, one or two (the
    two readings are tried; a wall time that never happens reads as one that does, on either
    side of the gap, and is dropped by the caller's check)."""
    wall = datetime.combine(day, time(minute // 60, minute % 60)) if minute < 1440 else \
        datetime.combine(day + timedelta(days=1), time(0))
    return [wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc) for fold in (0, 1)]


def in_words(delta: timedelta) -> str:
    """``2 d 3 h``, ``3 h 5 min``, ``12 min`` (``< 1 min`` under a minute)."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else "< 1 min"


def opening_text(moment: datetime, window: Window, now: datetime) -> str:
    """``Mon 09:00 (in 2 d 3 h)`` in the window's own time zone."""
    local = moment.astimezone(window.zone)
    return f"{_DAY_NAMES[local.weekday()]} {local:%H:%M} (in {in_words(moment - now)})"


def at_text(moment: datetime, window: Window, now: datetime) -> str:
    """``Mon 09:00 Europe/Berlin (in 2 d 16 h)``: an opening or closing in the window's zone."""
    local = moment.astimezone(window.zone)
    return f"{_DAY_NAMES[local.weekday()]} {local:%H:%M} {window.timezone} (in {in_words(moment - now)})"


def state_text(environment: str, windows: Sequence[Window], now: datetime) -> str:
    """Whether ``environment`` takes changes now, and until when, as one line: ``prod: closed
    until Mon 09:00 Europe/Berlin (in 2 d 16 h)``, ``qa: open until Thu 16:00 Europe/Berlin (in
    5 h)``; "" without windows."""
    if not windows:
        return ""
    if in_window(windows, now):
        closing = next_closing(windows, now)
        if closing is None:
            return f"{environment}: open (its windows do not close within a week)"
        return f"{environment}: open until {at_text(*closing, now)}"
    return f"{environment}: closed until {at_text(*next_opening(windows, now), now)}"


# ---- settings ---------------------------------------------------------------------------------

def parse_days(text: str) -> frozenset:
    """``daily``, ``Mon-Thu``, ``Mon,Wed,Fri``, ``Fri-Mon`` (a range may wrap), or a mix
    (``Mon-Wed,Fri``); ValueError otherwise."""
    words = str(text).strip().lower()
    if words in ("daily", "every day"):
        return frozenset(range(7))
    days = set()
    for part in filter(None, (p.strip() for p in words.split(","))):
        first, sep, last = (s.strip() for s in part.partition("-"))
        a = _day(first)
        if not sep:
            days.add(a)
            continue
        b = _day(last)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    if not days:
        raise ValueError(text)
    return frozenset(days)


def parse_minute(text: str) -> int:
    """``HH:MM`` as minutes of the day (``24:00`` ends a day); ValueError otherwise."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise ValueError(text)
    return 1440 if match.group(1) is None else int(match.group(1)) * 60 + int(match.group(2))


def days_text(days: frozenset) -> str:
    """``Mon–Thu``, ``Mon, Wed, Fri``, ``daily``."""
    if len(days) == 7:
        return "daily"
    ordered = sorted(days)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{_DAY_NAMES[ordered[0]]}–{_DAY_NAMES[ordered[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in ordered)


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(word: str) -> int:
    """``Mon``, ``mon``, ``Tues``, ``Monday``: a weekday's number (0 = Monday)."""
    found = [i for i, full in enumerate(_FULL) if len(word) >= 3 and full.startswith(word)]
    if not found:
        raise ValueError(word)
    return found[0]


def _clock(minute: int) -> str:
    return "24:00" if minute == 1440 else f"{minute // 60:02d}:{minute % 60:02d}"
