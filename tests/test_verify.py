"""Verification after Flux reports a change live, end to end: a real Errbot (test backend) on the
real plugins folder with its Webserver, Flux events as notification-controller posts them, a real
bare remote and registry, and a real Prometheus (Debian's) scraping an exporter the test controls,
so that a check's query turns bad during the soak. A restart is a restart (storage on disk)."""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from errbot.backends.base import Room
from errbot.backends.test import TestBot as ErrbotTestBot
from ruamel.yaml import YAML

from devtools.fluxrepo import demo_files, demo_settings
from devtools.serial_replies import one_reply_at_a_time
from tests.ferrybot import STORAGE_PLUGINS
from tests.fixtures_git import git, remote_log, remote_path, remote_tip
from tests.flux_events import encode, flux_event, signed
from tests.serving import answering
from tests.test_flux import PLUGINS, THREAD, TOKENS, Ferry, free_port

GOOD = "ferry_test_errors < 1"  # holds while the test's app gives no 5xx


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def start(tmp_path, fleet_url, prometheus, monkeypatch):
    """Start Ferry (again, on the same storage after a ``stop``) with qa verified by ``prometheus``."""
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", TOKENS["qa"])
    running = []

    def start_ferry(on_failure="rollback", soak="3s", promote_after=None, verify=True) -> Ferry:
        raw = demo_settings(fleet_url)
        qa = raw["environments"][1]
        qa["notify"] = "#deploys-qa"
        if verify:
            qa["verify"] = {"interval": "0.3s", "checks": [
                {"prometheus": prometheus.url, "query": GOOD, "for": soak}]}
            qa["on_failure"] = on_failure
        if promote_after:
            qa["promote_after"] = promote_after
        raw.update(data_dir=str(tmp_path / "gitops"))
        settings = tmp_path / "ferry.yaml"
        YAML().dump(raw, settings)
        bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
            "GITOPS_CONFIG": str(settings), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
            "STORAGE": "FerryShelf", "BOT_EXTRA_STORAGE_PLUGINS_DIR": STORAGE_PLUGINS,
            "BOT_DATA_DIR": str(tmp_path / "errbot"),
            "CORE_PLUGINS": ("ACLs", "Plugins", "Utils", "Webserver"),
        })
        bot.start(timeout=10)
        one_reply_at_a_time(bot)
        running.append(bot)
        sent = []
        backend_send = bot.bot.send_message

        def record(msg):
            sent.append(msg)
            backend_send(msg)

        bot.bot.send_message = record
        port = free_port()
        bot.push_message("!plugin config Webserver {'HOST': '127.0.0.1', 'PORT': %d, 'SSL': None}" % port)
        early = []  # what the bot said at its start (a restart's resumed verifications), in order
        while (said := bot.pop_message(timeout=10)) != "Plugin configuration done.":
            early.append(said)
        ferry = Ferry(bot, port, sent)
        ferry.early = early
        answering(ferry.url("qa"))
        return ferry

    def stop(ferry: Ferry):
        running.remove(ferry.bot)
        ferry.bot.stop()

    start_ferry.stop = stop
    yield start_ferry
    for bot in running:
        bot.stop()


def deployed_live(ferry: Ferry, version="6.5.3") -> None:
    """Deploy podinfo to qa from a channel's thread, and Flux reports it live."""
    ferry.in_room()
    _, result = ferry.say(f"!deploy podinfo {version} to qa", replies=2, extras={
        "slack_event": {"ts": THREAD, "channel": "C0DEPLOYS"}})
    assert result.startswith(f"Deployed podinfo 6.5.2 → {version} in qa"), result
    assert ferry.post("qa", flux_event(reason="UpgradeSucceeded", version=version)).status_code == 200
    assert ferry.next().startswith(f"podinfo {version} is live in qa: Flux reports UpgradeSucceeded")


def last_message(url: str) -> str:
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%B", "refs/heads/main")


def in_thread(ferry: Ferry, text: str) -> None:
    reply = next(m for m in ferry.sent if m.body.replace("`", "") == text)  # sent as markdown
    assert isinstance(reply.to, Room) and str(reply.to) == "testroom"
    assert reply.parent.extras["slack_event"]["ts"] == THREAD


def test_a_verified_deploy_hears_verified_with_its_figures(start, fleet_url, prometheus):
    ferry = start()
    deployed_live(ferry)
    verifying = ferry.next()
    assert verifying == f"podinfo 6.5.3 in qa: verifying, {GOOD} must hold for 3s."
    verified = ferry.next(timeout=20)
    assert re.fullmatch(rf"podinfo 6\.5\.3 is verified in qa: {GOOD} = 0, held for [3-9]s\.", verified), verified
    in_thread(ferry, verified)
    tip = remote_tip(fleet_url)
    ferry.quiet(wait=1.0)  # said once
    assert remote_tip(fleet_url) == tip  # verified: nothing written
    detail = ferry.say("!versions podinfo")[0]
    assert "qa: 6.5.3 verified" in detail, detail


def test_a_failed_verification_is_rolled_back_as_one_commit_with_its_trailers(start, fleet_url,
                                                                              prometheus, exporter):
    ferry = start(soak="60s")
    deployed_live(ferry)
    deploy_commit = remote_tip(fleet_url)
    assert ferry.next().startswith("podinfo 6.5.3 in qa: verifying")
    exporter.errors.set(7)  # the new version gives 5xx: the query stops holding
    failed = ferry.next(timeout=30)
    assert failed == (f"podinfo 6.5.3 failed its verification in qa: {GOOD} on {prometheus.url} "
                      "does not hold: it returned no sample")
    in_thread(ferry, failed)
    rolled = ferry.next(timeout=30)
    assert rolled.startswith("podinfo 6.5.3 rolled back to 6.5.2 in qa by Ferry on behalf of @alice (commit ")
    assert rolled.endswith("its verification failed. 6.5.3 cannot come back without --force.")
    in_thread(ferry, rolled)
    assert ferry.next() == rolled and str(ferry.sent[-1].to) == "#deploys-qa"  # and qa's channel
    log = remote_log(fleet_url)
    assert log[1] == deploy_commit and len(log) == 3  # seed, deploy, one rollback commit
    message = last_message(fleet_url)
    assert message.startswith("rollback podinfo 6.5.3 → 6.5.2 to qa\n")
    assert f"Rollback-Of: {deploy_commit}" in message
    assert f"Verification: failed: `{GOOD}` on {prometheus.url} does not hold" in message
    assert "Requested-by: @alice <@alice>" in message
    # The version is marked: it cannot come back without --force.
    refused = ferry.say("!deploy podinfo 6.5.3 to qa")[0]
    assert "6.5.3 was rolled back from qa by @alice" in refused and "--force" in refused
    assert remote_tip(fleet_url) == log[0]


def test_on_failure_notify_only_says_so(start, fleet_url, exporter):
    ferry = start(on_failure="notify", soak="60s")
    deployed_live(ferry)
    tip = remote_tip(fleet_url)
    assert ferry.next().startswith("podinfo 6.5.3 in qa: verifying")
    exporter.errors.set(3)
    failed = ferry.next(timeout=30)
    assert failed.startswith("podinfo 6.5.3 failed its verification in qa: ")
    ferry.quiet(wait=1.5)  # no rollback
    assert remote_tip(fleet_url) == tip
    assert "qa: 6.5.3 failed" in ferry.say("!versions podinfo")[0]


def test_a_promotion_is_refused_during_the_soak_and_allowed_after(start, fleet_url):
    ferry = start(soak="1s", promote_after="5s")
    deployed_live(ferry)
    assert ferry.next().startswith("podinfo 6.5.3 in qa: verifying")
    early = ferry.say("!promote podinfo to stag")[0]
    assert "podinfo 6.5.3 is not verified in qa yet" in early and "An admin may add --force" in early, early
    assert ferry.next(timeout=20).startswith("podinfo 6.5.3 is verified in qa")
    soaking = ferry.say("!promote podinfo to stag")[0]
    assert re.search(r"podinfo 6\.5\.3 has soaked in qa for \d+s of 5s: \d+s remain", soaking), soaking
    assert re.search(r"Soaking: podinfo 6\.5\.3 in qa, \ds before it may be promoted\.", ferry.say("!versions")[0])
    assert re.search(r"qa: 6\.5\.3 verified \ds ago \(ferry_test_errors < 1 = 0\); soaking: \ds before it may be "
                     "promoted", ferry.say("!versions podinfo")[0])
    tip = remote_tip(fleet_url)
    assert remote_tip(fleet_url) == tip
    time.sleep(5)
    _, promoted = ferry.say("!promote podinfo to stag", replies=2)
    assert "6.5.1 → 6.5.3" in promoted and "stag" in promoted, promoted
    assert len(remote_log(fleet_url)) == 3


def test_an_admin_may_force_a_promotion_during_the_soak_recorded_in_the_commit(start, fleet_url):
    ferry = start(soak="60s", promote_after="30m")
    deployed_live(ferry)
    ferry.next()
    _, promoted = ferry.say("!promote podinfo to stag --force", replies=2)
    assert "6.5.1 → 6.5.3" in promoted, promoted
    message = last_message(fleet_url)
    assert "Forced-by: @alice <@alice> past: `podinfo` 6.5.3 is not verified in qa yet" in message


def test_a_restart_during_the_soak_resumes_it_in_its_thread(start, fleet_url, exporter):
    ferry = start(soak="60s")
    deployed_live(ferry)
    assert ferry.next().startswith("podinfo 6.5.3 in qa: verifying")
    start.stop(ferry)

    again = start(soak="60s")
    resumed = again.early.pop(0) if again.early else again.next(timeout=20)
    assert resumed == ("podinfo 6.5.3 in qa: Ferry restarted during its verification; the soak "
                       "begins again now.")
    in_thread(again, resumed)
    exporter.errors.set(9)  # and it still acts: a failure after the restart is rolled back
    assert again.next(timeout=30).startswith("podinfo 6.5.3 failed its verification in qa")
    assert again.next(timeout=30).startswith("podinfo 6.5.3 rolled back to 6.5.2 in qa")


def test_a_verification_the_settings_no_longer_name_is_lost_and_said_so(start, fleet_url):
    ferry = start(soak="60s")
    deployed_live(ferry)
    ferry.next()
    start.stop(ferry)
    again = start(verify=False)
    lost = again.early.pop(0) if again.early else again.next(timeout=20)
    assert lost == ("podinfo 6.5.3 in qa: its verification was lost at a restart: the environment's "
                    "settings no longer say how to verify it.")
    in_thread(again, lost)


def test_the_real_errbot_process_killed_during_a_soak_resumes_it(tmp_path, fleet_url, prometheus):
    """SIGKILL the real errbot process (Text backend, Ferry's own webserver) while a deploy soaks:
    the restarted process says so and verifies it."""
    raw = demo_settings(fleet_url)
    raw["environments"][1].update(verify={"interval": "0.3s", "checks": [
        {"prometheus": prometheus.url, "query": GOOD, "for": "4s"}]}, on_failure="rollback")
    settings = tmp_path / "ferry.yaml"
    YAML().dump({**raw, "data_dir": str(tmp_path / "gitops")}, settings)
    (tmp_path / "errbot").mkdir()
    root = Path(PLUGINS).parent
    port = free_port()
    env = {**os.environ, "FERRY_BACKEND": "Text", "GITOPS_CONFIG": str(settings),
           "FERRY_ADMINS": "@demo", "FERRY_DATA_DIR": str(tmp_path / "errbot"),
           "FERRY_LOG_FILE": str(tmp_path / "ferry.log"), "PYTHONUNBUFFERED": "1",
           "FERRY_WEBSERVER_PORT": str(port), "FERRY_WEBSERVER_HOST": "127.0.0.1",
           "GITOPS_FLUX_TOKEN_QA": TOKENS["qa"]}

    def start():
        proc = subprocess.Popen([str(Path(sys.executable).parent / "errbot"), "--config",
                                 str(root / "config.py")], cwd=root, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        return proc, lines

    def hear(lines, pattern, timeout=60):
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                line = re.sub(r"\x1b\[[0-9;]*m", "", lines.get(timeout=1))
            except queue.Empty:
                continue
            seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no {pattern!r} from the bot within {timeout} s: {''.join(seen)[-2000:]}")

    def say(proc, text):
        proc.stdin.write(text + "\n")
        proc.stdin.flush()

    def post(event):
        body = encode(event)
        answering(f"http://127.0.0.1:{port}/flux/qa")
        return requests.post(f"http://127.0.0.1:{port}/flux/qa", data=body, headers=signed(body, TOKENS["qa"]),
                             timeout=10)

    proc, lines = start()
    try:
        say(proc, "!deploy podinfo 6.5.3 to qa")
        hear(lines, r"Deployed podinfo 6\.5\.2 → 6\.5\.3 in qa")
        assert post(flux_event(reason="UpgradeSucceeded", version="6.5.3")).status_code == 200
        hear(lines, r"podinfo.? 6\.5\.3 in qa: verifying")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    proc, lines = start()
    try:
        hear(lines, r"podinfo.? 6\.5\.3 in qa: Ferry restarted during its verification; the soak begins again now\.")
        hear(lines, r"podinfo.? 6\.5\.3 is verified in qa: .*ferry_test_errors < 1.? = 0, held for [4-9]s\.")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(remote_log(fleet_url)) == 2  # the deploy only: verified, nothing rolled back


def test_a_newer_change_ends_the_verification_it_supersedes(start, fleet_url, exporter):
    ferry = start(soak="60s")
    deployed_live(ferry)
    assert ferry.next().startswith("podinfo 6.5.3 in qa: verifying")
    ferry.say("!deploy podinfo 6.6.0 to qa", replies=3, extras={"slack_event": {"ts": "1700000200.000300"}})
    ended = next(m for m in ferry.sent if "verification ended" in m.body)
    assert ended.body.replace("`", "") == "podinfo 6.5.3 in qa: its verification ended: 6.6.0 was pushed before it ended."
    assert ended.parent.extras["slack_event"]["ts"] == THREAD  # in the superseded change's thread
    tip = remote_tip(fleet_url)
    exporter.errors.set(5)  # nothing is verifying now: nothing fails, nothing is rolled back
    ferry.quiet(wait=3)
    assert remote_tip(fleet_url) == tip
