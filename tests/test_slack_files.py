"""Answers that fit, on Slack for real: the ``errbot`` process with Ferry's SlackV3 backend against
the local Slack (``tests.slack_server``, whose file methods follow Slack's upload flow), a real bare
Git remote holding a large fleet and the real chart registry.

A `!versions` too long for one message is a one-line summary in the command's thread and the whole
table as a text file in that same thread (``files.getUploadURLExternal``, the POST of the bytes,
``files.completeUploadExternal`` with ``channel_id`` and ``thread_ts``); a short one is a message as
before and uploads nothing; without the ``files:write`` scope the summary is followed by Slack's
refusal and the start of the table. Every wait is bounded."""
import json
import urllib.error
import urllib.request

import pytest

from devtools.fluxrepo import fleet_apps, fleet_files
from tests.slack_server import FakeSlack
from tests.test_slack import ALICE, CHANNEL, DEPLOYS, GRANTED, USERS, _tail, running_ferry, thread

APPS = fleet_apps(200, ["podinfo", "redis", "cert-manager"])
RELEASES = {"podinfo": ("6.5.3", "6.6.0"), "redis": ("18.1.0", "19.0.0"),
            "cert-manager": ("v1.14.0", "v1.15.0")}  # (older, newest) of each chart in the registry


def pinned(app_index: int, chart: str, env: str) -> str:
    """dev and qa at the newest release; stag one behind for every other app; prod behind for
    every fourth: 100 apps are behind the registry."""
    older, newest = RELEASES[chart]
    if env == "stag" and app_index % 2:
        return older
    if env == "prod" and app_index % 4 == 1:
        return older
    return newest


PINS = {(name, env): pinned(i, chart, env) for i, (name, _, chart) in enumerate(APPS)
        for env in ("dev", "qa", "stag", "prod")}


@pytest.fixture
def large_fleet(registry, charts, bare_remote):
    return bare_remote(fleet_files(f"{registry.url}/charts", APPS, PINS))


def start_slack(scopes=GRANTED):
    return FakeSlack(users=dict(USERS), channels={CHANNEL: DEPLOYS}, scopes=scopes).start()


def expected_row(name: str) -> list:
    chart = next(c for n, _, c in APPS if n == name)
    newest = RELEASES[chart][1]
    return [name, *(v + ("*" if v != newest else "") for v in
                    (PINS[(name, e)] for e in ("dev", "qa", "stag", "prod"))), newest]


def test_a_large_table_is_a_summary_and_a_file_in_the_thread(tmp_path, large_fleet):
    slack = start_slack()
    try:
        with running_ferry(tmp_path, slack, large_fleet) as log:
            ts = slack.say(ALICE, CHANNEL, "!versions")
            (summary,) = thread(slack, CHANNEL, ts, 1, timeout=60)
            assert summary == "200 apps across 4 environments, 100 behind the registry, " \
                              "100 behind the previous environment: full table attached.", summary
            (upload,) = slack.wait_for(lambda: slack.shared(CHANNEL, ts), 30,
                                       f"the table shared in the thread\n{_tail(log)}")
            assert (upload.filename, upload.title, upload.snippet_type) == \
                ("versions.txt", "Versions: 200 apps", "text")
            content = upload.content.decode("utf-8")
            lines = content.splitlines()
            assert lines[0] == "200 apps across dev, qa, stag, prod:"
            assert lines[1].split() == ["app", "dev", "qa", "stag", "prod", "newest"]
            rows = {line.split()[0]: line.split() for line in lines if line.startswith("app-")}
            assert len(rows) == 200 and all(rows[n] == expected_row(n) for n, _, _ in APPS)
            assert "```" not in content and "`*` newer in the registry" in content
            # the upload flow as Slack documents it: the URL, then the bytes, then the share
            methods = [c.method for c in slack.calls if c.method.startswith("files.")]
            assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]
            asked = next(c.args for c in slack.calls if c.method == "files.getUploadURLExternal")
            assert int(asked["length"]) == len(upload.content) and asked["filename"] == "versions.txt"

            # narrowed by a filter it fits: a message as before, in the thread, and no file
            ts = slack.say(ALICE, CHANNEL, "!versions app-000* --outdated --env prod")
            (table,) = thread(slack, CHANNEL, ts, 1)
            assert table.startswith("3 outdated apps matching `app-000*` across prod:\n```\napp "), table
            shown = [line.split() for line in table.splitlines() if line.startswith("app-")]
            assert shown == [["app-0001", "18.1.0*", "19.0.0"], ["app-0005", "v1.14.0*", "v1.15.0"],
                             ["app-0009", "6.5.3*", "6.6.0"]]
            assert slack.shared(CHANNEL, ts) == []

            # by DM: the file goes to the DM (no thread there)
            dm = slack.dm_channel(ALICE)
            slack.say(ALICE, dm, "!versions")
            slack.wait_for(lambda: slack.shared(dm), 60, "the table shared in the DM")
            assert slack.shared(dm)[0].thread_ts == ""
            assert "Traceback" not in log.read_text(), _tail(log)
    finally:
        slack.stop()


def test_without_files_write_the_refusal_is_said_with_the_start_of_the_table(tmp_path, large_fleet):
    slack = start_slack(",".join(s for s in GRANTED.split(",") if s != "files:write"))
    try:
        with running_ferry(tmp_path, slack, large_fleet) as log:
            ts = slack.say(ALICE, CHANNEL, "!versions")
            summary, refusal = thread(slack, CHANNEL, ts, 2, timeout=60)
            assert summary.endswith("full table attached.")
            assert refusal.startswith(
                "The table could not be attached (Slack answered `missing_scope`: the Slack app lacks "
                "the `files:write` scope: add it to the app and reinstall it); its start:\n"
                "200 apps across dev, qa, stag, prod:\n```\napp "), refusal
            assert len(refusal) < 4096  # one Slack post
            assert "more apps" in refusal
            assert slack.uploads == []
            assert "Traceback" not in log.read_text(), _tail(log)
    finally:
        slack.stop()


def test_the_local_slack_takes_a_multipart_upload_as_curl_sends_it():
    """The other body Slack's upload URL accepts (``curl -F filename=@table.txt``), and the
    documented refusals: an unknown file, bytes other than the length announced."""
    slack = start_slack()
    try:
        def call(method, **args):
            request = urllib.request.Request(slack.url + method, data=json.dumps(args).encode(), headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {slack.bot_token}"})
            return json.loads(urllib.request.urlopen(request, timeout=10).read())

        def post(url, body, kind):
            request = urllib.request.Request(url, data=body, headers={"Content-Type": kind})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        got = call("files.getUploadURLExternal", filename="table.txt", length=6)
        assert got["ok"] and got["file_id"].startswith("F")
        assert post(got["upload_url"], b"abc", "text/plain")[0] == 400  # not the length announced
        form = (b"--XyZ\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"table.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\nrow 1\n\r\n--XyZ--\r\n")
        assert post(got["upload_url"], form, "multipart/form-data; boundary=XyZ") == (200, "OK - 6")
        assert call("files.completeUploadExternal", files=[{"id": "F404"}])["error"] == "file_not_found"
        done = call("files.completeUploadExternal", files=[{"id": got["file_id"], "title": "T"}],
                    channel_id=CHANNEL, thread_ts="1.000001")
        assert done["ok"] and done["files"][0]["title"] == "T"
        (upload,) = slack.shared(CHANNEL, "1.000001")
        assert (upload.filename, upload.content) == ("table.txt", b"row 1\n")
        assert call("files.getUploadURLExternal", filename="x.txt", length=0)["error"] == "missing_argument"
    finally:
        slack.stop()
