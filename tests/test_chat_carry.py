"""A running bot believes what a fresh one would: after a colleague's commit to any file discovery
reads, whatever its name, through a real Errbot, a real bare remote and the real registry. A
change that is not only versions is discovered again, so nothing writes a line other environments
read; a version rewritten in place is carried."""
import queue

import pytest

from tests.carry_fleet import FLEET_SETTINGS, NOT_VERSIONS, VERSIONS_ONLY, fleet
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_log, remote_tip

BASE = "apps/base/podinfo/helm-release"


def answer(bot, command: str) -> str:
    """The outcome of a changing command. Whether the bot first says what it is about to do
    ("Deploying …") depends on whether it has fetched the colleague's commit yet (it fetches at
    most every few seconds); what it finally answers does not."""
    bot.push_message(command)
    reply = bot.pop_message(timeout=30)
    if reply.startswith(("Deploying ", "Promoting ", "Rolling back ")):
        reply = bot.pop_message(timeout=30)
    try:
        extra = bot.pop_message(timeout=0.3)
    except queue.Empty:
        return reply
    raise AssertionError(f"an unexpected extra reply to {command!r}: {extra!r}")


@pytest.fixture
def fleet_files(registry, charts, images):
    return fleet(registry.host)


@pytest.fixture
def fleet_url(bare_remote, fleet_files):
    return bare_remote(fleet_files)


@pytest.fixture
def bot(tmp_path, fleet_url):
    with started_bot(tmp_path, {**FLEET_SETTINGS, "repo": {"url": fleet_url, "branch": "main"}}) as testbot:
        assert "6.5.1" in ask(testbot, "!versions podinfo")[0]  # the running bot knows the fleet
        yield testbot


@pytest.mark.parametrize("kind", ["json patch", "Kustomization"])
def test_after_prods_patch_changes_a_deploy_to_dev_leaves_the_line_prod_reads(bot, fleet_url, fleet_files,
                                                                              external_commit, kind):
    theirs = external_commit(fleet_url, NOT_VERSIONS[kind](fleet_files))
    text = answer(bot, "!deploy podinfo 6.5.3 to dev")
    assert f"pinned in {BASE}, which is shared by dev, prod" in text
    assert remote_tip(fleet_url) == theirs
    assert remote_file(fleet_url, BASE) + "\n" == fleet_files[BASE]


def test_after_a_release_listed_under_any_name_is_renamed_it_is_not_deployed_to(bot, fleet_url, fleet_files,
                                                                                external_commit):
    theirs = external_commit(fleet_url, NOT_VERSIONS["resource under any name"](fleet_files))
    text = answer(bot, "!deploy podinfo 6.5.3 to stag")
    assert text.startswith("No app podinfo in stag")
    assert remote_tip(fleet_url) == theirs


def test_after_a_setter_marker_is_added_the_tag_it_marks_is_known_shared(bot, fleet_url, fleet_files,
                                                                         external_commit):
    external_commit(fleet_url, NOT_VERSIONS["marker added"](fleet_files))
    # Ferry's own commit on top of the colleague's: carried to, then derived from.
    result = answer(bot, "!deploy podinfo 6.5.3 to stag")
    assert "6.5.2 → 6.5.3" in result
    ours = remote_tip(fleet_url)
    text = answer(bot, "!deploy podinfo image 1.1.0 to dev")
    assert f"pinned in {BASE}, which is shared by dev, prod" in text
    assert remote_tip(fleet_url) == ours
    shown = ask(bot, "!versions podinfo")[0]
    assert "1.0.0" in shown


def test_a_colleagues_version_in_a_file_of_any_name_is_what_the_bot_shows(bot, fleet_url, fleet_files,
                                                                          external_commit):
    files = {**fleet_files, **VERSIONS_ONLY["json patch"](fleet_files)}
    external_commit(fleet_url, {**VERSIONS_ONLY["json patch"](fleet_files),
                                **VERSIONS_ONLY["resource under any name"](files)})
    text = answer(bot, "!deploy podinfo 6.5.3 to stag")  # already there: no commit
    assert "6.5.3" in text and "Deployed" not in text
    assert len(remote_log(fleet_url)) == 2
    rows = {row[0]: row[1:] for row in map(str.split, ask(bot, "!versions podinfo")[0].splitlines()) if row}
    assert rows["stag"] == ["6.5.3*", "apps/stag/podinfo.hr"]
    assert rows["prod"] == ["6.5.3*", "apps/prod/version.json"]
