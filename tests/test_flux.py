"""Flux reporting back, end to end: a real Errbot (test backend) on the real plugins folder, its
Webserver plugin serving on 127.0.0.1, real HTTP requests carrying events built from Flux's
documented payloads and signed as notification-controller signs them, a real bare remote and
registry, and Errbot's Shelf storage on disk so that a restart is a restart."""
import queue
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from errbot.backends.base import Room
from errbot.backends.test import TestBot as ErrbotTestBot, TestOccupant
from errbot.core import ErrBot
from ruamel.yaml import YAML

from devtools.fluxrepo import demo_files, demo_settings
from devtools.serial_replies import one_reply_at_a_time
from gitops.feedback.events import MAX_BODY
from tests.ferrybot import STORAGE_PLUGINS
from tests.fixtures_git import remote_tip
from tests.flux_events import encode, flux_event, signed
from tests.serving import answering

PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
TOKENS = {"qa": "qa-token-7f3a", "prod": "prod-token-91bc"}
THREAD = "1700000000.000100"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ferry:
    bot: ErrbotTestBot
    port: int
    sent: list  # every Message the backend sent, with its recipient and thread parent
    early: list = field(default_factory=list)  # what it said before its first answer, in order

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{self.port}/flux/{env}"

    def post(self, env: str, event=None, token=None, body=None, headers=None) -> requests.Response:
        body = body if body is not None else encode(event)
        headers = headers if headers is not None else signed(body, token or TOKENS[env])
        return requests.post(self.url(env), data=body, headers=headers, timeout=10)

    def say(self, command: str, replies: int = 1, extras="") -> list:
        self.bot.push_message(command, extras=extras)
        answers = [self.bot.pop_message(timeout=20) for _ in range(replies)]
        self.quiet()
        return answers

    def next(self, timeout: float = 10) -> str:
        return self.bot.pop_message(timeout=timeout)

    def quiet(self, wait: float = 0.3):
        with pytest.raises(queue.Empty):
            self.bot.pop_message(timeout=wait)

    def in_room(self, room: str = "testroom"):
        """From now on the admin speaks in a channel, as on Slack, not in a DM."""
        self.bot.bot.sender = TestOccupant("@alice", self.bot.bot.query_room(room))


_SEND = ErrBot.send_message  # every backend's send_message calls it (the test one too)


def _recorded(backend, msg):
    """Every Message a backend sends, from its start, kept on the backend itself."""
    backend.__dict__.setdefault("sent_by_test", []).append(msg)
    _SEND(backend, msg)


def webserved(tmp_path, raw: dict, monkeypatch) -> Ferry:
    """Errbot on Ferry's plugins, ``raw`` as its settings, on storage that survives a restart, its
    Webserver on a free 127.0.0.1 port; what it sends is recorded from its start, so what a restart
    says at once (resumed or lost work) is in ``early`` although Errbot's test ``start`` drops it."""
    settings = tmp_path / "ferry.yaml"
    YAML().dump(raw, settings)
    bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
        "GITOPS_CONFIG": str(settings), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
        "STORAGE": "FerryShelf", "BOT_EXTRA_STORAGE_PLUGINS_DIR": STORAGE_PLUGINS,
        "BOT_DATA_DIR": str(tmp_path / "errbot"), "CORE_PLUGINS": ("ACLs", "Plugins", "Utils", "Webserver"),
    })
    monkeypatch.setattr(ErrBot, "send_message", _recorded)
    bot.start(timeout=10)
    one_reply_at_a_time(bot)  # see devtools/serial_replies.py
    sent = bot.bot.__dict__.setdefault("sent_by_test", [])
    ready = next(i for i, m in enumerate(sent) if m.body == "ready")
    early = [bot.bot.md.convert(m.body) for m in sent[:ready]]
    port = free_port()
    bot.push_message("!plugin config Webserver {'HOST': '127.0.0.1', 'PORT': %d, 'SSL': None}" % port)
    while (said := bot.pop_message(timeout=10)) != "Plugin configuration done.":
        early.append(said)
    ferry = Ferry(bot, port, sent, early)
    answering(ferry.url("qa"))  # 405: up, and POST only
    return ferry


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def start(tmp_path, fleet_url, monkeypatch):
    """Start Ferry (again, on the same storage after a ``stop``) with its webserver on a free port."""
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", TOKENS["qa"])
    token_file = tmp_path / "prod-token"
    token_file.write_text(TOKENS["prod"] + "\n")
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_PROD_FILE", str(token_file))
    running = []

    def start_ferry(timeout_minutes: float = 10) -> Ferry:
        raw = demo_settings(fleet_url)
        raw["environments"][1]["notify"] = "#deploys-qa"
        raw["environments"][3]["notify"] = "#deploys-prod"  # prod: approvals on, as by default
        raw.update(data_dir=str(tmp_path / "gitops"), flux={"timeout_minutes": timeout_minutes})
        ferry = webserved(tmp_path, raw, monkeypatch)
        running.append(ferry.bot)
        return ferry

    def stop(ferry: Ferry):
        running.remove(ferry.bot)
        ferry.bot.stop()

    start_ferry.stop = stop
    yield start_ferry
    for bot in running:
        bot.stop()


def versions_row(ferry: Ferry, app: str) -> str:
    text = ferry.say("!versions")[0]
    return next(line for line in text.splitlines() if line.startswith(app + " "))


def test_a_deploy_in_a_channel_ends_with_live_in_its_thread(start):
    ferry = start()
    ferry.in_room()
    _, result = ferry.say("!deploy podinfo 6.5.3 to qa", replies=2, extras={
        "slack_event": {"ts": THREAD, "channel": "C0DEPLOYS", "text": "!deploy podinfo 6.5.3 to qa"}})
    assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
    # Flux upgrades, then runs the tests: the first outcome at the new version answers, once.
    progress = ferry.post("qa", flux_event(reason="Progressing", version="6.5.3"))
    assert progress.status_code == 200 and "nothing to do" in progress.text
    ferry.quiet()
    answer = ferry.post("qa", flux_event(reason="UpgradeSucceeded", version="6.5.3"))
    assert answer.status_code == 200, answer.text
    text = ferry.next()
    assert text.startswith("podinfo 6.5.3 is live in qa: Flux reports UpgradeSucceeded, ")
    assert text.endswith("s after the push.")
    reply = ferry.sent[-1]
    assert isinstance(reply.to, Room) and str(reply.to) == "testroom"  # the channel, not a DM
    assert reply.parent.extras["slack_event"]["ts"] == THREAD  # in the command's thread
    ferry.post("qa", flux_event(reason="TestSucceeded", version="6.5.3"))
    ferry.quiet()  # settled: no second answer, and the same version live is no news for #deploys-qa
    assert "6.5.3* live " in versions_row(ferry, "podinfo")


def test_a_failure_is_answered_with_fluxs_message_and_its_rollback_told_to_the_channel(start):
    ferry = start()
    _, result = ferry.say("!deploy redis 19.0.0 to qa", replies=2)  # a DM: the answer is a DM too
    assert result.startswith("Deployed redis 18.1.0 → 19.0.0 in qa")
    failed = ferry.post("qa", flux_event("redis", "redis", reason="UpgradeFailed", version="19.0.0"))
    assert failed.status_code == 200
    text = ferry.next()
    assert text.startswith("redis 19.0.0 failed in qa: Flux reports UpgradeFailed, ")
    assert "Helm upgrade failed for release redis/redis with chart redis@19.0.0+0cc9a8446c95: " \
           "context deadline exceeded" in text
    assert str(ferry.sent[-1].to) == "@alice" and ferry.sent[-1].parent is None
    # Flux remediates: nobody waits for that any more, so qa's channel hears it.
    ferry.post("qa", flux_event("redis", "redis", reason="RollbackSucceeded", version="18.1.0"))
    notice = ferry.next()
    assert notice.startswith("qa: redis rolled back to 18.1.0 by Flux (RollbackSucceeded).")
    assert "Helm rollback to previous release redis/redis.v1 with chart redis@18.1.0" in notice
    assert str(ferry.sent[-1].to) == "#deploys-qa" and ferry.sent[-1].parent is None
    row = versions_row(ferry, "redis")
    assert row.split()[2:5] == ["19.0.0", "!18.1.0", "rolled-back"]
    detail = ferry.say("!versions redis")[0]
    assert "qa: Flux reports RollbackSucceeded: Helm rollback to previous release" in detail


def test_an_approved_change_is_answered_in_the_approvals_thread(start):
    ferry = start()
    ferry.in_room()
    asked = ferry.say("!deploy podinfo 6.5.1 to prod", extras={"slack_event": {"ts": THREAD}})[0]
    change_id = re.search(r"is change `?(\w+)`?", asked).group(1)
    ferry.bot.bot.sender = TestOccupant("@bob", ferry.bot.bot.query_room("testroom"))
    approved = ferry.say(f"!approve {change_id}", extras={"slack_event": {"ts": "1700000099.000200"}})[0]
    assert "6.5.0 → 6.5.1 in prod" in approved
    ferry.post("prod", flux_event(reason="UpgradeSucceeded", version="6.5.1"))
    assert ferry.next().startswith("podinfo 6.5.1 is live in prod: Flux reports UpgradeSucceeded")
    assert ferry.sent[-1].parent.extras["slack_event"]["ts"] == "1700000099.000200"


def test_no_word_from_flux_is_said_once_then_a_late_outcome_still_answers(start):
    ferry = start(timeout_minutes=0.02)  # 1.2 s
    ferry.in_room()
    ferry.say("!deploy podinfo 6.6.0 to qa", replies=2, extras={"slack_event": {"ts": THREAD}})
    started = time.monotonic()
    text = ferry.next(timeout=10)
    assert text.startswith("podinfo 6.6.0 in qa: no word from Flux within 1s of the push (commit ")
    assert time.monotonic() - started < 5
    assert ferry.sent[-1].parent.extras["slack_event"]["ts"] == THREAD
    ferry.quiet(wait=1.5)  # once
    ferry.post("qa", flux_event(reason="UpgradeSucceeded", version="6.6.0"))
    assert ferry.next().startswith("podinfo 6.6.0 is live in qa after all: Flux reports UpgradeSucceeded")


def test_bad_requests_are_refused_and_change_nothing(start, fleet_url):
    ferry = start()
    ferry.say("!deploy podinfo 6.5.3 to qa", replies=2)
    tip = remote_tip(fleet_url)
    good = encode(flux_event(reason="UpgradeSucceeded", version="6.5.3"))
    accepted = encode(flux_event(reason="Progressing"))
    assert ferry.post("qa", body=accepted).status_code == 200
    headers = signed(good, TOKENS["qa"])
    refused = {
        "unsigned": ferry.post("qa", body=good, headers={"Content-Type": "application/json"}),
        "wrong token": ferry.post("qa", body=good, token="not-the-token"),
        "other environment's token": ferry.post("qa", body=good, token=TOKENS["prod"]),
        "changed body": ferry.post("qa", body=good.replace(b"6.5.3", b"6.6.0"), headers=headers),
        "replayed": ferry.post("qa", body=accepted),
        "stale": ferry.post("qa", flux_event(reason="UpgradeSucceeded", version="6.5.3",
                                             timestamp="2024-05-07T05:02:34Z")),
        "malformed": ferry.post("qa", body=b'{"involvedObject": ', headers=signed(b'{"involvedObject": ',
                                                                                   TOKENS["qa"])),
        "oversized": ferry.post("qa", body=b" " * (MAX_BODY + 1), headers=signed(b" " * (MAX_BODY + 1),
                                                                                   TOKENS["qa"])),
        "no token for dev": ferry.post("dev", body=good, headers=headers),
        "unknown environment": ferry.post("moon", body=good, headers=headers),
    }
    codes = {name: r.status_code for name, r in refused.items()}
    assert codes == {"unsigned": 401, "wrong token": 403, "other environment's token": 403,
                     "changed body": 403, "replayed": 409, "stale": 400, "malformed": 400,
                     "oversized": 413, "no token for dev": 403, "unknown environment": 404}
    assert "X-Signature" in refused["unsigned"].text and "replay" in refused["replayed"].text
    assert "qa" not in refused["unknown environment"].text  # no names for an unauthenticated caller
    ferry.quiet()
    assert "live" not in versions_row(ferry, "podinfo")  # nothing recorded
    assert remote_tip(fleet_url) == tip
    # The change still waits: the real event settles it.
    assert ferry.post("qa", body=good, headers=headers).status_code == 200
    assert ferry.next().startswith("podinfo 6.5.3 is live in qa")


def test_events_for_unknown_apps_and_other_kinds_are_ignored_with_a_log_line(start, caplog):
    caplog.set_level("INFO", logger="gitops.feedback.waits")
    ferry = start()
    response = ferry.post("prod", flux_event("nginx", "ingress", reason="UpgradeFailed"))
    assert response.status_code == 200 and "HelmRelease ingress/nginx is not an app in prod" in response.text
    assert any("ingress/nginx" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)
    response = ferry.post("prod", flux_event("flux-system", "flux-system", kind="Kustomization",
                                             reason="ReconciliationSucceeded"))
    assert response.status_code == 200 and "Kustomization" in response.text
    assert any("Kustomization flux-system/flux-system" in r.getMessage() for r in caplog.records)
    ferry.quiet()
    assert "!" not in versions_row(ferry, "podinfo")


def test_live_state_and_drift_in_versions_survive_a_restart(start):
    ferry = start()
    ferry.post("qa", flux_event("redis", "redis", reason="UpgradeSucceeded", version="18.1.0"))  # as pinned
    assert ferry.next().startswith("qa: redis 18.1.0 is live (Flux reports UpgradeSucceeded).")
    ferry.post("prod", flux_event("podinfo", "podinfo", reason="UpgradeSucceeded", version="6.4.0"))  # drift
    notice = ferry.next()  # nobody waits for prod's podinfo: its channel hears it
    assert notice.startswith("prod: podinfo 6.4.0 is live (Flux reports UpgradeSucceeded).")
    assert "with chart podinfo@6.4.0+0cc9a8446c95" in notice and str(ferry.sent[-1].to) == "#deploys-prod"
    ferry.post("prod", flux_event("podinfo", "podinfo", reason="UpgradeSucceeded", version="6.4.0",
                                  message="Helm upgrade succeeded (a second event, the same news)"))
    ferry.quiet()  # the same news again: not repeated
    overview = ferry.say("!versions")[0]
    rows = {line.split()[0]: line for line in overview.splitlines() if line.startswith(("podinfo ", "redis "))}
    assert "18.1.0* live " in rows["redis"]
    assert "6.5.0* ≠6.4.0 live " in rows["podinfo"]
    assert "another version runs (drift)" in overview
    one = ferry.say("!versions podinfo")[0]
    assert "≠6.4.0 live" in one
    assert any(line.split()[:3] == ["env", "version", "live"] for line in one.splitlines())  # a column
    start.stop(ferry)

    again = start()
    overview = again.say("!versions")[0]
    assert "6.5.0* ≠6.4.0 live " in overview and "18.1.0* live " in overview


def test_a_change_waiting_for_flux_survives_a_restart(start):
    ferry = start()
    ferry.in_room()
    ferry.say("!deploy podinfo 6.5.3 to qa", replies=2, extras={"slack_event": {"ts": THREAD}})
    start.stop(ferry)

    again = start()
    assert again.post("qa", flux_event(reason="InstallSucceeded", version="6.5.3")).status_code == 200
    assert again.next().startswith("podinfo 6.5.3 is live in qa: Flux reports InstallSucceeded")
    reply = again.sent[-1]
    assert isinstance(reply.to, Room) and str(reply.to) == "testroom"
    assert reply.parent.extras["slack_event"]["ts"] == THREAD
