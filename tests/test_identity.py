"""Names that cannot drift, through a real Errbot against a real bare remote and a real registry:
locks, waiting changes and rolled-back records follow the release (environment, namespace/name,
part), not the app's display name, which turns into ``namespace/name`` everywhere as soon as any
environment gains a second release of that name; decisions are said by chat user ID."""
import time

import pytest
from errbot.backends.base import Message
from errbot.backends.test import TestPerson

from devtools.fluxrepo import demo_files
from tests import image_fleet
from tests.fixtures_git import git, remote_path, remote_tip
from tests.test_guard import Chat, plain

# A second HelmRelease called redis, in another namespace, lands in dev: from then on every
# environment calls its redis `redis/redis` (dev has `cache/redis` too).
SECOND_REDIS = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: redis
  namespace: cache
spec:
  interval: 30m
  chart:
    spec:
      chart: redis
      version: 18.0.0
      sourceRef:
        kind: HelmRepository
        name: charts
        namespace: redis
"""


FETCH_INTERVAL = 5.1  # GitOps's fetch_interval in the bot is 5 s


@pytest.fixture
def fleet(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def second_redis(url, external_commit) -> str:
    kustomization = git("--git-dir", str(remote_path(url)), "show", "main:apps/dev/kustomization.yaml")
    sha = external_commit(url, {
        "apps/dev/redis-cache.yaml": SECOND_REDIS,
        "apps/dev/kustomization.yaml": kustomization.replace("  - redis.yaml\n",
                                                             "  - redis.yaml\n  - redis-cache.yaml\n"),
    }, "a second redis, for the cache")
    time.sleep(FETCH_INTERVAL)  # the bot reads the remote again once its last fetch is this old
    return sha


def said_as(chat, user: str, fullname: str, text: str) -> str:
    """A DM from ``user`` whose display name is ``fullname`` (anyone may take any display name)."""
    backend = chat.bot.bot
    msg = Message(text)
    msg.frm, msg.to = TestPerson(user, fullname=fullname), backend.bot_identifier
    backend.callback_message(msg)
    return chat._collect(1)


def test_a_lock_keeps_holding_when_a_second_release_of_that_name_appears(tmp_path, fleet, external_commit):
    chat = Chat(tmp_path, fleet, policy={})
    try:
        assert plain(chat.dm("@alice", "!lock qa redis incident 7")).startswith("Locked redis in qa: incident 7.")
        second_redis(fleet, external_commit)
        before = remote_tip(fleet)
        refused = plain(chat.dm("@bob", "!deploy redis/redis 19.0.0 to qa"))
        assert refused.startswith("redis/redis in qa is locked by @alice since") and "incident 7" in refused
        assert remote_tip(fleet) == before  # the refused change left the remote as it was
        listed = chat.dm("@alice", "!locks")
        assert "qa/redis/redis" in listed and "incident 7" in listed
        assert plain(chat.dm("@alice", "!unlock qa redis/redis")).startswith(
            "Unlocked redis/redis in qa (locked by @alice since")
        done = plain(chat.dm("@bob", "!deploy redis/redis 19.0.0 to qa", replies=2)[-1])
        assert done.startswith("Deployed redis/redis 18.1.0 → 19.0.0 in qa: commit"), done
    finally:
        chat.stop()


def test_a_waiting_change_is_approved_on_its_release_after_the_name_changed(tmp_path, fleet, external_commit):
    chat = Chat(tmp_path, fleet, policy={"prod": {"approval": {"approvers": ["@bob"]}}})
    try:
        asked = plain(chat.dm("@alice", "!deploy redis 18.1.0 to prod"))
        change_id = asked.split("is change ")[1].split(",")[0]
        theirs = second_redis(fleet, external_commit)
        assert change_id in chat.dm("@bob", "!pending")
        done = plain(chat.dm("@bob", f"!approve {change_id}"))
        assert done.startswith("Deployed redis/redis 18.0.0 → 18.1.0 in prod: commit"), done
        assert git("--git-dir", str(remote_path(fleet)), "rev-parse", "main^") == theirs
        assert "version: 18.1.0" in git("--git-dir", str(remote_path(fleet)), "show", "main:apps/prod/redis.yaml")
    finally:
        chat.stop()


def test_decisions_are_said_by_user_id_never_by_a_display_name(tmp_path, fleet):
    chat = Chat(tmp_path, fleet, policy={"prod": {"approval": {"approvers": ["@bob", "@carol"]}}})
    try:
        said_as(chat, "@alice", "Ada Admin", "!lock qa podinfo incident 9")
        refused = plain(said_as(chat, "@bob", "Bob", "!deploy podinfo 6.5.3 to qa"))
        assert "locked by @alice since" in refused and "Ada Admin" not in refused
        assert "@alice" in chat.dm("@alice", "!locks") and "Ada Admin" not in chat.said[-1]
        asked = plain(said_as(chat, "@dave", "Dave", "!deploy redis 18.1.0 to prod"))
        change_id = asked.split("is change ")[1].split(",")[0]
        assert "Deployed redis" in said_as(chat, "@bob", "Ada Admin", f"!approve {change_id}")
        # Someone else calling themselves "Ada Admin" reads who really decided: an ID, not a name.
        again = plain(said_as(chat, "@carol", "Ada Admin", f"!approve {change_id}"))
        assert again == f"Change {change_id} was already approved by @bob."
    finally:
        chat.stop()


@pytest.fixture
def image_fleet_url(registry, charts, images, bare_remote):
    return bare_remote(image_fleet.files(registry.host, registry.url))


def test_rolling_back_the_image_keeps_the_charts_rolled_back_guard(tmp_path, image_fleet_url):
    chat = Chat(tmp_path, image_fleet_url, policy={}, settings=image_fleet.settings(image_fleet_url))
    try:
        assert "6.5.1 → 6.5.2 in dev" in chat.dm("@alice", "!deploy web chart 6.5.2 to dev", replies=2)[-1]
        assert "1.1.0 → 1.2.0 in dev" in chat.dm("@alice", "!deploy web image 1.2.0 to dev", replies=2)[-1]
        assert "6.5.2 → 6.5.1 in dev" in chat.dm("@alice", "!rollback web chart on dev", replies=2)[-1]
        assert "1.2.0 → 1.1.0 in dev" in chat.dm("@alice", "!rollback web image on dev", replies=2)[-1]
        before = remote_tip(image_fleet_url)
        refused = plain(chat.dm("@bob", "!deploy web chart 6.5.2 to dev"))
        assert refused.startswith("web 6.5.2 was rolled back from dev by @alice"), refused
        assert "add --force to bring it back on purpose" in refused
        refused = plain(chat.dm("@bob", "!deploy web image 1.2.0 to dev"))
        assert refused.startswith("web 1.2.0 was rolled back from dev by @alice"), refused
        assert remote_tip(image_fleet_url) == before
    finally:
        chat.stop()
