"""Promotion windows as pure functions (guard/windows.py): days, hours, time zones, a window
crossing midnight, DST's skipped and repeated hours; a Hypothesis property against a brute-force
oracle (every minute between now and the answer); the policy's blocker and its one line."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from gitops.errors import OutsideWindow, SettingsError
from gitops.guard import policy
from gitops.guard.windows import (HORIZON, Window, days_text, in_window, in_words, next_closing, next_opening,
                                  parse_days, parse_minute, state_text, transitions)

BERLIN = "Europe/Berlin"
OFFICE = Window(frozenset(range(4)), 9 * 60, 16 * 60, BERLIN)  # Mon–Thu 09:00–16:00


def at(text: str, zone: str = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("text, days", [
    ("Mon-Thu", {0, 1, 2, 3}), ("daily", set(range(7))), ("Mon,Wed,Fri", {0, 2, 4}),
    ("fri-mon", {4, 5, 6, 0}), ("Mon-Wed, Fri", {0, 1, 2, 4}), ("Tuesday", {1}), ("sun", {6}),
])
def test_days(text, days):
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "Mo", "Mon-", "Funday", "Mon-Xyz", "weekdays"])
def test_days_refused(text):
    with pytest.raises(ValueError):
        parse_days(text)


def test_times_and_texts():
    assert parse_minute("09:00") == 540 and parse_minute("9:05") == 545 and parse_minute("24:00") == 1440
    for bad in ("24:01", "9", "09:60", "nine"):
        with pytest.raises(ValueError):
            parse_minute(bad)
    assert OFFICE.text == "Mon–Thu 09:00–16:00 Europe/Berlin"
    assert days_text(frozenset({0, 2, 4})) == "Mon, Wed, Fri" and days_text(frozenset(range(7))) == "daily"
    assert in_words(timedelta(days=2, hours=3, minutes=7)) == "2 d 3 h"
    assert in_words(timedelta(minutes=65)) == "1 h 5 min" and in_words(timedelta(seconds=30)) == "< 1 min"


def test_in_window_by_local_time():
    assert OFFICE.contains(at("2026-12-07T09:00"))  # Monday
    assert not OFFICE.contains(at("2026-12-07T08:59:59"))
    assert OFFICE.contains(at("2026-12-10T15:59:59")) and not OFFICE.contains(at("2026-12-10T16:00"))
    assert not OFFICE.contains(at("2026-12-11T10:00"))  # Friday
    assert OFFICE.contains(at("2026-12-07T08:30", "UTC"))  # 09:30 in Berlin
    assert in_window((), at("2026-12-11T10:00"))  # no windows: always open


def test_a_window_crossing_midnight_ends_the_next_day():
    night = Window(frozenset({4}), 22 * 60, 2 * 60, "UTC")  # Fri 22:00 – Sat 02:00
    assert night.contains(at("2026-12-11T23:00", "UTC")) and night.contains(at("2026-12-12T01:59", "UTC"))
    assert not night.contains(at("2026-12-12T02:00", "UTC")) and not night.contains(at("2026-12-12T23:00", "UTC"))
    assert not night.contains(at("2026-12-11T01:00", "UTC"))  # Friday early: Thursday is not a day of it
    moment, _ = next_opening((night,), at("2026-12-12T03:00", "UTC"))
    assert moment == at("2026-12-18T22:00", "UTC")


def test_next_opening_in_the_windows_own_zone():
    friday = at("2026-12-11T17:00")
    moment, window = next_opening((OFFICE,), friday)
    assert moment == at("2026-12-14T09:00") and window is OFFICE
    assert next_opening((OFFICE,), at("2026-12-08T10:00")) == (at("2026-12-08T10:00"), OFFICE)  # open now
    early = Window(frozenset({5}), 7 * 60, 8 * 60, "America/New_York")  # Sat 07:00 in New York
    assert next_opening((OFFICE, early), friday) == (at("2026-12-12T07:00", "America/New_York"), early)
    assert next_opening((), friday) is None


def test_a_skipped_hour_opens_the_window_at_the_jump():
    # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST; a window from 02:30 opens at 03:00 CEST
    window = Window(frozenset({6}), 2 * 60 + 30, 4 * 60, BERLIN)
    moment, _ = next_opening((window,), at("2026-03-29T01:00"))
    assert moment == datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc)
    assert transitions(ZoneInfo(BERLIN), at("2026-03-28T00:00"), at("2026-03-30T00:00")) == [moment]


def test_a_repeated_hour_can_open_the_window_twice():
    # Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30–02:45 happens twice
    window = Window(frozenset({6}), 2 * 60 + 30, 2 * 60 + 45, BERLIN)
    first, _ = next_opening((window,), at("2026-10-25T00:00"))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)  # 02:30 CEST
    second, _ = next_opening((window,), first + timedelta(minutes=20))
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc)  # 02:30 CET


# ---- the property: nothing between now and the answer is in a window ---------------------------

ZONES = ["UTC", BERLIN, "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns",
         "Pacific/Apia", "America/Santiago"]
windows = st.builds(
    Window,
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    timezone=st.sampled_from(ZONES),
).filter(lambda w: w.start != w.end)
instants = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(timezone.utc))


def oracle(ws, now: datetime) -> datetime:
    """The first instant at or after ``now`` in a window, by looking at ``now`` and then at every
    whole UTC minute (offsets of these zones are whole minutes: wall time changes only there)."""
    if in_window(ws, now):
        return now
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 16):
        if in_window(ws, t):
            return t
        t += timedelta(minutes=1)
    raise AssertionError("no opening within 16 days")


@settings(max_examples=80, deadline=None)
@given(st.lists(windows, min_size=1, max_size=3), instants)
def test_next_opening_is_in_a_window_and_nothing_before_it_is(ws, now):
    moment, window = next_opening(ws, now)
    assert moment >= now and window.contains(moment) and window in ws
    assert moment == oracle(ws, now)
    if moment > now:
        assert not in_window(ws, moment - timedelta(seconds=1))


DST_ZONES = [BERLIN, "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia"]


@st.composite
def near_an_offset_change(draw):
    """Windows opening or closing around one of a zone's offset changes, asked about before it:
    where skipped and repeated wall times decide the answer."""
    zone = draw(st.sampled_from(DST_ZONES))
    year = draw(st.integers(2000, 2039))
    changes = transitions(ZoneInfo(zone), datetime(year, 1, 1, tzinfo=timezone.utc),
                          datetime(year + 1, 1, 1, tzinfo=timezone.utc))
    if not changes:  # the zone kept one offset that year
        changes = [datetime(year, 6, 1, tzinfo=timezone.utc)]
    change = draw(st.sampled_from(changes)).astimezone(ZoneInfo(zone))
    start = (change.hour * 60 + change.minute + draw(st.integers(-90, 90))) % 1440
    end = (start + draw(st.integers(5, 240))) % 1440 or 1440
    days = frozenset({change.weekday(), *draw(st.frozensets(st.integers(0, 6), max_size=2))})
    now = change - timedelta(minutes=draw(st.integers(0, 600)), seconds=draw(st.integers(0, 59)))
    return [Window(days, start, end, zone)], now.astimezone(timezone.utc)


@settings(max_examples=150, deadline=None)
@given(near_an_offset_change())
def test_next_opening_around_offset_changes(case):
    ws, now = case
    moment, window = next_opening(ws, now)
    assert window.contains(moment) and moment == oracle(ws, now)


# ---- the policy ---------------------------------------------------------------------------------

def test_policy_windows_parsed_and_refused_with_one_line():
    raw = {"windows": [{"days": "Mon-Thu", "from": "09:00", "to": "16:00", "timezone": BERLIN}]}
    rules = policy.parse_policy(raw, "environments[3].policy", "prod")
    assert rules.windows == (OFFICE,)
    friday = at("2026-12-11T17:00")
    found = policy.blockers("prod", "podinfo", "6.6.0", "deploy", {}, None, rules, friday)
    decision = policy.decide(rules, "prod", "deploy", found, who="U1", channels=())
    assert isinstance(decision.refusal, OutsideWindow)
    assert decision.refusal.message == (
        "prod takes changes Mon–Thu 09:00–16:00 Europe/Berlin; next opening Mon 09:00 (in 2 d 16 h); "
        "add `--queue` to apply it then. An admin may add `--force`.")
    forced = policy.decide(rules, "prod", "deploy", found, who="U1", channels=(), force=True, admin=True)
    assert forced.refusal is None and [b.kind for b in forced.forced] == ["window"]
    assert policy.decide(rules, "prod", "deploy", found, who="U1", channels=(), force=True).refusal is not None
    assert policy.blockers("prod", "podinfo", "6.6.0", "deploy", {}, None, rules, at("2026-12-14T09:00")) == ()


@pytest.mark.parametrize("window, problem", [
    ({"days": "Mon-Thu", "from": "09:00"}, "must be {days"),
    ({"days": "Someday", "from": "09:00", "to": "16:00"}, "`Mon-Thu`"),
    ({"days": "daily", "from": "9am", "to": "16:00"}, "HH:MM"),
    ({"days": "daily", "from": "09:00", "to": "09:00"}, "same time"),
    ({"days": "daily", "from": "09:00", "to": "16:00", "timezone": "Mars/Olympus"}, "not a time zone"),
    ({"days": "daily", "from": "09:00", "to": "16:00", "tz": "UTC"}, "must be {days"),
])
def test_policy_windows_refused_in_the_settings(window, problem):
    with pytest.raises(SettingsError, match=problem.replace("{", "\\{")):
        policy.parse_policy({"windows": [window]}, "environments[3].policy", "prod")


# ---- the closing, and an environment's state in one line ----------------------------------------

def closing_oracle(ws, now: datetime):
    """The first whole UTC minute after ``now`` in none of ``ws`` (None within 16 days)."""
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 16):
        if not in_window(ws, t):
            return t
        t += timedelta(minutes=1)
    return None


def test_next_closing_in_the_windows_own_zone():
    assert next_closing((OFFICE,), at("2026-12-10T10:00")) == (at("2026-12-10T16:00"), OFFICE)
    assert next_closing((OFFICE,), at("2026-12-11T10:00")) is None  # closed: nothing to close
    night = Window(frozenset({4}), 22 * 60, 2 * 60, "UTC")  # Fri 22:00 – Sat 02:00
    assert next_closing((night,), at("2026-12-11T23:00", "UTC"))[0] == at("2026-12-12T02:00", "UTC")
    morning = Window(frozenset({0}), 8 * 60, 12 * 60, BERLIN)  # overlapping windows: the last one closes
    assert next_closing((OFFICE, morning), at("2026-12-14T08:30")) == (at("2026-12-14T16:00"), OFFICE)
    always = Window(frozenset(range(7)), 0, 1440, BERLIN)
    assert next_closing((always,), at("2026-12-14T08:30")) is None


def test_an_environments_state_in_one_line():
    assert state_text("prod", (OFFICE,), at("2026-12-11T17:00")) == \
        "prod: closed until Mon 09:00 Europe/Berlin (in 2 d 16 h)"
    assert state_text("qa", (OFFICE,), at("2026-12-10T10:55")) == \
        "qa: open until Thu 16:00 Europe/Berlin (in 5 h 5 min)"
    asked_in_utc = at("2026-12-11T16:00", "UTC")  # 17:00 in Berlin: said in the window's zone
    assert state_text("prod", (OFFICE,), asked_in_utc) == "prod: closed until Mon 09:00 Europe/Berlin (in 2 d 16 h)"
    assert state_text("dev", (), asked_in_utc) == ""
    always = Window(frozenset(range(7)), 0, 1440, BERLIN)
    assert state_text("dev", (always,), asked_in_utc) == "dev: open (its windows do not close within a week)"


@settings(max_examples=80, deadline=None)
@given(st.lists(windows, min_size=1, max_size=3), instants)
def test_next_closing_is_the_first_instant_in_no_window(ws, now):
    found = next_closing(ws, now)
    if not in_window(ws, now):
        assert found is None
        return
    expected = closing_oracle(ws, now)
    if expected is None or expected - now > HORIZON:
        return  # open for more than the horizon: not said
    moment, window = found
    assert moment == expected and window in ws
    assert window.contains(moment - timedelta(seconds=1)) and not in_window(ws, moment)


@settings(max_examples=100, deadline=None)
@given(near_an_offset_change())
def test_next_closing_around_offset_changes(case):
    ws, now = case
    opening, _ = next_opening(ws, now)
    now = opening + timedelta(seconds=1) if in_window(ws, opening + timedelta(seconds=1)) else opening
    found = next_closing(ws, now)
    expected = closing_oracle(ws, now) if in_window(ws, now) else None
    assert (found[0] if found else None) == expected
