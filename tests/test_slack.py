"""Ferry on Slack for real: the ``errbot`` process with config.py and Ferry's SlackV3 backend
(FerrySlack), started as a subprocess against a local Slack (``tests.slack_server``: the Web API and
Socket Mode on 127.0.0.1), a real bare Git remote and a real chart registry.

A conversation: ``!versions`` in a channel; a deploy by an allowed user (the commit carries the
Slack profile's name and email, replies go in the command's thread, ⏳ then ✅ on the command); the
same by someone the environment's policy does not allow, and a command Errbot's ACLs refuse; an
admin command by DM and in a channel. Every wait is bounded: the test fails when nothing comes."""
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from slackv3.markdown import slack_markdown_converter

from devtools.fluxrepo import demo_files, demo_settings
from gitops.feedback.events import sign
from tests import mrkdwn
from tests.backends import backend_module
from tests.fixtures_git import install_hook, remote_file, remote_log, remote_path
from tests.races import all_at_once
from tests.slack_server import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
CHANNEL, DEPLOYS = "C0GENERAL", "general"
ALICE, MALLORY, ADA = "U0ALICE", "U0MALLORY", "U0ADA"
USERS = {
    ALICE: {"name": "alice", "real_name": "Alice Liddell", "email": "alice@example.test"},
    MALLORY: {"name": "mallory", "real_name": "Mallory Outsider", "email": "mallory@example.test"},
    ADA: {"name": "ada", "real_name": "Ada Admin", "email": "ada@example.test"},
}


MANIFEST = YAML(typ="safe").load((ROOT / "slack-app-manifest.yaml").read_text())
GRANTED = ",".join(MANIFEST["oauth_config"]["scopes"]["bot"])  # what the local Slack enforces
CI_BOT, WORKFLOW = "B0CIBOT", "B0WORKFLOW"


@pytest.fixture
def slack():
    server = FakeSlack(users=dict(USERS), channels={CHANNEL: DEPLOYS}, scopes=GRANTED,
                       bots={CI_BOT: "ci", WORKFLOW: "Release workflow"}).start()
    yield server
    server.stop()


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def ferry(tmp_path, slack, fleet_url):
    """The real errbot process on Slack in Socket Mode; yields its log file."""
    with running_ferry(tmp_path, slack, fleet_url) as log:
        yield log


@contextlib.contextmanager
def running_ferry(tmp_path, slack, fleet_url, socket_mode=True, tune=None, **extra):
    """Start errbot with config.py as a newcomer would, with the environment the README names;
    stop it afterwards. ``tune(environments)`` may change the settings' environments (by name)."""
    settings = demo_settings(fleet_url)
    for env in settings["environments"]:
        if env["name"] == "qa":
            env["policy"] = {"deploy": [ALICE, ADA]}
    if tune is not None:
        tune({env["name"]: env for env in settings["environments"]})
    settings["data_dir"] = str(tmp_path / "gitops")
    YAML().dump(settings, tmp_path / "ferry.yaml")
    (tmp_path / "errbot").mkdir()
    log = tmp_path / "ferry.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FERRY_", "GITOPS_"))}
    env.update({
        "SLACK_BOT_TOKEN": slack.bot_token, "FERRY_SLACK_API_URL": slack.url,
        "GITOPS_CONFIG": str(tmp_path / "ferry.yaml"),
        "FERRY_ADMINS": ADA, "FERRY_DATA_DIR": str(tmp_path / "errbot"), "FERRY_LOG_FILE": str(log),
        "FERRY_ACCESS_CONTROLS": json.dumps({"FerryRollback:*": {"allowusers": [ALICE]}}),
        "FERRY_WEBSERVER_PORT": str(free_port()), "FERRY_WEBSERVER_HOST": "127.0.0.1",
        "FERRY_LOG_LEVEL": os.environ.get("FERRY_TEST_LOG_LEVEL", "INFO"), **extra,
    })
    if socket_mode:
        env["SLACK_APP_TOKEN"] = slack.app_token
    errbot = Path(sys.executable).parent / "errbot"
    with open(tmp_path / "errbot.out", "wb") as out:
        process = subprocess.Popen([str(errbot), "--config", str(ROOT / "config.py")], cwd=tmp_path,
                                   env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    slack.log, slack.webserver = log, env["FERRY_WEBSERVER_PORT"]
    try:
        ready(process, slack, log, socket_mode)
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(process, slack, log, socket_mode=True, timeout=60):
    """Socket Mode connected (if used) and every plugin active, or fail with the bot's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = (log.parent / "errbot.out").read_text(errors="replace")
            pytest.fail(f"errbot exited with {process.returncode}:\n{out[-3000:]}\n{_tail(log)}")
        text = log.read_text(errors="replace") if log.exists() else ""
        if (slack.connected.is_set() or not socket_mode) and "Flux feedback on /flux/<env>" in text \
                and "Plugin activation done." in text:
            return
        time.sleep(0.1)
    pytest.fail(f"errbot did not connect to the local Slack in {timeout} s:\n{_tail(log)}")


def _tail(log, size=4000):
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"


def thread(slack, channel, ts, count, timeout=30):
    """The ``count`` messages the bot posted in the thread of ``ts``; fails if fewer come."""
    try:
        return [m["text"] for m in slack.wait_posted(count, timeout, channel=channel, thread_ts=ts)]
    except AssertionError as e:
        raise AssertionError(f"{e}; posted: {slack.posted()}\n{_tail(slack.log)}") from None


def plain(text):
    return text.replace("`", "")


def test_a_conversation_on_slack(slack, ferry, fleet_url):
    base = len(remote_log(fleet_url))
    log = ferry

    # !versions in a channel: the table in a code block, in the thread of the command
    ts = slack.say(ALICE, CHANNEL, "!versions")
    (table,) = thread(slack, CHANNEL, ts, 1)
    assert table.startswith("3 apps across dev, qa, stag, prod:\n```\napp ")  # fixed width in Slack
    assert table.count("```") == 2
    row = next(line for line in table.splitlines() if line.startswith("podinfo"))
    assert row.split() == ["podinfo", "6.5.3*", "6.5.2*", "6.5.1*", "6.5.0*", "6.6.0"]

    # an allowed user deploys: intent and result in the thread; the commit is hers, from Slack
    ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to qa")
    intent, result = thread(slack, CHANNEL, ts, 2)
    assert "Deploying `podinfo` 6.5.2 → 6.5.3 in qa" in intent  # Slack inline code for names
    intent, result = plain(intent), plain(result)
    assert "Deploying podinfo 6.5.2 → 6.5.3 in qa" in intent
    assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa: commit ")
    commits = remote_log(fleet_url, fmt="%H|%an|%ae|%s")
    assert len(commits) == base + 1
    sha, name, email, subject = commits[0].split("|")
    assert (name, email, subject) == ("Alice Liddell", "alice@example.test",
                                      "deploy podinfo 6.5.2 → 6.5.3 to qa")
    assert sha[:10] in result
    body = remote_log(fleet_url, fmt="%B")
    assert any("Requested-by: Alice Liddell <U0ALICE>" in line for line in body), body[:12]
    assert 'version: "6.5.3"' in remote_file(fleet_url, "apps/qa/podinfo-values.yaml")
    slack.wait_for(lambda: ("reactions.add", "white_check_mark") in slack.reactions(CHANNEL, ts), 10,
                   "the ✅ reaction on the deploy")
    assert slack.reactions(CHANNEL, ts) == [("reactions.add", "hourglass_flowing_sand"),
                                            ("reactions.remove", "hourglass_flowing_sand"),
                                            ("reactions.add", "white_check_mark")]

    # a push the remote refuses: said in the thread, ⏳ then ❌, nothing changed
    install_hook(fleet_url, "pre-receive", "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    ts = slack.say(ALICE, CHANNEL, "!deploy redis 19.0.0 to qa")
    intent, failure = thread(slack, CHANNEL, ts, 2)
    assert "Deploying `redis` 18.1.0 → 19.0.0 in qa" in intent and "Deployed" not in failure
    assert "protected branch" in failure, failure
    assert slack.reactions(CHANNEL, ts) == [("reactions.add", "hourglass_flowing_sand"),
                                            ("reactions.remove", "hourglass_flowing_sand"),
                                            ("reactions.add", "x")]
    assert len(remote_log(fleet_url)) == base + 1
    (remote_path(fleet_url) / "hooks" / "pre-receive").unlink()

    # the same by someone qa's policy does not name: refused in the thread, nothing pushed
    ts = slack.say(MALLORY, CHANNEL, "!deploy podinfo 6.5.1 to qa")
    (refused,) = thread(slack, CHANNEL, ts, 1)
    assert plain(refused) == "You may not deploy to qa: ask U0ALICE, U0ADA."
    # and a command Errbot's ACLs keep from her (FERRY_ACCESS_CONTROLS matches Slack user IDs)
    ts = slack.say(MALLORY, CHANNEL, "!rollback podinfo on qa")
    (denied,) = thread(slack, CHANNEL, ts, 1)
    assert "not allowed" in denied.lower()
    assert len(remote_log(fleet_url)) == base + 1
    assert slack.reactions(CHANNEL, ts) == []

    # an admin command in a channel is refused; by DM it runs
    ts = slack.say(ADA, CHANNEL, "!lock dev incident 42")
    (channel_refusal,) = thread(slack, CHANNEL, ts, 1)
    assert channel_refusal == "You're not allowed to access this command from a chatroom"
    dm = slack.dm_channel(ADA)
    slack.say(ADA, dm, "!lock dev incident 42")
    (locked,) = [m["text"] for m in slack.wait_posted(1, 30, channel=dm)]
    assert plain(locked).startswith("Locked dev: incident 42.")
    assert all("thread_ts" not in m for m in slack.posted(channel=dm))  # a DM is answered flat
    slack.say(ADA, dm, "!locks")
    locks = [m["text"] for m in slack.wait_posted(2, 30, channel=dm)][1]
    assert locks.startswith("```\nwhat  by") and "dev   U0ADA  " in locks and "incident 42" in locks

    # the lock holds for everyone else
    ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to dev")
    (held,) = thread(slack, CHANNEL, ts, 1)
    assert "locked" in held.lower() and len(remote_log(fleet_url)) == base + 1

    # the health check the Dockerfile runs: Errbot's Webserver, opened by FERRY_WEBSERVER_PORT
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{slack.webserver}/ferry/health", timeout=5) as r:
                assert (r.status, r.read()) == (200, b"ok")
                break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no health check answer:\n{_tail(log)}") from None
            time.sleep(0.2)

    # the app manifest grants every Web API method the bot called (and the test proves they are used)
    manifest = YAML(typ="safe").load((ROOT / "slack-app-manifest.yaml").read_text())
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    called = {c.method for c in slack.calls}
    needs = {"chat.postMessage": {"chat:write"}, "reactions.add": {"reactions:write"},
             "reactions.remove": {"reactions:write"}, "users.info": {"users:read", "users:read.email"},
             "team.info": {"team:read"}, "conversations.info": {"channels:read", "im:read"},
             "auth.test": set(), "apps.connections.open": set()}  # the app token's connections:write
    assert called <= needs.keys(), called - needs.keys()
    assert set().union(*(needs[m] for m in called)) <= granted

    # every call went to the local Slack with the right tokens; one log line per command
    assert not [c for c in slack.calls if c.method != "apps.connections.open" and c.token != slack.bot_token]
    text = log.read_text()
    assert "U0ALICE ran !deploy podinfo 6.5.3 to qa -> ok (" in text
    assert "U0MALLORY ran !deploy podinfo 6.5.1 to qa -> refused: You may not deploy to qa" in text
    assert "Traceback" not in text, _tail(log)


def health(port, timeout=20) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ferry/health", timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("no answer from the webserver") from None
            time.sleep(0.2)


def signed_event(secret, event, event_id=None, stamp=None):
    """Slack's Events API request for ``event``: (body, headers), signed with the signing secret."""
    body = json.dumps({"token": "verification", "team_id": "T0FERRY", "api_app_id": "A0FERRY",
                       "event": event, "type": "event_callback",
                       "event_id": event_id or "Ev" + event["ts"].replace(".", ""),
                       "event_time": int(time.time())}).encode()
    stamp = stamp or str(int(time.time()))
    mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": f"v0={mac}"}


def post(port, body, headers, path="/slack/events"):
    """POST to Errbot's webserver; (status, body)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_event(port, secret, event, signature=None):
    body, headers = signed_event(secret, event)
    if signature:
        headers["X-Slack-Signature"] = signature
    return post(port, body, headers)[0]


def test_the_events_api_with_a_signing_secret(tmp_path, slack, fleet_url):
    """Without an app token: Slack posts signed events to /slack/events on Errbot's webserver.
    Each event runs once: Slack's retries and replays of a signed request run nothing."""
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    base = len(remote_log(fleet_url))
    with running_ferry(tmp_path, slack, fleet_url, socket_mode=False, SLACK_SIGNING_SECRET=secret) as log:
        assert health(slack.webserver) == b"ok"
        ts = slack.next_ts()
        event = {"type": "message", "channel": CHANNEL, "user": ALICE, "text": "!versions", "ts": ts,
                 "channel_type": "channel"}
        assert post_event(slack.webserver, secret, event) == 200
        (table,) = thread(slack, CHANNEL, ts, 1)
        assert table.startswith("3 apps across dev, qa, stag, prod:\n```\napp ")
        # a request not signed with the secret is refused and nothing is said
        forged = dict(event, ts=slack.next_ts(), text="!deploy podinfo 6.5.3 to qa")
        assert post_event(slack.webserver, secret, forged, signature="v0=" + "0" * 64) == 403
        time.sleep(1)
        assert len(slack.posted()) == 1
        assert not [c for c in slack.calls if c.method == "apps.connections.open"]
        assert "Slack Events API request refused: Invalid request signature" in log.read_text()

        # a deploy: Slack's retry (new timestamp and signature, same event_id) and a replay of the
        # very request run nothing: one commit, one set of replies
        ts = slack.next_ts()
        deploy = {"type": "message", "channel": CHANNEL, "user": ALICE, "ts": ts, "channel_type": "channel",
                  "text": "!deploy podinfo 6.6.0 to dev"}
        body, headers = signed_event(secret, deploy)
        assert post(slack.webserver, body, headers)[0] == 200
        intent, result = thread(slack, CHANNEL, ts, 2)
        assert plain(result).startswith("Deployed podinfo 6.5.3 → 6.6.0 in dev: commit ")
        retry_body, retry = signed_event(secret, deploy, stamp=str(int(time.time()) + 1))
        retry["X-Slack-Retry-Num"], retry["X-Slack-Retry-Reason"] = "1", "http_timeout"
        assert post(slack.webserver, retry_body, retry)[0] == 200
        assert post(slack.webserver, body, headers)[0] == 200  # the same request, again
        time.sleep(2)
        assert len(slack.posted(channel=CHANNEL, thread_ts=ts)) == 2
        assert len(remote_log(fleet_url)) == base + 1
        assert log.read_text().count("already handled: this retry or replay runs nothing") == 2

        # malformed requests are the sender's fault (4xx), not a server error
        for stamp in ("soon", "1e9", "-5", "9" * 5000, ""):
            body, headers = signed_event(secret, dict(event, ts=slack.next_ts()))
            headers["X-Slack-Request-Timestamp"] = stamp
            status, answer = post(slack.webserver, body, headers)
            assert status == 400, (stamp[:10], status, answer[:200])
            assert b"X-Slack-Request-Timestamp" in answer
        stamp = str(int(time.time()))
        for bad in (b"{not json", b"[1, 2]", b'{"event": {"text": "no type"}}'):
            mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + bad, hashlib.sha256).hexdigest()
            status, _ = post(slack.webserver, bad, {"Content-Type": "application/json",
                                                    "X-Slack-Request-Timestamp": stamp,
                                                    "X-Slack-Signature": f"v0={mac}"})
            assert status == 400, (bad, status)
        time.sleep(1)
        assert len(remote_log(fleet_url)) == base + 1
        assert "Traceback" not in log.read_text(), _tail(log)


def test_code_blocks_stay_code_blocks_in_slack():
    """SlackV3's converter drops code fences; FerrySlack keeps them, escaped as Slack wants."""
    ferryslack = backend_module("ferryslack")
    KeepCodeBlocks, web_client_class = ferryslack.KeepCodeBlocks, ferryslack.web_client_class
    text = ("podinfo in qa: **now 6.5.3**.\n```\nversion  who\n6.5.3    Alice <U0ALICE> & co\n```\n"
            "See [the commit](https://git.example.com/c/1).")
    convert = KeepCodeBlocks(slack_markdown_converter()).convert
    assert convert(text) == (
        "podinfo in qa: *now 6.5.3*.\n```\nversion  who\n6.5.3    Alice &lt;U0ALICE&gt; &amp; co\n```\n"
        "See the commit (https://git.example.com/c/1).")  # no masked link: where it goes shows
    # outside code blocks too, Slack markup anyone wrote is shown as written, never acted on
    assert convert("Locked dev: <!channel> <@U0ALICE> <https://evil|label> a & b &amp; c. "
                   "Usage: `!lock <env> [<app>]`\n> not a quote") == (
        "Locked dev: &lt;!channel&gt; &lt;@U0ALICE&gt; &lt;https://evil|label&gt; a &amp; b &amp;amp; c. "
        "Usage: `!lock &lt;env&gt; [&lt;app&gt;]`\n&gt; not a quote")
    # paragraphs keep their blank line (the converter alone joins them with "\n ")
    assert convert("```\na\n```\n… and 160 more apps.\n\nLegend: `*` a range.\n  \nEnd") == (
        "```\na\n```\n… and 160 more apps.\n\nLegend: `*` a range.\n\nEnd")
    client = web_client_class("http://127.0.0.1:9/api/")(token="xoxb-x")
    assert client.base_url == "http://127.0.0.1:9/api/"
    assert web_client_class("http://127.0.0.1:9/api/")(token="x", base_url="https://a/").base_url == "https://a/"


def test_replies_converted_at_once_keep_their_own_text():
    """Errbot's pool threads reply at once, and SlackV3 converts each reply with its one Markdown
    converter, which keeps the text it converts on itself: each reply must come out with its own
    text (before the lock, one came out with another command's text, empty, or raised)."""
    convert = backend_module("ferryslack").KeepCodeBlocks(slack_markdown_converter()).convert
    texts = [f"Deployed `app-{i:04d}` **6.5.{i}** to dev (commit `{i:07x}`).\n\nSee <#C{i}>."
             for i in range(8)]
    expected = [convert(t) for t in texts]
    wrong = []

    def reply(i):
        out = convert(texts[i])
        if out != expected[i]:
            wrong.append((i, out))

    errors = all_at_once(reply, range(len(texts)), times=200)
    assert not errors and not wrong, (errors[:3], wrong[:3])


def test_config_reads_the_slack_settings_from_the_environment():
    code = "import json, config; print(json.dumps([config.BACKEND, config.BOT_IDENTITY]))"

    def load(**env):
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    backend, identity = load(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1",
                             FERRY_SLACK_API_URL="https://slack-gov.com/api/")
    assert backend == "FerrySlack"
    assert identity == {"token": "xoxb-1", "app_token": "xapp-1", "signing_secret": "",
                        "base_url": "https://slack-gov.com/api/"}
    assert load()[1]["base_url"] == "https://slack.com/api/"
    assert load(FERRY_BACKEND="SlackV3")[0] == "FerrySlack"
    assert load(FERRY_BACKEND="Text")[0] == "FerryText"  # backends/ferrytext: the console


def allow_ci_bot_in_dev(envs):
    envs["dev"]["policy"] = {"bots": {"deploy": [CI_BOT]}}


def test_only_people_change_things(tmp_path, slack, fleet_url):
    """Messages from bots and integrations (a Workflow Builder post, an incoming webhook, an app)
    change nothing, unless the environment's policy names the bot for that action: then the
    commit says a bot asked."""
    with running_ferry(tmp_path, slack, fleet_url, tune=allow_ci_bot_in_dev) as log:
        base = len(remote_log(fleet_url))
        ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to prod")
        (waiting,) = thread(slack, CHANNEL, ts, 1)
        assert "prod needs a second person" in waiting, waiting
        change_id = waiting.split("is change `", 1)[1].split("`", 1)[0]

        # a workflow posting `!approve` (Workflow Builder and incoming webhooks: bot_message), with
        # a person's name as its display name; and an app's own bot user posting it
        attempts = [("", dict(subtype="bot_message", bot_id=WORKFLOW, username="Ada Admin")),
                    ("", dict(subtype="bot_message", username="webhook")),  # no bot ID at all
                    ("U0CIBOT", dict(bot_id=CI_BOT, bot_profile={"id": CI_BOT, "name": "ci"}))]
        slack.users["U0CIBOT"] = {"name": "ci", "real_name": "ci", "email": ""}  # the app's bot user
        for user, fields in attempts:
            ts = slack.say(user, CHANNEL, f"!approve {change_id}", **fields)
            (refused,) = thread(slack, CHANNEL, ts, 1)
            assert plain(refused).startswith("Only people approve in prod: "), refused
            assert "not named in its policy (policy.bots.approve)" in plain(refused)
        ts = slack.say("", CHANNEL, f"!reject {change_id} bots say no", subtype="bot_message", bot_id=WORKFLOW)
        (refused,) = thread(slack, CHANNEL, ts, 1)
        assert plain(refused).startswith("Only people approve in prod: the bot B0WORKFLOW"), refused
        assert len(remote_log(fleet_url)) == base
        ts = slack.say("", CHANNEL, "!deploy podinfo 6.5.1 to qa", subtype="bot_message", bot_id=CI_BOT)
        (refused,) = thread(slack, CHANNEL, ts, 1)
        assert plain(refused) == ("Only people deploy in qa: the bot B0CIBOT is not named in its policy "
                                  "(policy.bots.deploy).")
        assert len(remote_log(fleet_url)) == base

        # the change still waits, and a person approves it
        ts = slack.say(ADA, CHANNEL, f"!approve {change_id}")
        (approved,) = thread(slack, CHANNEL, ts, 1)
        assert plain(approved).startswith("Deployed podinfo 6.5.0 → 6.5.3 in prod"), approved
        assert len(remote_log(fleet_url)) == base + 1

        # the CI bot dev's policy names deploys there; the commit says a bot asked
        ts = slack.say("", CHANNEL, "!deploy podinfo 6.6.0 to dev", subtype="bot_message", bot_id=CI_BOT,
                       username="ci")
        intent, result = thread(slack, CHANNEL, ts, 2)
        assert plain(result).startswith("Deployed podinfo 6.5.3 → 6.6.0 in dev: commit "), result
        assert len(remote_log(fleet_url)) == base + 2
        body = remote_log(fleet_url, fmt="%B")
        assert "Requested-by: ci <B0CIBOT>" in body and "Bot: ci <B0CIBOT>" in body, body[:12]
        assert 'version: "6.6.0"' in remote_file(fleet_url, "apps/dev/podinfo-values.yaml")
        text = log.read_text()
        assert "Traceback" not in text, _tail(log)


def refused_for(text, command=""):
    # Errbot's Webserver plugin stays inactive until an admin configures it (Ferry serves its
    # webhooks itself, plugins/ferryweb): its commands do not exist for anyone then.
    inactive = command.split()[0] in ("!webhook", "!webstatus") and \
        text == f"Command `{command.split()[0]}` not found. `!help` lists what you may run."
    return inactive or text in ("You're not allowed to access this command from this user",
                                "This command requires bot-admin privileges")


def test_errbot_core_commands_and_routes_are_for_admins(slack, ferry):
    """Non-admins get `!help` and Ferry's commands; Errbot's commands that reveal or post things
    are for admins; "did you mean" suggests only what the asker may run; the webserver serves
    only Ferry's routes."""
    core = ["!whoami <@U0ALICE>", "!echo <!channel> hello", "!render test **x**", "!webhook test /echo x",
            "!room list", "!room create #x", "!status", "!status plugins", "!webstatus", "!flows list",
            "!flows start x", "!about", "!history", "!uptime", "!log tail", "!plugin info Ferry",
            "!repos", "!restart", "!backup"]
    for command in core:
        ts = slack.say(MALLORY, CHANNEL, command)
        (answer,) = thread(slack, CHANNEL, ts, 1)
        assert refused_for(answer, command), (command, answer)
    assert not [m for m in slack.posted() if "alice@example.test" in m["text"] or "hello" in m["text"]]

    ts = slack.say(MALLORY, CHANNEL, "!help")
    (listing,) = thread(slack, CHANNEL, ts, 1)
    assert "deploy" in listing and "versions" in listing
    for hidden in ("whoami", "echo", "render", "webstatus", "flows", "room", "status", "lock"):
        assert hidden not in listing, (hidden, listing)

    ts = slack.say(MALLORY, CHANNEL, "!whoam")
    (unknown,) = thread(slack, CHANNEL, ts, 1)
    assert plain(unknown) == "Command !whoam not found. !help lists what you may run.", unknown
    ts = slack.say(MALLORY, CHANNEL, "!deplo podinfo 6.5.3 to dev")
    (unknown,) = thread(slack, CHANNEL, ts, 1)
    assert "Did you mean `!deploy`?" in unknown and "whoami" not in unknown, unknown

    # an admin, by DM, has them all
    dm = slack.dm_channel(ADA)
    slack.say(ADA, dm, "!whoam")
    (suggested,) = [m["text"] for m in slack.wait_posted(1, 30, channel=dm)]
    assert "`!whoami`" in suggested, suggested
    slack.say(ADA, dm, "!whoami")
    whoami = [m["text"] for m in slack.wait_posted(2, 30, channel=dm)][1]
    assert "U0ADA" in whoami, whoami

    # the webserver: Ferry's routes only; Errbot's /echo is gone
    assert health(slack.webserver) == b"ok"
    for method in ("GET", "POST"):
        request = urllib.request.Request(f"http://127.0.0.1:{slack.webserver}/echo", method=method,
                                         data=b"<script>alert(1)</script>" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404 and b"script" not in refused.value.read()
    status, _ = post(slack.webserver, b"{}", {"Content-Type": "application/json"}, path="/flux/dev")
    assert status not in (404, 500)  # Ferry's route answers (unsigned: refused)
    assert "Traceback" not in ferry.read_text(), _tail(ferry)


def notify_dev_in_general(envs):
    envs["dev"]["notify"] = "#" + DEPLOYS  # by name: looked up with conversations.list


def test_what_reaches_slack_is_what_was_meant(tmp_path, slack, fleet_url):
    """Text people or Flux wrote is shown, never acted on: `<!channel>`, `<@U…>` and links in lock
    and reject reasons, Flux's messages and Ferry's own usage lines are escaped as Slack wants;
    posts never ask Slack to link names; a `#name` notify channel is found with the manifest's
    scopes (the local Slack refuses conversations.list types the app was not granted)."""
    token = "flux-dev-token-3f9a"
    with running_ferry(tmp_path, slack, fleet_url, tune=notify_dev_in_general,
                       GITOPS_FLUX_TOKEN_DEV=token) as log:
        dm = slack.dm_channel(ADA)
        slack.say(ADA, dm, "!lock dev <!channel> see <https://evil.example|the runbook> &lt;!here&gt; "
                           "&amp; <@U0MALLORY>")
        (locked,) = [m["text"] for m in slack.wait_posted(1, 30, channel=dm)]
        assert locked.startswith("Locked dev: &lt;!channel&gt; see the runbook &lt;!here&gt; &amp; "), locked
        slack.say(ADA, dm, "!unlock dev")
        slack.wait_posted(2, 30, channel=dm)

        ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to prod")
        (waiting,) = thread(slack, CHANNEL, ts, 1)
        change_id = waiting.split("is change `", 1)[1].split("`", 1)[0]
        ts = slack.say(ADA, CHANNEL, f"!reject {change_id} <!everyone> not now <https://evil.example|click>")
        (rejected,) = thread(slack, CHANNEL, ts, 1)
        assert rejected.endswith(": &lt;!everyone&gt; not now click."), rejected

        ts = slack.say(ALICE, CHANNEL, "!deploy")
        (usage,) = thread(slack, CHANNEL, ts, 1)
        assert "`!deploy &lt;app&gt; &lt;version&gt; to &lt;env&gt;`" in usage, usage
        ts = slack.say(MALLORY, CHANNEL, "!help deploy")
        (helped,) = thread(slack, CHANNEL, ts, 1)
        assert "!deploy &lt;app&gt; &lt;version&gt; to &lt;env&gt;" in helped, helped

        # Flux's own words, in the environment's notify channel, given by name
        body = json.dumps({  # as notification-controller posts a HelmRelease event (generic-hmac)
            "involvedObject": {"kind": "HelmRelease", "name": "podinfo", "namespace": "podinfo"},
            "metadata": {"helm.toolkit.fluxcd.io/revision": "6.5.3+0cc9a8446c95"},
            "severity": "error", "reason": "UpgradeFailed", "reportingController": "helm-controller",
            "message": "<!channel> upgrade failed: see <https://evil.example|logs> & retry",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        status, answer = post(slack.webserver, body, {"Content-Type": "application/json",
                                                      "X-Signature": sign(body, token)}, path="/flux/dev")
        assert status == 200, answer
        (notice,) = slack.wait_for(
            lambda: [m["text"] for m in slack.posted(channel=CHANNEL) if "thread_ts" not in m], 30,
            "Flux's notice in #general (found by name)")
        assert notice.startswith("dev: `podinfo` 6.5.3 failed (Flux reports UpgradeFailed)."), notice
        assert "&lt;!channel&gt; upgrade failed: see &lt;https://evil.example|logs&gt; &amp; retry" in notice

        posts = slack.posted()
        for m in posts:  # nothing Ferry posts is Slack markup: every < and > is escaped
            assert mrkdwn.problems(m["text"], {ALICE, ADA}) == [], m["text"]
            assert m.get("link_names") in (False, "false", "0", None), m
        lists = [c for c in slack.calls if c.method == "conversations.list"]
        assert lists and all(not c.args.get("error") for c in lists)
        assert {c.args.get("types") for c in lists} == {"public_channel,private_channel"}
        assert "Traceback" not in log.read_text(), _tail(log)


def test_slack_events_are_remembered_as_long_as_a_signature_on_them_holds():
    ferryslack = backend_module("ferryslack")
    EventMemory, bot_of = ferryslack.EventMemory, ferryslack.bot_of
    now = [1000.0]
    memory = EventMemory(limit=3, clock=lambda: now[0])
    assert memory.first("Ev1") and not memory.first("Ev1") and memory.first(None)
    now[0] += 599
    assert not memory.first("Ev1")  # a request signed 5 minutes ahead, replayed 5 minutes late
    now[0] += 2
    assert memory.first("Ev1")
    for event_id in ("Ev2", "Ev3", "Ev4"):
        assert memory.first(event_id)
    assert memory.first("Ev1")  # bounded: the oldest made room
    # who posted: a person, or a bot by its ID whatever name it shows
    assert bot_of({"type": "message", "user": "U0ALICE", "text": "!versions"}) is None
    assert bot_of({"subtype": "bot_message", "bot_id": "B0W", "username": "Ada"}) == {"id": "B0W", "name": "Ada"}
    assert bot_of({"subtype": "bot_message"}) == {"id": "", "name": ""}
    assert bot_of({"user": "U0APP", "bot_profile": {"id": "B0APP", "name": "ci"}}) == {"id": "B0APP", "name": "ci"}
    assert bot_of({"subtype": "message_changed", "message": {"bot_id": "B0X", "text": "!approve 1"}})["id"] == "B0X"


def test_a_long_reply_is_posted_in_parts_none_overwritten(slack, ferry):
    """A reply longer than Slack's part size arrives as several messages, none updated in place:
    Errbot's parts share one extras dict, where SlackV3 keeps the ``ts`` it posts to update."""
    dm = slack.dm_channel(ADA)
    words = " ".join(f"word{i:04d}" for i in range(700))  # ~6,300 characters: two parts
    slack.say(ADA, dm, f"!echo {words}")
    parts = [m["text"] for m in slack.wait_posted(2, 30, channel=dm)]
    assert not [c for c in slack.calls if c.method == "chat.update"]
    assert "word0000" in parts[0] and "word0699" in parts[-1], parts
    assert "".join(parts).split() == words.split()  # cut at the part size, nothing lost
