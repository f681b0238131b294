"""Who may change what, through a real Errbot: ACLs, per-environment policy, four-eyes approval,
locks and freezes, the audit trail. Several identities, DMs and channel messages; a real bare
remote and a real registry."""
import queue
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from errbot.backends.base import Message
from errbot.backends.test import TestOccupant

from devtools.fluxrepo import demo_files, demo_settings
from tests.ferrybot import start_bot
from tests.fixtures_git import remote_log, remote_path, remote_tip, git

POLICY = {
    "qa": {"deploy": ["@alice", "@bob"]},
    "stag": {"channels": ["#deploys"]},
    "prod": {"approval": {"approvers": ["@bob", "@carol"]}},
}


class Chat:
    """A TestBot with people talking to it in DMs and in channels."""

    def __init__(self, tmp_path, url, policy=POLICY, data_dir=None, extra=None, settings=None):
        self.tmp_path, self.url = tmp_path, url
        raw = settings or demo_settings(url)
        for env in raw["environments"]:
            if env["name"] in policy:
                env["policy"] = policy[env["name"]]
        config = {}
        if data_dir:  # a storage that survives a restart, as the real bot's does
            config.update(STORAGE="FerryShelf", BOT_DATA_DIR=str(data_dir))
        self.bot = start_bot(tmp_path, {**raw, **(extra or {})}, **config)
        self.said = []

    def dm(self, user, text, replies=1):
        self.bot.bot.sender = self.bot.bot.build_identifier(user)
        self.bot.push_message(text)
        return self._collect(replies)

    def room(self, user, room, text, replies=1):
        backend = self.bot.bot
        msg = Message(text)
        msg.to = backend.query_room(room)
        msg.frm = TestOccupant(user, msg.to)
        backend.callback_message(msg)
        return self._collect(replies)

    def _collect(self, replies):
        got = [self.bot.pop_message(timeout=20) for _ in range(replies)]
        with pytest.raises(queue.Empty):
            self.bot.pop_message(timeout=0.3)
        self.said += got
        return got[-1] if replies == 1 else got

    def stop(self):
        self.bot.stop()


@pytest.fixture
def fleet(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def chat(tmp_path, fleet):
    c = Chat(tmp_path, fleet)
    yield c
    c.stop()


def plain(text):
    return text.replace("`", "")


def trailers(url):
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%(trailers:only,unfold)")


def test_admin_commands_are_admin_only_and_dm_only(chat):
    assert "requires bot-admin privileges" in chat.dm("@bob", "!lock prod")
    assert "only be issued through a direct message" in chat.room("@alice", "#deploys", "!lock prod")
    assert "Locked prod: release train. Changes are refused" in chat.dm("@alice", "!lock prod release train")
    assert "prod" in chat.dm("@alice", "!locks") and "release train" in chat.said[-1]


def test_unauthorised_user_is_told_who_may(chat, fleet):
    before = remote_tip(fleet)
    answer = plain(chat.dm("@carol", "!deploy podinfo 6.5.3 to qa"))
    assert answer == "You may not deploy to qa: ask @alice, @bob."
    assert remote_tip(fleet) == before
    intent, done = chat.dm("@bob", "!deploy podinfo 6.5.3 to qa", replies=2)
    assert done.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")


def test_changes_come_from_the_right_channel(chat, fleet):
    before = remote_tip(fleet)
    assert plain(chat.dm("@alice", "!promote podinfo to stag")) == "Changes to stag are asked in #deploys, not here."
    assert "not here" in chat.room("@alice", "#random", "!promote podinfo to stag")
    assert remote_tip(fleet) == before
    done = chat.room("@alice", "#deploys", "!promote podinfo to stag", replies=2)[-1]
    assert "Promoted podinfo 6.5.1 → 6.5.2 in stag (from qa)" in done


def test_approvals_are_taken_only_in_the_environments_channels(tmp_path, fleet):
    chat = Chat(tmp_path, fleet, {"prod": {"channels": ["#deploys"]}})
    try:
        asked = plain(chat.room("@alice", "#deploys", "!deploy redis 18.1.0 to prod"))
        change_id = asked.split("is change ")[1].split(",")[0]
        before = remote_tip(fleet)
        assert plain(chat.dm("@bob", f"!approve {change_id}")) == "Changes to prod are approved in #deploys, not here."
        assert "approved in #deploys, not here" in chat.room("@bob", "#random", f"!approve {change_id}")
        assert "approved in #deploys, not here" in chat.room("@bob", "#random", f"!reject {change_id}")
        assert "approved in #deploys, not here" in chat.dm("@alice", f"!reject {change_id}")
        assert remote_tip(fleet) == before and change_id in chat.dm("@bob", "!pending")
        done = chat.room("@bob", "#deploys", f"!approve {change_id}")
        assert done.startswith("Deployed redis 18.0.0 → 18.1.0 in prod: commit")
    finally:
        chat.stop()


def test_four_eyes_for_prod(chat, fleet):
    before = remote_tip(fleet)
    asked = plain(chat.dm("@alice", "!deploy podinfo 6.5.1 to prod"))
    assert "prod needs a second person: deploy podinfo 6.5.0 → 6.5.1 is change" in asked
    assert "by @bob, @carol (not @alice)" in asked
    assert '-      version: "6.5.0" # pinned by Ferry' in asked and '+      version: "6.5.1"' in asked
    assert remote_tip(fleet) == before
    change_id = asked.split("is change ")[1].split(",")[0]
    assert change_id in chat.dm("@carol", "!pending")
    assert plain(chat.dm("@alice", f"!approve {change_id}")) == \
        "You cannot approve your own change: another person has to."
    assert "You may not approve changes to prod: ask @bob, @carol." in plain(chat.dm("@dave", f"!approve {change_id}"))
    assert remote_tip(fleet) == before
    done = chat.dm("@carol", f"!approve {change_id}")
    assert done.startswith("Deployed podinfo 6.5.0 → 6.5.1 in prod: commit")
    assert remote_log(fleet, fmt="%an|%s")[0] == "@alice|deploy podinfo 6.5.0 → 6.5.1 to prod"
    assert "Requested-by: @alice <@alice>" in trailers(fleet)
    assert "Approved-by: @carol <@carol>" in trailers(fleet)
    assert plain(chat.dm("@bob", f"!approve {change_id}")) == f"Change {change_id} was already approved by @carol."
    audit = plain(chat.dm("@bob", "!audit prod"))
    assert "deploy podinfo 6.5.0 → 6.5.1 to prod" in audit and "@carol <@carol>" in audit


def test_approval_refused_when_the_pin_moved(chat, fleet, external_commit):
    asked = plain(chat.dm("@alice", "!deploy podinfo 6.5.1 to prod"))
    change_id = asked.split("is change ")[1].split(",")[0]
    pin_file = "apps/prod/podinfo-values.yaml"
    current = git("--git-dir", str(remote_path(fleet)), "show", f"main:{pin_file}")
    theirs = external_commit(fleet, {pin_file: current.replace('"6.5.0"', '"6.5.2"') + "\n"})
    answer = plain(chat.dm("@bob", f"!approve {change_id}"))
    assert answer.startswith(f"podinfo in prod moved from 6.5.0 to 6.5.2 since change {change_id} was asked")
    assert remote_tip(fleet) == theirs
    assert "No change is waiting" in chat.dm("@bob", "!pending")


def test_pending_is_bounded_and_one_person_holds_a_set_number_of_changes(chat, fleet):
    before = remote_tip(fleet)
    for user in ("@alice", "@bob", "@carol", "@dave", "@erin", "@frank"):
        for _ in range(5):
            assert "needs a second person" in chat.dm(user, "!deploy podinfo 6.5.1 to prod")
    refused = plain(chat.dm("@alice", "!deploy redis 18.1.0 to prod"))
    assert refused.startswith("You already have 5 changes waiting for approval, the most one person may")
    listed = chat.dm("@zed", "!pending")
    assert len(listed) <= 8000 and listed.count("expires") < 30
    assert listed.endswith(f"… and {30 - listed.count('expires')} more changes waiting "
                           "(!approve <id> takes any of them).")
    assert remote_tip(fleet) == before


def test_reject_drops_the_change(chat, fleet):
    first = plain(chat.dm("@alice", "!deploy redis 18.1.0 to prod")).split("is change ")[1].split(",")[0]
    assert "You may not approve changes to prod" in chat.dm("@dave", f"!reject {first}")
    assert "Rejected change" in chat.dm("@bob", f"!reject {first} not during the sale")
    assert plain(chat.dm("@carol", f"!approve {first}")) == f"Change {first} was already rejected by @bob."
    assert "No change" in chat.dm("@bob", "!approve 0123456789")
    assert "Give one change id" in chat.dm("@bob", "!approve")
    assert "is not a change id" in chat.dm("@bob", "!approve ../../x")
    assert len(remote_log(fleet)) == 1


def test_an_expired_change_is_refused(tmp_path, fleet):
    chat = Chat(tmp_path, fleet, {"prod": {"approval": {"approvers": ["@bob"], "expire_minutes": 0.02}}})
    try:
        asked = plain(chat.dm("@alice", "!deploy redis 18.1.0 to prod"))
        change_id = asked.split("is change ")[1].split(",")[0]
        time.sleep(1.5)  # past the 1.2 s this policy gives
        answer = plain(chat.dm("@bob", f"!approve {change_id}"))
        assert f"Change {change_id} expired at" in answer and "ask for it again" in answer
        assert len(remote_log(fleet)) == 1
    finally:
        chat.stop()


def test_pending_changes_survive_a_restart(tmp_path, fleet):
    storage = tmp_path / "errbot"
    storage.mkdir()
    chat = Chat(tmp_path, fleet, data_dir=storage)
    try:
        asked = plain(chat.dm("@alice", "!rollback podinfo on prod --dry-run"))
        assert "nothing to roll back" in asked
        asked = plain(chat.dm("@alice", "!deploy cert-manager v1.15.0 to prod"))
        change_id = asked.split("is change ")[1].split(",")[0]
    finally:
        chat.stop()
    chat = Chat(tmp_path, fleet, data_dir=storage)
    try:
        assert change_id in chat.dm("@bob", "!pending")
        assert "Deployed cert-manager v1.14.0 → v1.15.0 in prod" in chat.dm("@bob", f"!approve {change_id}")
    finally:
        chat.stop()


def test_locks_refuse_with_who_and_why_and_admins_may_force(chat, fleet):
    chat.dm("@alice", "!lock qa podinfo incident 42")
    before = remote_tip(fleet)
    refused = plain(chat.dm("@bob", "!deploy podinfo 6.5.3 to qa"))
    assert refused.startswith("podinfo in qa is locked by @alice since") and "incident 42" in refused
    assert "Only an admin may force" in chat.dm("@bob", "!deploy podinfo 6.5.3 to qa --force")
    assert "Deployed redis" in chat.dm("@bob", "!deploy redis 18.0.0 to qa", replies=2)[-1]  # other apps go on
    assert remote_log(fleet)[1] == before
    done = chat.dm("@alice", "!deploy podinfo 6.5.3 to qa --force", replies=2)[-1]
    assert done.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
    assert "Forced-by: @alice <@alice> past: podinfo in qa is locked by @alice" in plain(trailers(fleet))
    assert "Unlocked podinfo in qa" in plain(chat.dm("@alice", "!unlock qa podinfo"))
    assert "is not locked" in chat.dm("@alice", "!unlock qa podinfo")
    assert "forced" in chat.dm("@bob", "!audit qa 5")


def test_a_freeze_window_refuses_and_says_until_when(tmp_path, fleet):
    now = datetime.now(timezone.utc)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    window = {"from": start.strftime("%a %H:%M"), "to": end.strftime("%a %H:%M"), "timezone": "UTC"}
    chat = Chat(tmp_path, fleet, {"dev": {"freeze": [window]}})
    try:
        refused = plain(chat.dm("@bob", "!deploy podinfo 6.6.0 to dev"))
        assert refused.startswith("dev is frozen (") and f"until {end.strftime('%a %Y-%m-%d %H:%M')} UTC" in refused
        assert "freeze window" in chat.dm("@alice", "!locks")
        done = chat.dm("@alice", "!deploy podinfo 6.6.0 to dev --force", replies=2)[-1]
        assert done.startswith("Deployed podinfo 6.5.3 → 6.6.0 in dev")
        assert "Forced-by: @alice <@alice> past: dev is frozen" in trailers(fleet)
    finally:
        chat.stop()


def test_no_secret_in_any_reply_or_log_line(tmp_path, registry_auth, bare_remote, monkeypatch, caplog):
    from devtools.artifacts import push_charts
    for chart, versions in {"podinfo": ["6.5.0", "6.5.1", "6.5.2", "6.5.3"]}.items():
        push_charts(registry_auth.host, f"charts/{chart}", versions,
                    username=registry_auth.username, password=registry_auth.password)
    url = bare_remote(demo_files(f"{registry_auth.url}/charts"))
    token = "ghp_NotARealTokenButSecret0123456789"
    monkeypatch.setenv("GITOPS_GIT_TOKEN", token)
    monkeypatch.setenv("GITOPS_REGISTRY_USERNAME", registry_auth.username)
    monkeypatch.setenv("GITOPS_REGISTRY_PASSWORD", registry_auth.password)
    # The single pair of variables is for `registry.url`'s host.
    chat = Chat(tmp_path, url, extra={"registry": {"url": f"{registry_auth.url}/charts", "insecure": True}})
    try:
        chat.dm("@alice", "!versions")
        chat.dm("@alice", "!deploy podinfo 6.5.3 to qa", replies=2)
        chat.dm("@alice", "!deploy podinfo 9.9.9 to qa")
        monkeypatch.setenv("GITOPS_REGISTRY_PASSWORD", "wrong")
        chat.dm("@alice", "!versions podinfo")
        log_file = Path(chat.bot.bot_config.BOT_LOG_FILE).read_text()
    finally:
        chat.stop()
    assert "Deployed podinfo 6.5.2 → 6.5.3 in qa" in chat.said[2]
    everything = "\n".join(chat.said) + log_file + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (token, registry_auth.password):
        assert secret not in everything
