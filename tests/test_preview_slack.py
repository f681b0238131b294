"""The full preview as a file where the backend attaches files (issue 23, item 2), on Slack for
real: the ``errbot`` process with Ferry's SlackV3 backend against the local Slack
(``tests.slack_server``: Slack's upload flow), a real bare remote (the demo fleet) and the real
registry. A dry run of a major upgrade says the short preview in its reply and puts the whole
preview as a text file in the command's thread; a quiet upgrade uploads nothing."""
import pytest

from devtools.fluxrepo import demo_files
from tests.fixtures_git import remote_tip
from tests.slack_server import FakeSlack
from tests.test_slack import ALICE, CHANNEL, DEPLOYS, GRANTED, USERS, _tail, plain, running_ferry, thread


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def test_a_dry_run_attaches_the_whole_preview(tmp_path, fleet_url):
    slack = FakeSlack(users=dict(USERS), channels={CHANNEL: DEPLOYS}, scopes=GRANTED).start()
    try:
        with running_ferry(tmp_path, slack, fleet_url) as log:
            before = remote_tip(fleet_url)
            ts = slack.say(ALICE, CHANNEL, "!deploy redis 19.0.0 to stag --dry-run")
            (reply,) = thread(slack, CHANNEL, ts, 1, timeout=60)
            assert plain(reply).endswith(
                "Preview: chart 18.0.0 → 19.0.0 (major version jump), app app-18.0.0 → app-19.0.0.\n"
                "The whole preview: !preview redis 19.0.0 in stag."), reply
            (upload,) = slack.wait_for(lambda: slack.shared(CHANNEL, ts), 30,
                                       f"the preview shared in the thread\n{_tail(log)}")
            assert (upload.filename, upload.title) == (
                "preview-redis-18.0.0-19.0.0.txt", "Preview of redis 18.0.0 → 19.0.0 in stag")
            content = upload.content.decode("utf-8")
            assert content.startswith("Preview of `redis` in stag: chart 18.0.0 → 19.0.0 (major version jump)")
            assert "Change notes: none" in content and "Default values (values.yaml): unchanged." in content
            assert remote_tip(fleet_url) == before

            ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to stag --dry-run")
            (reply,) = thread(slack, CHANNEL, ts, 1, timeout=60)
            assert "Preview" not in reply, reply
            assert slack.shared(CHANNEL, ts) == []
            assert "Traceback" not in log.read_text(), _tail(log)
    finally:
        slack.stop()
