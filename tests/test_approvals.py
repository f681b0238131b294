"""Changes held for approval through the core, against a real bare remote and a real registry:
one decision at request and at approval, a change id claimed once (real threads), and a commit
message that describes the diff actually pushed."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.guard import approvals as guard
from gitops.core import GitOps
from gitops.errors import ApprovalRefused, NotAllowed, RolledBackVersion, TooManyWaiting
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.fixtures_git import git, install_hook, remote_file, remote_log, remote_path, remote_tip
from tests.ops import deploy, rollback, rolled_back

ALICE = Requester("U0ALICE", "Alice")
BOB = Requester("U0BOB", "Bob")
CAROL = Requester("U0CAROL", "Carol")
ADMIN = Requester("U0ADMIN", "Ada")


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)  # a Tuesday

    def __call__(self):
        return self.now


def make_core(url, tmp_path, policies=None, clock=None):
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data")}
    for env in raw["environments"]:
        if env["name"] in (policies or {}):
            env["policy"] = policies[env["name"]]
    kwargs = {"clock": clock} if clock else {}
    return GitOps(parse_settings(raw, environ={}), fetch_interval=0, **kwargs)


@pytest.fixture
def url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def last_message(url):
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%B")


def test_approve_and_reject_racing_in_two_threads_one_wins_the_other_is_told(url, tmp_path):
    core = make_core(url, tmp_path)
    for round_ in range(4):
        waiting = deploy(core, "podinfo", "prod", ["6.5.1", "6.5.2", "6.5.3", "6.6.0"][round_], ALICE).pending
        before = remote_tip(url)
        start, results = threading.Barrier(2), {}

        def run(name, call):
            start.wait()
            try:
                results[name] = call()
            except ApprovalRefused as e:
                results[name] = e

        threads = [threading.Thread(target=run, args=("approve", lambda: core.approve(waiting.id, BOB))),
                   threading.Thread(target=run, args=("reject", lambda: core.reject(waiting.id, CAROL)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [r for r in results.values() if isinstance(r, ApprovalRefused)]
        assert len(refused) == 1, results  # exactly one of them took the change
        if isinstance(results["approve"], ApprovalRefused):
            assert str(results["approve"]) == f"Change `{waiting.id}` was already rejected by U0CAROL."
            assert remote_tip(url) == before
        else:
            assert str(results["reject"]) in (f"Change `{waiting.id}` is already being applied by U0BOB.",
                                              f"Change `{waiting.id}` was already approved by U0BOB.")
            assert remote_log(url)[1] == before and results["approve"].commit.sha == remote_tip(url)
        assert core.pending() == []


def test_while_an_approval_pushes_a_reject_is_told_who_applies_it(url, tmp_path):
    core = make_core(url, tmp_path)
    waiting = deploy(core, "podinfo", "prod", "6.5.1", ALICE).pending
    reached, gate = tmp_path / "reached", tmp_path / "gate"
    # The remote holds the approver's push until the test opens the gate (bounded: 60 s).
    install_hook(url, "pre-receive", f"#!/bin/sh\ntouch '{reached}'\ni=0\n"
                 f"while [ ! -e '{gate}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n")
    done = {}
    approving = threading.Thread(target=lambda: done.update(change=core.approve(waiting.id, BOB)))
    approving.start()
    try:
        for _ in range(600):
            if reached.exists():
                break
            time.sleep(0.1)
        assert reached.exists()
        for call in (lambda: core.reject(waiting.id, CAROL), lambda: core.approve(waiting.id, CAROL)):
            with pytest.raises(ApprovalRefused, match=f"Change `{waiting.id}` is already being applied by U0BOB."):
                call()
        assert core.pending() == []
    finally:
        gate.touch()
        approving.join()
    assert done["change"].commit.sha == remote_tip(url)
    with pytest.raises(ApprovalRefused, match="was already approved by U0BOB"):
        core.reject(waiting.id, CAROL)


def test_expiry_and_approval_cannot_both_happen(url, tmp_path):
    clock = Clock()
    core = make_core(url, tmp_path, clock=clock)
    waiting = deploy(core, "redis", "prod", "18.1.0", ALICE).pending
    clock.now += timedelta(minutes=61)
    assert core.pending() == []
    for call in (lambda: core.approve(waiting.id, BOB), lambda: core.reject(waiting.id, ALICE)):
        with pytest.raises(ApprovalRefused, match=f"Change `{waiting.id}` expired at 2026-11-24 11:00 UTC"):
            call()
    assert len(remote_log(url)) == 1


def test_ids_are_long_and_a_proposal_never_overwrites_another(url, tmp_path, monkeypatch):
    core = make_core(url, tmp_path)
    first = deploy(core, "redis", "prod", "18.1.0", ALICE).pending
    assert len(first.id) == 2 * guard.ID_BYTES == 10
    drawn = iter([first.id, first.id, "00000000ff"])  # the generator repeats itself twice
    monkeypatch.setattr(guard.secrets, "token_hex", lambda n: next(drawn))
    second = deploy(core, "podinfo", "prod", "6.5.1", ALICE).pending
    assert second.id == "00000000ff"
    assert [(p.id, p.app) for p in core.pending()] == [(first.id, "redis"), (second.id, "podinfo")]


def test_one_person_holds_at_most_max_waiting_changes(url, tmp_path):
    core = make_core(url, tmp_path, {"prod": {"approval": {"max_waiting": 2}}})
    deploy(core, "redis", "prod", "18.1.0", ALICE)
    deploy(core, "podinfo", "prod", "6.5.1", ALICE)
    before = remote_tip(url)
    with pytest.raises(TooManyWaiting, match="You already have 2 changes waiting for approval"):
        deploy(core, "cert-manager", "prod", "v1.15.0", ALICE)
    assert deploy(core, "cert-manager", "prod", "v1.15.0", BOB).pending is not None  # others may
    core.reject(core.pending()[0].id, ALICE)
    assert deploy(core, "redis", "prod", "19.0.0", ALICE).pending is not None
    assert remote_tip(url) == before and len(core.pending()) == 3


def test_approvals_come_from_the_environments_channels(url, tmp_path):
    core = make_core(url, tmp_path, {"prod": {"channels": ["C0DEPLOY"]}})
    here = lambda who, *where: Requester(who.id, who.name, channels=where)
    waiting = deploy(core, "redis", "prod", "18.1.0", here(ALICE, "C0DEPLOY")).pending
    for call in (lambda: core.approve(waiting.id, here(BOB)), lambda: core.approve(waiting.id, here(BOB, "C0OTHER")),
                 lambda: core.reject(waiting.id, here(CAROL, "C0OTHER")), lambda: core.reject(waiting.id, ALICE)):
        with pytest.raises(NotAllowed, match="^Changes to prod are approved in C0DEPLOY, not here.$"):
            call()
    assert len(remote_log(url)) == 1 and [p.id for p in core.pending()] == [waiting.id]
    assert core.approve(waiting.id, here(BOB, "C0DEPLOY")).commit.sha == remote_tip(url)


def test_a_lock_set_after_the_request_refuses_the_approval(url, tmp_path):
    core = make_core(url, tmp_path)
    waiting = deploy(core, "redis", "prod", "18.1.0", ALICE).pending
    core.lock("prod", None, CAROL, "incident 7")
    with pytest.raises(ApprovalRefused, match=f"Change `{waiting.id}` cannot be applied now: prod is "
                                              "locked by U0CAROL since .*: incident 7"):
        core.approve(waiting.id, BOB)
    assert len(remote_log(url)) == 1
    core.unlock("prod")
    assert core.approve(waiting.id, BOB).commit.sha == remote_tip(url)  # it still waited


def test_a_lock_forced_past_at_request_stands_at_approval_but_not_a_new_one(url, tmp_path):
    core = make_core(url, tmp_path)
    core.lock("prod", "redis", CAROL, "slow disks")
    waiting = core.apply(core.plan_deploy("redis", "prod", "18.1.0"), ALICE, force=True, admin=True).pending
    assert [b.kind for b in waiting.forced] == ["lock"]
    core.lock("prod", None, CAROL, "release train")
    with pytest.raises(ApprovalRefused, match="prod is locked by U0CAROL .*release train"):
        core.approve(waiting.id, BOB)
    core.unlock("prod")
    change = core.approve(waiting.id, BOB)
    assert change.commit.sha == remote_tip(url)
    assert "Forced-by: Alice <U0ALICE> past: `redis` in prod is locked by U0CAROL" in last_message(url)


def test_a_forced_rolled_back_version_can_be_approved_without_force_again(url, tmp_path):
    core = make_core(url, tmp_path, {"qa": {"approval": True}})
    core.approve(deploy(core, "podinfo", "qa", "6.5.3", ALICE).pending.id, BOB)
    core.approve(rollback(core, "podinfo", "qa", ALICE).pending.id, BOB)
    assert rolled_back(core, "podinfo", "qa").version == "6.5.3"
    with pytest.raises(RolledBackVersion, match="add `--force`"):
        deploy(core, "podinfo", "qa", "6.5.3", ADMIN)
    waiting = core.apply(core.plan_deploy("podinfo", "qa", "6.5.3"), ADMIN, force=True, admin=True).pending
    assert [b.kind for b in waiting.forced] == ["rolled-back"]
    change = core.approve(waiting.id, BOB)
    assert (change.old, change.new) == ("6.5.2", "6.5.3") and change.commit.sha == remote_tip(url)
    assert "Forced-by: Ada <U0ADMIN> past: `podinfo` 6.5.3 was rolled back from qa by U0ALICE" in last_message(url)


def test_the_commit_message_describes_the_diff_pushed_after_a_replan(url, tmp_path, external_commit):
    core = make_core(url, tmp_path)
    plan = core.plan_deploy("podinfo", "qa", "6.5.3")  # planned from 6.5.2
    assert plan.old == "6.5.2"
    next(iter(core._workspaces.values())).skip_fetch_within = 3600  # build on the stale tip first
    pin_file = "apps/qa/podinfo-values.yaml"
    theirs = external_commit(url, {pin_file: remote_file(url, pin_file).replace('"6.5.2"', '"6.5.1"') + "\n"})
    change = core.apply(plan, ALICE)
    assert remote_log(url)[1] == theirs and change.commit.sha == remote_tip(url)
    assert change.old == "6.5.1"
    message = last_message(url) + "\n"
    assert message.startswith("deploy podinfo 6.5.1 → 6.5.3 to qa\n")
    assert "From-Version: 6.5.1\n" in message and "To-Version: 6.5.3\n" in message
    diff = git("--git-dir", str(remote_path(url)), "show", "--format=", "--unified=0", "HEAD")
    assert '-      version: "6.5.1"' in diff and '+      version: "6.5.3"' in diff
