"""Changes waiting for one repository as a group commit, against a real bare remote and a real
registry: each change its own commit (author, message, trailers) and its own answer, the chain in
one push; a refused change answers alone; a rejected push is redone; ``write.batch: false``
pushes one by one. A pre-receive hook holds the first push until every other change is queued
behind it, so which changes share a push is decided by the test, never by timing."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from devtools.fluxrepo import demo_settings, fleet_apps, fleet_files
from gitops.changes import carry
from gitops.core import GitOps
from gitops.errors import ChangeDropped, PushRejected, SettingsError, VersionNotFound
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.workspace import Workspace
from tests.fixtures_git import git, remote_log, remote_path, remote_tip
from tests.held_push import HANG, Gate, wait_for
from tests.ops import deploy

VERSIONS = {"podinfo": ("6.5.0", "6.5.1", "6.5.2"), "redis": ("18.0.0", "18.1.0", "19.0.0"),
            "cert-manager": ("v1.14.0", "v1.15.0")}
APPS = 7
PEOPLE = [Requester(f"U0P{i}", f"Person {i}", f"person{i}@example.com") for i in range(APPS)]


@pytest.fixture
def fleet(registry, charts, bare_remote):
    apps = fleet_apps(APPS, VERSIONS)
    pins = {(name, env): VERSIONS[chart][0] for name, _, chart in apps
            for env in ("dev", "qa", "stag", "prod")}
    return apps, bare_remote(fleet_files(f"{registry.url}/charts", apps, pins))


def make_core(url, tmp_path, **overrides) -> GitOps:
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data"), **overrides}
    # Plans read the tip fetched a moment before (as the bot's do): a plan never waits for the
    # writer, so every change reaches the queue while the first push is held.
    core = GitOps(parse_settings(raw, environ={}), fetch_interval=300)
    core.inventory()
    return core


def run_all(calls: dict) -> dict:
    """Each call in its own thread; name -> what it returned or raised."""
    results = {}

    def run(name, call):
        try:
            results[name] = call()
        except Exception as e:  # noqa: BLE001 - the answer a requester gets
            results[name] = e

    threads = {name: threading.Thread(target=run, args=(name, call)) for name, call in calls.items()}
    for t in threads.values():
        t.start()
    return threads, results


def queued_behind_a_held_push(core, gate, first, others: dict) -> dict:
    """``first`` reaches the remote and is held there; then ``others`` start and queue behind
    it; then the remote lets the first push through. Every answer, by name."""
    threads, results = run_all({"first": first})
    gate.wait_reached()
    more, more_results = run_all(others)
    ws = next(iter(core.workspaces.values()))
    wait_for(lambda: ws.waiting + len(more_results) >= len(others))
    gate.open()
    for t in [*threads.values(), *more.values()]:
        t.join(HANG)
        assert not t.is_alive(), "hang"
    return {**results, **more_results}


def commit_of(url, sha):
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%an <%ae>|%cn|%s%n%b", sha)


def changed_of(url, sha) -> list:
    return sorted(git("--git-dir", str(remote_path(url)), "diff-tree", "--no-commit-id", "--name-only",
                      "-r", sha).split())


def assert_inventory_is_discovery(core, url):
    """The pins the core derived after its pushes are those a fresh discovery finds."""
    ws = next(iter(core.workspaces.values()))
    fresh = carry.discover(ws.tree(remote_tip(url)), core.settings)
    derived = core.inventory()
    assert sorted((p.app, p.environment, p.part, p.version) for p in derived.pins + derived.others) == \
        sorted((p.app, p.environment, p.part, p.version) for p in fresh.pins)


def deploys(core, apps, start=1, environment="dev"):
    return {apps[i][0]: (lambda i=i: deploy(core, apps[i][0], environment, VERSIONS[apps[i][2]][1], PEOPLE[i]))
            for i in range(start, len(apps))}


def test_changes_queued_behind_a_push_land_as_their_own_commits_in_one_push(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path)
    gate, seed = Gate(url, tmp_path / "gate"), remote_tip(url)
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))

    assert gate.pushes() == [1, APPS - 1]  # the first alone; every change queued behind it in one push
    history = remote_log(url)
    assert len(history) == APPS + 1 and history[-1] == seed  # one commit each, linear, nothing forced
    names = ["first", *[app for app, _, _ in apps[1:]]]
    shas = [results[name].commit.sha for name in names]
    assert sorted(shas) == sorted(history[:-1])  # each answer names a commit of its own
    for i, name in enumerate(names):
        app, _, chart = apps[i]
        assert results[name].app == app and results[name].new == VERSIONS[chart][1]
        text = commit_of(url, shas[i])
        assert text.startswith(f"Person {i} <person{i}@example.com>|Ferry|deploy {app} "
                               f"{VERSIONS[chart][0]} → {VERSIONS[chart][1]} to dev"), text
        assert f"Requested-by: Person {i} <U0P{i}>" in text and f"App: {app}" in text
        changed = git("--git-dir", str(remote_path(url)), "diff-tree", "--no-commit-id", "--name-only",
                      "-r", shas[i]).split()
        assert len(changed) == 1 and "/dev/" in changed[0]  # its own line, nobody else's
    assert_inventory_is_discovery(core, url)
    # The chain's trees, made from their parents, say which files changed as listing them would.
    ws, listed = next(iter(core.workspaces.values())), Workspace(url, "main", tmp_path / "listed")
    for sha, parent in zip(history, history[1:-1]):
        made = ws.tree(sha)
        assert made.rewritten_from is not None and made.rewritten_from[0] == parent
        assert carry.changed_files(ws.tree(parent), made) == \
            carry.changed_files(listed.tree(parent), listed.tree(sha)) == changed_of(url, sha)
    listed.close()


def test_a_refused_change_answers_alone_and_the_batch_lands(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path)
    gate, seed = Gate(url, tmp_path / "gate"), remote_tip(url)
    # Two approvals of the same prod pin, both asked while it held the seed's version: the one
    # later in the chain finds it moved by the one before (PinMoved inside the batch).
    asked = [deploy(core, apps[1][0], "prod", v, who).pending
             for v, who in ((VERSIONS[apps[1][2]][1], PEOPLE[2]), (VERSIONS[apps[1][2]][2], PEOPLE[3]))]
    others = deploys(core, apps, start=3)
    others["missing"] = lambda: deploy(core, apps[2][0], "dev", "9.9.9", PEOPLE[2])
    others["approve-1"] = lambda: core.approve(asked[0].id, PEOPLE[5])
    others["approve-2"] = lambda: core.approve(asked[1].id, PEOPLE[6])
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, others)

    assert isinstance(results["missing"], VersionNotFound)  # refused before it joined
    approvals = [results["approve-1"], results["approve-2"]]
    dropped = [r for r in approvals if isinstance(r, ChangeDropped)]
    landed = [r for r in approvals if not isinstance(r, Exception)]
    assert len(dropped) == 1 and len(landed) == 1, approvals
    assert "moved from" in str(dropped[0]) and "nothing changed" in str(dropped[0])
    landed_apps = [app for app, _, _ in apps[3:]]
    assert all(not isinstance(results[a], Exception) for a in landed_apps), results
    shas = {results["first"].commit.sha, landed[0].commit.sha, *(results[a].commit.sha for a in landed_apps)}
    history = remote_log(url)
    assert set(history[:-1]) == shas and history[-1] == seed and len(shas) == len(history) - 1
    assert gate.pushes() == [1, len(shas) - 1]  # the refused change did not stop the others' push
    assert_inventory_is_discovery(core, url)


def test_a_batch_whose_push_is_rejected_is_redone_on_the_new_tip(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path)
    gate, seed = Gate(url, tmp_path / "gate", colleague=True), remote_tip(url)
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))

    colleague = (tmp_path / "gate" / "colleague").read_text().strip()
    history = remote_log(url)
    assert history[-3:] == [colleague, results["first"].commit.sha, seed]  # kept, not forced over
    assert gate.pushes() == [1, APPS - 1]  # the batch's first push was rejected before its hooks
    others = {results[app].commit.sha for app, _, _ in apps[1:]}
    assert set(history[:-3]) == others and len(others) == APPS - 1
    for sha in others:  # each redone on the colleague's commit, in one chain
        assert colleague in git("--git-dir", str(remote_path(url)), "rev-list", sha).split()
    assert_inventory_is_discovery(core, url)


def test_a_batch_a_hook_refuses_is_pushed_again_one_change_at_a_time(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path)
    refused_app = apps[3][0]
    gate, seed = Gate(url, tmp_path / "gate", refuse=f"deploy {refused_app} "), remote_tip(url)
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))

    refusal = results[refused_app]
    assert isinstance(refusal, PushRejected) and f"no changes to deploy {refused_app}" in str(refusal)
    assert str(refusal).startswith(f"Deploy {refused_app} ") and "Nothing was changed." in str(refusal)
    landed = ["first", *(app for app, _, _ in apps[1:] if app != refused_app)]
    history = remote_log(url)
    assert sorted(results[name].commit.sha for name in landed) == sorted(history[:-1])
    assert history[-1] == seed and len(history) == APPS  # all but the refused one, each once
    assert gate.pushes() == [1] * (APPS - 1)  # the chain refused whole; then each alone
    assert_inventory_is_discovery(core, url)


def test_a_change_whose_pin_the_chain_moved_is_described_again_and_lands_after_it(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path)
    gate = Gate(url, tmp_path / "gate")
    app, _, chart = apps[1]
    old, one, two = VERSIONS[chart]
    others = {"one": lambda: deploy(core, app, "qa", one, PEOPLE[1]),
              "two": lambda: deploy(core, app, "qa", two, PEOPLE[2]),
              **deploys(core, apps, start=3)}
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, others)

    assert not [r for r in results.values() if isinstance(r, Exception)], results
    # Both planned from the seed's version; the later in the chain found the earlier's commit
    # there and was written again with a message saying so, in a push of its own after the chain.
    later, earlier = sorted(("one", "two"), key=lambda n: remote_log(url).index(results[n].commit.sha))
    text = commit_of(url, results[later].commit.sha)
    assert f"From-Version: {results[earlier].new}" in text and f"To-Version: {results[later].new}" in text
    assert f"From-Version: {old}" in commit_of(url, results[earlier].commit.sha)
    assert gate.pushes() == [1, len(others) - 1, 1]
    assert core.inventory().find(app, "qa").version == results[later].new
    assert_inventory_is_discovery(core, url)


def test_write_batch_false_pushes_each_change_alone(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path, write={"batch": False})
    gate = Gate(url, tmp_path / "gate")
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))

    assert gate.pushes() == [1] * APPS
    assert sorted(r.commit.sha for r in results.values()) == sorted(remote_log(url)[:-1])
    assert_inventory_is_discovery(core, url)


def test_a_batch_is_bounded_by_write_batch_max(fleet, tmp_path):
    apps, url = fleet
    core = make_core(url, tmp_path, write={"batch_max": 4})
    gate = Gate(url, tmp_path / "gate")
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    queued_behind_a_held_push(core, gate, first, deploys(core, apps))
    assert gate.pushes() == [1, 4, APPS - 5]


@pytest.mark.parametrize("write, problem", [
    ({"batch": "yes"}, "`write.batch` must be true"),
    ({"batch_max": 0}, "`write.batch_max` must be a whole number of changes between 1 and 200."),
    ({"batch_max": 2.5}, "`write.batch_max` must be a whole number"),
    ({"batches": True}, "batches"),
])
def test_write_settings_are_checked(write, problem):
    raw = {**demo_settings("https://git.example.test/fleet.git"), "write": write}
    with pytest.raises(SettingsError, match=re.escape(problem)):
        parse_settings(raw, environ={})


def test_batching_is_on_by_default_and_bounded():
    settings = parse_settings(demo_settings("https://git.example.test/fleet.git"), environ={})
    assert (settings.write.batch, settings.write.batch_max, settings.write.per_push) == (True, 20, 20)
