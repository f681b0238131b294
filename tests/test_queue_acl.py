"""Who a queued change's requester is at its opening, through a real Errbot, a real bare remote
and registry, a real SQLite state file, and a clock the test moves.

Nothing of the requester's standing is kept with a queued change: `--queue` never goes with
`--force`, the one thing an admin's status changes, so an admin's queued change meets what
anyone's meets (a lock since is a refusal). Errbot's ACLs are asked again at the opening, as
Errbot knows them then: a restart with another FERRY_ACCESS_CONTROLS that takes `!deploy` from the
requester, or from the room they asked in, refuses the change, said in its thread, the remote
untouched."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from errbot.backends.test import TestOccupant

from gitops.guard import queue as held
from gitops.guard.queue import Queue, QueuedChange
from gitops.model import Requester
from gitops.state.store import Store
from tests.ferrybot import ask, start_bot
from tests.fixtures_git import remote_file, remote_tip
from tests.test_queue import FRIDAY, MONDAY, QA_FILE, Clock, as_user, core, said, settings, url  # noqa: F401

REFUSED = ("qa's window opened, but queued change {id} ({words}) was refused: Errbot's ACLs no longer let "
           "{who} run !deploy there (FERRY_ACCESS_CONTROLS): ask someone who may.")


def restartable(tmp_path, url, clock, **config):  # noqa: F811
    bot = start_bot(tmp_path, settings(url), FERRY_QUEUE_POLL_SECONDS=1.0, STORAGE="FerryShelf",
                    BOT_DATA_DIR=str(tmp_path / "errbot-data"), **config)
    core(bot).clock = clock
    return bot


def queued_id(reply: str) -> str:
    return reply.replace("`", "").split()[2].rstrip(":")


def announcements(bot, count: int) -> dict:
    """The next ``count`` things the poller says, by the queued change they are about."""
    found = {}
    for _ in range(count):
        text = said(bot).replace("`", "")
        found[text.split("queued change ")[1].split()[0].rstrip(".")] = text
    return found


def test_the_acls_at_the_opening_decide_not_those_when_it_was_asked(tmp_path, url):  # noqa: F811
    bot = restartable(tmp_path, url, Clock(FRIDAY))
    try:
        as_user(bot, "@bob")
        bobs = queued_id(ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0])
        as_user(bot, "@alice")
        alices = queued_id(ask(bot, "!deploy redis 19.0.0 to qa --queue")[0])
    finally:
        bot.stop()
    # Restarted with `!deploy` for @alice only.
    bot = restartable(tmp_path, url, Clock(FRIDAY), ACCESS_CONTROLS={"FerryDeploy:*": {"allowusers": ("@alice",)}})
    try:
        core(bot).clock.now = MONDAY + timedelta(minutes=1)
        found = announcements(bot, 2)
        assert found[bobs] == REFUSED.format(id=bobs, words="deploy podinfo@6.5.3 to qa", who="@bob")
        assert found[alices].startswith(f"qa's window opened: queued change {alices}. Deployed redis")
        assert core(bot).queued_change(bobs).state == held.REFUSED
        assert "Errbot's ACLs no longer let @bob" in core(bot).queued_change(bobs).settled
        assert 'version: "6.5.2"' in remote_file(url, QA_FILE)  # bob's change never written
    finally:
        bot.stop()


def test_a_room_the_acls_close_since_refuses_what_was_asked_there(tmp_path, url):  # noqa: F811
    bot = restartable(tmp_path, url, Clock(FRIDAY))
    try:
        bot.bot.sender = TestOccupant("@bob", bot.bot.query_room("deploys"))
        there = queued_id(ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0])
        bot.bot.sender = TestOccupant("@bob", bot.bot.query_room("releases"))
        elsewhere = queued_id(ask(bot, "!deploy redis 19.0.0 to qa --queue")[0])
    finally:
        bot.stop()
    bot = restartable(tmp_path, url, Clock(FRIDAY), ACCESS_CONTROLS={"FerryDeploy:*": {"denyrooms": ("deploys",)}})
    try:
        before = remote_tip(url)
        core(bot).clock.now = MONDAY + timedelta(minutes=1)
        found = announcements(bot, 2)
        assert found[there] == REFUSED.format(id=there, words="deploy podinfo@6.5.3 to qa", who="@bob")
        assert found[elsewhere].startswith(f"qa's window opened: queued change {elsewhere}. Deployed redis")
        assert remote_tip(url) != before and 'version: "6.5.2"' in remote_file(url, QA_FILE)
    finally:
        bot.stop()


def test_an_admins_queued_change_meets_a_lock_as_anyones_does(tmp_path, url):  # noqa: F811
    clock = Clock(FRIDAY)
    bot = restartable(tmp_path, url, clock)
    try:
        as_user(bot, "@alice")  # an admin, who could have forced it now
        change_id = queued_id(ask(bot, "!deploy podinfo 6.5.3 to qa --queue")[0])
        ask(bot, "!lock qa")
        before = remote_tip(url)
        clock.now = MONDAY + timedelta(minutes=1)
        assert said(bot).replace("`", "").startswith(f"qa's window opened, but queued change {change_id} "
                                                     "(deploy podinfo@6.5.3 to qa) was refused: qa is locked")
        assert remote_tip(url) == before
    finally:
        bot.stop()


def test_what_is_kept_is_what_was_asked_and_an_older_record_still_reads(tmp_path):
    store = Store(tmp_path / "state.db")
    queue = Queue(store, lambda: datetime(2027, 1, 8, 16, 0, tzinfo=timezone.utc))
    asked = queue.add(QueuedChange("", "deploy", "podinfo", "qa", "2027-01-11T08:00:00+00:00",
                                   Requester("U0ALICE", "Alice"), version="6.5.3", asker=("U0ALICE", "C0DEPLOYS")))
    (record,) = store.read("SELECT record FROM queued WHERE id = ?", (asked.id,))[0]
    kept = json.loads(record)
    assert "admin" not in kept and "force" not in kept  # nothing of the requester's standing
    assert kept["asker"] == ["U0ALICE", "C0DEPLOYS"]
    # A record the previous Ferry kept (an admin's, not forced) reads as what was asked.
    older = {k: v for k, v in kept.items() if k != "asker"}
    older.update(admin=True, force=False)
    with store.transaction() as db:
        db.execute("UPDATE queued SET record = ? WHERE id = ?", (json.dumps(older), asked.id))
    found = queue.find(asked.id)
    assert found.words == "deploy podinfo@6.5.3 to qa" and found.asker == ("", "") and found.state == held.QUEUED
