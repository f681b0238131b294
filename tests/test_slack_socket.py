"""A bot that never goes deaf: the real errbot process on the local Slack's Socket Mode while the
connection misbehaves as Slack's do (closed without a word, half-open, apps.connections.open
refusing for a while, Slack's own `disconnect`, acknowledgements lost on the way). Each case: every
command sent during the fault is answered exactly once; none is lost, none doubled.

Waits are short because the bot is tuned through its documented environment (a ping every 0.3 s,
reconnection waits from 0.2 s up to 1 s); the defaults stay 5, 1 and 60 s."""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import generate_latest

from devtools.fluxrepo import demo_settings
from gitops.ops import metrics as m
from gitops.ops import readiness
from gitops.settings import parse_settings
from tests.backends import backend_module
from tests.fixtures_git import remote_log
from tests.slack_faults import Fault
from tests.races import all_at_once
from tests.test_slack import (ALICE, CHANNEL, ROOT, _tail, fleet_url, health, plain, post,  # noqa: F401 (fixtures)
                              running_ferry, signed_event, slack, thread)

QUICK = {"FERRY_SLACK_PING_INTERVAL": "0.3", "FERRY_SLACK_RECONNECT_FIRST_DELAY": "0.2",
         "FERRY_SLACK_RECONNECT_MAX_DELAY": "1"}
APPS = ("podinfo", "redis", "podinfo")


@pytest.fixture
def ferry(tmp_path, slack, fleet_url):
    with running_ferry(tmp_path, slack, fleet_url, **QUICK) as log:
        yield log


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def readiness_until(port, status: int, timeout: float = 30) -> str:
    """/ferry/ready's line once it answers ``status``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found, line = get(port, "/ferry/ready")
        if found == status:
            return line
        assert time.monotonic() < deadline, f"/ferry/ready still answers {found}: {line}"
        time.sleep(0.1)


def say_during_fault(slack) -> list:
    """Three commands typed while the bot cannot hear: their ts, in order."""
    return [slack.say(ALICE, CHANNEL, f"!versions {app}", wait_ack=False) for app in APPS]


def answered_once(slack, log, said, wait: float = 2.0):
    """Each command in ``said`` answered by exactly one reply about its app, once all were
    acknowledged and ``wait`` passed (anything run twice would have answered by then)."""
    slack.wait_acked([slack.envelope_of[ts] for ts in said], timeout=30)
    for ts in said:
        thread(slack, CHANNEL, ts, 1)
    time.sleep(wait)
    for ts, app in zip(said, APPS):
        replies = [m["text"] for m in slack.posted(channel=CHANNEL, thread_ts=ts)]
        assert len(replies) == 1 and app in replies[0], (app, replies, _tail(log))
    assert "Traceback" not in log.read_text(errors="replace"), _tail(log, 8000)


def test_a_connection_closed_without_a_word_is_opened_again(slack, ferry):
    first = slack.live_links()
    slack.drop_connection()
    said = say_during_fault(slack)
    answered_once(slack, ferry, said)
    assert slack.live_links() and slack.live_links() != first
    assert "without a close frame" in ferry.read_text()
    later = slack.say(ALICE, CHANNEL, "!versions redis")  # and it keeps hearing
    assert "redis" in thread(slack, CHANNEL, later, 1)[0]


def test_a_half_open_connection_is_found_dead_by_its_missing_pongs(slack, ferry):
    dead = slack.go_half_open()
    said = say_during_fault(slack)  # sent into the dead connection: never acknowledged there
    answered_once(slack, ferry, said)
    assert "no pong from Slack" in ferry.read_text()
    envelopes = {slack.envelope_of[ts] for ts in said}
    delivered = [(e, attempt, link) for e, attempt, link in slack.deliveries if e in envelopes]
    assert {e for e, _, link in delivered if link == dead} == envelopes  # first into the dead one
    assert {e for e, attempt, link in delivered if link != dead and attempt >= 1} == envelopes  # then again


def test_apps_connections_open_refusing_for_a_while(slack, ferry):
    port = slack.webserver
    readiness_until(port, 200)
    opened = sum(c.method == "apps.connections.open" for c in [*slack.calls, *slack.faulted])
    slack.outage("apps.connections.open", 6, Fault(200, error="internal_error"))
    slack.drop_connection()
    said = say_during_fault(slack)
    why = readiness_until(port, 503, timeout=5)
    assert why.startswith("Not ready: not connected to chat, reconnecting: ") and why.count("\n") == 1, why
    answered_once(slack, ferry, said)
    assert get(port, "/ferry/ready") == (200, "ready\n")
    refused = [c for c in slack.faulted if c.method == "apps.connections.open"]
    # attempts kept coming through the outage, with waits between them (1 s at most, jittered)
    assert 3 <= len(refused) <= 40, len(refused)
    assert sum(c.method == "apps.connections.open" for c in slack.calls) == opened + 1  # then one took
    assert "apps.connections.open failed: Slack answered internal_error" in ferry.read_text()
    metrics = get(port, "/metrics")[1]
    assert "ferry_chat_connected 1.0" in metrics
    assert "ferry_chat_reconnects_total 1.0" in metrics
    seconds = float(next(line.split()[1] for line in metrics.splitlines()
                         if line.startswith("ferry_chat_disconnected_seconds_total ")))
    assert 4 < seconds < 60, seconds


def test_a_first_connection_refused_for_a_while_is_made_when_slack_takes_it(tmp_path, slack, fleet_url):
    slack.fault("apps.connections.open", *[Fault(503)] * 6)  # past one call's 3 retries
    with running_ferry(tmp_path, slack, fleet_url, **QUICK) as log:
        ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
        assert "podinfo" in thread(slack, CHANNEL, ts, 1)[0]
        text = log.read_text(errors="replace")
    assert "apps.connections.open failed: Slack answered fatal_error (HTTP 503)" in text
    assert sum(c.method == "apps.connections.open" for c in slack.faulted) == 6
    assert "Traceback" not in text and "deactivating all the plugins" not in text


@pytest.mark.parametrize("reason", ["warning", "refresh_requested"])
def test_slacks_disconnect_moves_to_a_new_connection(slack, ferry, reason):
    old = slack.ask_to_reconnect(reason)
    said = say_during_fault(slack)
    answered_once(slack, ferry, said)
    slack.wait_for(lambda: old not in slack.live_links(), 15, "the old connection closed")
    assert slack.live_links() and all(link > old for link in slack.live_links())
    assert readiness_until(slack.webserver, 200) == "ready\n"


def test_an_envelope_acknowledged_runs_once_however_often_it_comes(slack, ferry, fleet_url):
    base = len(remote_log(fleet_url))
    slack.lose_acks(2)  # the bot acknowledges and runs it; Slack never hears the acknowledgement
    ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to dev", wait_ack=False)
    thread(slack, CHANNEL, ts, 2)
    envelope = slack.envelope_of[ts]
    assert slack.lost_acks == [envelope]
    slack.redeliver()  # Slack's retry on the same connection: its acknowledgement lost too
    slack.wait_for(lambda: len(slack.lost_acks) == 2, 10, "the retry acknowledged")
    slack.drop_connection()  # so Slack sends it once more, on the next connection
    slack.wait_acked([envelope])
    assert [attempt for e, attempt, _ in slack.deliveries if e == envelope] == [0, 1, 2]
    later = slack.say(ALICE, CHANNEL, "!versions redis")
    thread(slack, CHANNEL, later, 1)
    time.sleep(2)
    assert len(slack.posted(channel=CHANNEL, thread_ts=ts)) == 2  # intent and result, once
    assert len(remote_log(fleet_url)) == base + 1
    assert "was already acknowledged: runs nothing" in ferry.read_text()


# ---- the pure parts ------------------------------------------------------------------------

def test_waits_between_attempts_double_up_to_the_bound_with_jitter():
    socket_mode = backend_module("ferryslack", "ferryslack_socket")
    most = [socket_mode.reconnect_delay(n, 1, 60, rand=lambda: 1.0) for n in range(10)]
    assert most == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]  # the first retry of a loss is at once
    least = [socket_mode.reconnect_delay(n, 1, 60, rand=lambda: 0.0) for n in range(1, 10)]
    assert least == [d / 2 for d in most[1:]]  # jitter: between half and all of the step
    assert socket_mode.reconnect_delay(10_000, 1, 60) <= 60  # no overflow, still bounded


def test_socket_settings_come_from_the_bot_identity_with_sane_defaults():
    settings = backend_module("ferryslack", "ferryslack_socket").SocketSettings
    assert settings.from_identity({}) == settings(ping_interval=5.0, first_delay=1.0, max_delay=60.0)
    tuned = settings.from_identity({"socket_ping_interval": 0.3, "reconnect_first_delay": 5,
                                    "reconnect_max_delay": 2})
    assert tuned == settings(ping_interval=0.3, first_delay=2, max_delay=2)  # first never above max
    assert settings.from_identity({"socket_ping_interval": "x", "reconnect_max_delay": -1}) == settings()


def test_config_refuses_a_socket_setting_that_is_not_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FERRY_", "GITOPS_"))}
    for value in ("soon", "0", "-1", "7200"):
        found = subprocess.run([sys.executable, "-c", "import config"], cwd=ROOT, capture_output=True, text=True,
                               env={**env, "FERRY_SLACK_RECONNECT_MAX_DELAY": value}, timeout=60)
        assert found.returncode == 1, (value, found.stderr[-500:])
        last = found.stderr.strip().splitlines()[-1]
        assert last == (f"FERRY_SLACK_RECONNECT_MAX_DELAY must be a number of seconds above 0 and at most "
                        f"3600, not {value!r}."), last


def test_the_chat_link_counts_reconnects_and_seconds_without_a_connection(tmp_path):
    now = [100.0]
    link = readiness.ChatLink(clock=lambda: now[0])
    link.down("starting")  # before the first connection: nothing to count
    assert (link.connected, link.lost, link.reconnects, link.seconds_without()) == (False, "", 0, 0.0)
    assert readiness.verdict(True, link.connected, {}, link.lost) == (False, "Not ready: not connected to chat yet.")
    link.up()
    now[0] = 110.0
    link.down("Slack closed the Socket Mode connection (code 1006)\nsecond line")
    now[0] = 113.5
    assert link.seconds_without() == 3.5  # the outage so far
    assert readiness.verdict(True, link.connected, {}, link.lost) == (
        False, "Not ready: not connected to chat, reconnecting: Slack closed the Socket Mode connection (code 1006)")
    link.down("still nothing")  # told twice: one outage
    now[0] = 114.0
    link.up()
    link.up()
    assert (link.connected, link.lost, link.reconnects, link.seconds_without()) == (True, "", 1, 4.0)
    assert readiness.verdict(True, link.connected, {}, link.lost) == (True, "ready")

    metrics = m.Metrics(parse_settings({**demo_settings(str(tmp_path / "fleet.git")),
                                        "data_dir": str(tmp_path / "d")}, environ={}))
    metrics.watch_chat(link)
    link.down("gone")
    now[0] = 120.0
    text = generate_latest(metrics.registry).decode()
    assert "ferry_chat_connected 0.0" in text
    assert "ferry_chat_reconnects_total 1.0" in text
    assert "ferry_chat_disconnected_seconds_total 10.0" in text  # 4 s before, 6 s now


def test_the_events_api_runs_a_command_once_when_slack_retries_an_answer_it_lost(tmp_path, slack, fleet_url):
    """Without an app token: the first request's answer never reaches Slack (the connection is gone
    before it is read), so Slack retries (X-Slack-Retry-Num 1, then 2 while the first may still run):
    the deploy is committed once and answered once."""
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    base = len(remote_log(fleet_url))
    with running_ferry(tmp_path, slack, fleet_url, socket_mode=False, SLACK_SIGNING_SECRET=secret) as log:
        health(slack.webserver)
        ts = slack.next_ts()
        deploy = {"type": "message", "channel": CHANNEL, "user": ALICE, "ts": ts, "channel_type": "channel",
                  "text": "!deploy podinfo 6.6.0 to dev"}
        body, headers = signed_event(secret, deploy)
        with socket.create_connection(("127.0.0.1", int(slack.webserver)), timeout=10) as lost:
            head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": len(body),
                                                        "Host": "127.0.0.1", "Connection": "close"}.items())
            lost.sendall(f"POST /slack/events HTTP/1.1\r\n{head}\r\n".encode() + body)
        retries = []
        for number in ("1", "2"):
            retry_body, retry = signed_event(secret, deploy, stamp=str(int(time.time()) + int(number)))
            retry["X-Slack-Retry-Num"], retry["X-Slack-Retry-Reason"] = number, "http_timeout"
            retries.append((retry_body, retry))
        statuses = []
        errors = all_at_once(lambda r: statuses.append(post(slack.webserver, *r)[0]), retries, times=1)
        assert errors == [] and statuses == [200, 200], (errors, statuses)
        intent, result = thread(slack, CHANNEL, ts, 2)
        assert plain(result).startswith("Deployed podinfo 6.5.3 → 6.6.0 in dev: commit "), result
        time.sleep(2)
        assert len(slack.posted(channel=CHANNEL, thread_ts=ts)) == 2
        assert len(remote_log(fleet_url)) == base + 1
        assert log.read_text().count("already handled: this retry or replay runs nothing") == 2
