"""A clone changed behind Ferry's back (``origin`` re-pointed, its URL rewritten, the
remote-tracking ref moved to a missing object or to a commit not on the remote) is repaired by the
next command, which answers from the real remote and changes only it: through the GitOps core and
through the bot."""
from __future__ import annotations

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.core import GitOps
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.clone_damage import DAMAGE, damage, evil_copy
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_log
from tests.ops import deploy

ALICE = Requester("U0ALICE", "Alice Doe", "alice@example.com")
QA_FILE = "apps/qa/podinfo-values.yaml"


@pytest.fixture
def fleet(tmp_path, registry, charts, bare_remote, external_commit):
    """The demo fleet's remote, and another remote where podinfo in qa is 6.5.0 (a commit the
    real remote must never get)."""
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    external_commit(url, {"README.md": "a second commit\n"})  # so that an older commit exists
    evil = evil_copy(url, tmp_path, external_commit,
                     {QA_FILE: remote_file(url, QA_FILE).replace("6.5.2", "6.5.0") + "\n"})
    return url, evil


@pytest.mark.parametrize("kind", DAMAGE)
def test_the_core_repairs_the_clone_and_answers_from_the_real_remote(tmp_path, fleet, kind):
    url, evil = fleet
    # fetch_interval as long as a test: no timely fetch may hide the damage
    core = GitOps(parse_settings({**demo_settings(url), "data_dir": str(tmp_path / "data")},
                                 environ={}), fetch_interval=3600)
    try:
        assert core.inventory().find("podinfo", "qa").version == "6.5.2"
        before, evil_before = remote_log(url), remote_log(evil)
        ws = next(iter(core.workspaces.values()))
        ws.whole_history()  # an older commit to point the ref at
        damage(ws.directory, kind, url, evil)
        assert core.inventory().find("podinfo", "qa").version == "6.5.2"
        change = deploy(core, "podinfo", "qa", "6.5.3", ALICE)
        assert (change.old, change.new, change.noop) == ("6.5.2", "6.5.3", False)
        assert remote_log(url) == [change.commit.sha, *before]
        assert remote_log(evil) == evil_before
        assert core.inventory().find("podinfo", "qa").version == "6.5.3"
    finally:
        for ws in core._workspaces.values():
            ws.close()


@pytest.mark.parametrize("kind", ["origin re-pointed", "ref to a commit not on the remote"])
def test_through_the_bot_the_next_command_after_the_damage_answers_correctly(tmp_path, fleet, kind):
    url, evil = fleet
    with started_bot(tmp_path, demo_settings(url)) as bot:
        assert "6.5.2" in ask(bot, "!versions podinfo")[0]
        before, evil_before = remote_log(url), remote_log(evil)
        clone = next(p for p in (tmp_path / "gitops" / "repos").iterdir() if not p.name.startswith("."))
        damage(clone, kind, url, evil)
        intent, done = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        assert done.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa"), done
        assert len(remote_log(url)) == len(before) + 1 and remote_log(url)[1:] == before
        assert remote_log(evil) == evil_before
