"""Promotion windows and `--queue` through a real Errbot, a real bare remote and registry, a real
SQLite state file, and a clock the test moves: a change outside a window is refused with the next
opening; queued, it is planned and checked again at the opening by the poller, applied or refused,
and said in its thread; it can be withdrawn; it survives a restart, or is said lost with why."""
from __future__ import annotations

import queue
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.guard import queue as held
from tests.ferrybot import ask, start_bot
from tests.fixtures_git import remote_file, remote_log, remote_tip

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = {"days": "Mon-Thu", "from": "09:00", "to": "16:00", "timezone": "Europe/Berlin"}
FRIDAY = datetime(2027, 1, 8, 17, 0, tzinfo=BERLIN)  # after the window; in the future of any real clock
MONDAY = datetime(2027, 1, 11, 9, 0, tzinfo=BERLIN)  # the next opening
QA_FILE = "apps/qa/podinfo-values.yaml"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def settings(url, policy=None):
    raw = demo_settings(url)
    raw["environments"][1]["policy"] = {"windows": [WINDOW], **(policy or {})}
    return raw


def start(tmp_path, url, clock, policy=None, data_dir=None):
    # A restarted bot's first round says what was lost: after the test bot's "ready" (a second
    # after start), which the test bot waits for and drops everything said before.
    config = {"FERRY_QUEUE_POLL_SECONDS": 0.1 if data_dir is None else 1.0}
    if data_dir is not None:
        config.update(STORAGE="FerryShelf", BOT_DATA_DIR=str(data_dir))
    bot = start_bot(tmp_path, settings(url, policy), **config)
    core(bot).clock = clock
    return bot


def core(bot):
    return bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops


def as_user(bot, user):
    bot.bot.sender = bot.bot.build_identifier(user)


def said(bot, timeout=10.0) -> str:
    """The next thing the bot says on its own (the poller's announcement)."""
    return bot.pop_message(timeout=timeout)


def nothing_said(bot):
    with pytest.raises(queue.Empty):
        bot.pop_message(timeout=0.5)


def test_outside_the_window_refused_with_the_next_opening_and_an_admin_may_force(tmp_path, url):
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock)
    try:
        before = remote_tip(url)
        as_user(bot, "@bob")
        refused = ask(bot, "!deploy podinfo 6.5.3 to qa")[0].replace("`", "")
        assert refused == ("qa takes changes Mon–Thu 09:00–16:00 Europe/Berlin; next opening Mon 09:00 "
                           "(in 2 d 16 h); add --queue to apply it then. An admin may add --force.")
        assert "Only an admin" in ask(bot, "!deploy podinfo 6.5.3 to qa --force")[0]
        assert remote_tip(url) == before  # refused: the remote untouched
        as_user(bot, "@alice")  # an admin
        _, done = ask(bot, "!deploy podinfo 6.5.3 to qa --force", replies=2)
        assert done.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
        clock.now = MONDAY + timedelta(hours=1)  # in the window: no flag needed
        _, done = ask(bot, "!deploy podinfo 6.5.2 to qa", replies=2)
        assert done.startswith("Deployed podinfo 6.5.3 → 6.5.2 in qa")
        assert "--queue" in ask(bot, "!deploy podinfo 6.5.3 to qa --queue --force")[0]  # one or the other
    finally:
        bot.stop()


def test_a_queued_change_is_applied_at_the_opening_and_said_in_its_thread(tmp_path, url, monkeypatch):
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", "flux-provider-token")  # Flux feedback on for qa
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock)
    try:
        before = remote_tip(url)
        as_user(bot, "@bob")
        reply = ask(bot, "!promote podinfo to qa --queue")[0].replace("`", "")
        assert reply.startswith("Queued change ") and "promote podinfo to qa when qa opens Mon 09:00 (in 2 d 16 h)" in reply
        change_id = reply.split()[2].rstrip(":")
        listed = ask(bot, "!pending")[0].replace("`", "")
        assert listed == (f"{change_id}: promote podinfo to qa, asked by @bob, queued for Mon 09:00 (in 2 d 16 h).\n"
                          "qa: closed until Mon 09:00 Europe/Berlin (in 2 d 16 h); --queue holds a change for the opening.")
        clock.now = MONDAY - timedelta(minutes=1)
        nothing_said(bot)
        assert remote_tip(url) == before
        clock.now = MONDAY + timedelta(seconds=5)
        announced = said(bot).replace("`", "")
        assert announced.startswith(f"qa's window opened: queued change {change_id}. Promoted podinfo 6.5.2 → 6.5.3 in qa"), announced
        assert remote_log(url, fmt="%an|%s")[0] == "@bob|promote podinfo 6.5.2 → 6.5.3 from dev to qa"
        assert 'version: "6.5.3"' in remote_file(url, QA_FILE)
        assert core(bot).queued_change(change_id).state == held.APPLIED
        flux = bot.bot.plugin_manager.get_plugin_obj_by_name("FerryFlux").feedback
        (waiting,) = flux.pending()  # Flux's events about it answered in the same thread
        assert (waiting.app, waiting.environment, waiting.commit, waiting.target.to) == \
            ("podinfo", "qa", remote_tip(url), "@bob")
        nothing_said(bot)  # once
    finally:
        bot.stop()


def test_at_the_opening_every_check_runs_again(tmp_path, url):
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock)
    try:
        before = remote_tip(url)
        reply = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0]
        change_id = reply.replace("`", "").split()[2].rstrip(":")
        ask(bot, "!lock qa podinfo the sale")  # a lock since: refused at the opening
        clock.now = MONDAY + timedelta(minutes=3)
        announced = said(bot).replace("`", "")
        assert announced.startswith(f"qa's window opened, but queued change {change_id} "
                                    "(deploy podinfo@6.5.3 to qa) was refused: podinfo in qa is locked")
        assert remote_tip(url) == before
        assert core(bot).queued_change(change_id).state == held.REFUSED
    finally:
        bot.stop()


def test_a_queued_change_is_withdrawn_by_its_requester_not_by_anyone(tmp_path, url):
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock, policy={"deploy": ["@bob", "@carol"]})
    try:
        as_user(bot, "@bob")
        change_id = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
        as_user(bot, "@dave")
        assert "You may not approve changes to qa" in ask(bot, f"!reject {change_id}")[0]
        as_user(bot, "@bob")
        assert ask(bot, f"!reject {change_id}")[0].replace("`", "") == \
            f"Withdrew queued change {change_id} (deploy podinfo@6.5.3 to qa), by @bob."
        assert "No change is waiting" in ask(bot, "!pending", replies=2)[0]  # and that qa is closed
        before = remote_tip(url)
        clock.now = MONDAY + timedelta(minutes=1)
        nothing_said(bot)
        assert remote_tip(url) == before
    finally:
        bot.stop()


def test_queued_changes_survive_a_restart_or_are_said_lost(tmp_path, url):
    data = tmp_path / "errbot-data"
    clock = Clock(FRIDAY)
    bot = start(tmp_path, url, clock, data_dir=data)
    try:
        kept = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
        gone = ask(bot, "!deploy redis 19.0.0 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
        # the bot stops while applying `gone` (claimed, not settled)
        assert core(bot).queue.claim(gone, held.APPLYING) is not None
    finally:
        bot.stop()
    before = remote_tip(url)
    bot = start(tmp_path, url, Clock(FRIDAY), data_dir=data)
    try:
        lost = said(bot).replace("`", "")
        assert lost.startswith(f"Queued change {gone} (deploy redis@19.0.0 to qa) was lost: Ferry stopped "
                               "while applying it")
        assert [c.id for c in core(bot).queued()] == [kept]
        core(bot).clock.now = MONDAY + timedelta(minutes=2)
        assert said(bot).replace("`", "").startswith(f"qa's window opened: queued change {kept}. "
                                                     "Deployed podinfo 6.5.2 → 6.5.3 in qa")
        assert remote_log(url)[1] == before
    finally:
        bot.stop()


def test_a_window_missed_while_stopped_is_said_lost(tmp_path, url):
    data = tmp_path / "errbot-data"
    bot = start(tmp_path, url, Clock(FRIDAY), data_dir=data)
    try:
        change_id = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
    finally:
        bot.stop()
    before = remote_tip(url)
    bot = start(tmp_path, url, Clock(MONDAY + timedelta(hours=8)), data_dir=data)  # 17:00: closed again
    try:
        lost = said(bot).replace("`", "")
        assert lost == (f"Queued change {change_id} (deploy podinfo@6.5.3 to qa) was lost: its window "
                        "(Mon–Thu 09:00–16:00 Europe/Berlin) opened at 2027-01-11 08:00 UTC and closed while "
                        "Ferry was stopped: ask for it again.")
        assert remote_tip(url) == before
    finally:
        bot.stop()


def test_the_grammar_takes_queue_on_changing_commands_only():
    from ferrychat import grammar
    from gitops.errors import UsageError
    assert grammar.parse_deploy("podinfo 6.5.3 to prod --queue").queue
    assert grammar.parse_promote("podinfo to prod --queue").queue
    assert grammar.parse_rollback("podinfo on prod --queue").queue
    assert not grammar.parse_deploy("podinfo 6.5.3 to prod").queue
    for args in ("podinfo 6.5.3 to prod --queue --dry-run", "podinfo 6.5.3 to prod --force --queue"):
        with pytest.raises(UsageError, match="`--queue` waits for the next window"):
            grammar.parse_deploy(args)
    with pytest.raises(UsageError):
        grammar.parse_diff("qa prod --queue")


def test_queue_inside_the_window_applies_now_and_into_approval_at_the_opening(tmp_path, url):
    clock = Clock(MONDAY + timedelta(hours=2))
    bot = start(tmp_path, url, clock, policy={"approval": {"approvers": ["@carol"]}})
    try:
        asked = ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0]
        assert asked.startswith("qa needs a second person: deploy podinfo 6.5.2 → 6.5.3")  # in the window: now
        clock.now = FRIDAY
        before = remote_tip(url)
        change_id = ask(bot, "!deploy redis 19.0.0 to qa --queue")[0].replace("`", "").split()[2].rstrip(":")
        clock.now = MONDAY + timedelta(days=7, minutes=1)
        announced = said(bot).replace("`", "")
        assert announced.startswith(f"qa's window opened: queued change {change_id}. qa needs a second person: "
                                    "deploy redis 18.1.0 → 19.0.0"), announced
        assert remote_tip(url) == before  # held for approval, not pushed
        assert core(bot).queued_change(change_id).settled.startswith("waiting for approval as ")
    finally:
        bot.stop()
