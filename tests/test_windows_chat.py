"""Promotion windows said before anyone asks, through a real Errbot, a real bare remote and
registry, and a clock the test moves: `!locks` shows each environment's windows open or closed
and until when; `!versions` and `!pending` carry a short note for an environment outside its
window; an environment without windows changes nothing of what they say."""
from __future__ import annotations

from datetime import timedelta

from devtools.fluxrepo import demo_settings
from tests.ferrybot import ask, start_bot
from tests.test_queue import FRIDAY, MONDAY, Clock, as_user, core, start, url  # noqa: F401 - fixture

CLOSED = "qa: closed until Mon 09:00 Europe/Berlin (in 2 d 16 h)"


def test_locks_show_each_window_open_or_closed_and_until_when(tmp_path, url):  # noqa: F811
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock)
    try:
        as_user(bot, "@alice")  # an admin, by DM
        assert ask(bot, "!locks")[0] == f"Nothing is locked or frozen.\nPromotion windows:\n• {CLOSED}"
        ask(bot, "!lock prod the sale")
        clock.now = MONDAY + timedelta(hours=2, minutes=30)
        said = ask(bot, "!locks")[0]
        assert said.startswith("what  by") and "the sale" in said  # the locks' table as before
        assert said.endswith("Promotion windows:\n• qa: open until Mon 16:00 Europe/Berlin (in 4 h 30 min)")
        as_user(bot, "@bob")  # not an admin: nothing is shown
        assert "bot-admin" in ask(bot, "!locks")[0]
    finally:
        bot.stop()


def test_versions_and_pending_say_an_environment_is_outside_its_window(tmp_path, url):  # noqa: F811
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock)
    note = f"{CLOSED}; --queue holds a change for the opening."
    try:
        table = ask(bot, "!versions")[0].replace("`", "")
        assert table.endswith(note) and "podinfo" in table
        assert ask(bot, "!versions --env qa")[0].replace("`", "").endswith(note)
        assert note not in ask(bot, "!versions --env prod")[0].replace("`", "")  # another column
        nothing, closed = ask(bot, "!pending", replies=2)
        assert nothing.startswith("No change is waiting") and closed.replace("`", "") == note
        change_id = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
        listed = ask(bot, "!pending")[0].replace("`", "")
        assert listed.endswith(f"{change_id}: deploy podinfo@6.5.3 to qa, asked by @alice, queued for Mon 09:00 "
                               f"(in 2 d 16 h).\n{note}")
        clock.now = MONDAY - timedelta(hours=2)  # still closed: the note counts down
        assert ask(bot, "!versions")[0].replace("`", "").endswith("(in 2 h); --queue holds a change for the opening.")
        ask(bot, f"!reject {change_id}")
        clock.now = MONDAY + timedelta(minutes=1)  # open: no note
        assert "holds a change" not in ask(bot, "!versions")[0]
        assert ask(bot, "!pending")[0].startswith("No change is waiting")
    finally:
        bot.stop()


def test_without_windows_nothing_is_said_of_them(tmp_path, url):  # noqa: F811
    bot = start_bot(tmp_path, demo_settings(url))
    try:
        core(bot).clock = Clock(FRIDAY)
        assert ask(bot, "!locks")[0] == "Nothing is locked or frozen."
        assert "window" not in ask(bot, "!versions")[0]
        assert ask(bot, "!pending")[0].startswith("No change is waiting")
    finally:
        bot.stop()
