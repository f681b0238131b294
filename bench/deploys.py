"""Deploys: how long a deploy takes from the call to its commit on the remote, each after someone
else's commit (interleaved with the raw ``git commit -a`` + ``git push`` baseline in an existing
clone, and the same after a fetch and reset) and back to back after Ferry's own; the git processes
one deploy starts; the listing right after a deploy; and a fresh clone per command (full and
shallow), the other baseline.
"""
from __future__ import annotations

import shutil
from typing import Callable

from gitops.core import GitOps

from bench.baselines import clone_per_command, commit_and_push, sync
from bench.fleet import git
from bench.measure import AFTER_OTHERS_RATIO, BACK_TO_BACK_RATIO, DEPLOY_RATIO, check, clock, fmt, median_ms, percentile_ms, say, verdict
from bench.world import REQUESTER, World, close_core, new_core, remote_tip


def count_git_processes(core: GitOps, action: Callable) -> list:
    """The git subcommands the workspaces start while ``action`` runs (the persistent cat-file,
    started once, is not among them)."""
    from gitops.workspace import process

    calls, run = [], process.run

    def counting(args, *rest):
        calls.append(next(a for a, before in zip(args, ["", *args]) if not a.startswith("-") and before != "-c"))
        return run(args, *rest)

    process.run = counting
    try:
        action()
    finally:
        process.run = run
    return calls


def measure(world: World) -> dict:
    args, fleet, changes, runs = world.args, world.fleet, world.changes, world.runs
    say(f"{args.deploys} deploys and as many raw commit + push")
    raw_clone = world.tmp / "raw-clone"
    git("clone", "-q", "--branch", "main", fleet.url, str(raw_clone))
    deployer = new_core(fleet, world.clone, 0)

    def deploy(change) -> float:
        app, env, old, new = change
        # as the deploy plugin does: plan (pin, registry spelling), then check and write
        t, done = clock(lambda: deployer.apply(deployer.plan_deploy(app, env, new), REQUESTER))
        check(done.commit is not None and done.old == old and done.new == new,
              f"deploy {app} {new} to {env} did not commit ({done})")
        check(remote_tip(fleet) == done.commit.sha, "the deploy's commit is not the remote's tip")
        changes.done(app, env, new)
        return t

    deploy(changes.next())  # warm-up: fills the caches
    deploys, raw, raw_synced = [], [], []
    for _ in range(args.deploys):
        deploys.append(deploy(changes.next()))
        change = changes.next()
        t_sync, _ = clock(sync, raw_clone)  # the clone catches up with the deploy just made
        raw.append(clock(commit_and_push, raw_clone, fleet, *change)[0])
        raw_synced.append(t_sync + raw[-1])
        check(remote_tip(fleet) == git("rev-parse", "HEAD", cwd=raw_clone), "raw push did not land")
        changes.done(*change[:2], change[3])

    say("git processes in one deploy")
    # The last commit on the remote is the raw baseline's: someone else's, as in every timed deploy.
    processes = count_git_processes(deployer, lambda: deploy(changes.next()))
    processes_own = count_git_processes(deployer, lambda: deploy(changes.next()))

    say(f"{args.deploys} deploys back to back")
    back_to_back = [deploy(changes.next()) for _ in range(args.deploys)]

    say("listing right after a deploy")
    after_deploy = []
    for _ in range(runs):
        deploy(changes.next())
        t, inventory = clock(deployer.inventory, refresh=False)
        check(len(inventory.pins) == world.pins, "listing after a deploy lost pins")
        after_deploy.append(t)
    close_core(deployer)

    say("clone per command")
    per_command = {False: [], True: []}
    for shallow in (False, True):
        for r in range(runs):
            dest = world.tmp / f"per-command-{int(shallow)}-{r}"
            change = changes.next()
            per_command[shallow].append(clock(clone_per_command, fleet, dest, change, shallow)[0])
            changes.done(*change[:2], change[3])
            shutil.rmtree(dest)
    return {"deploy": deploys, "raw": raw, "raw synced": raw_synced, "git processes": processes,
            "git processes own": processes_own, "back to back": back_to_back, "after deploy": after_deploy,
            "clone per command": per_command[False], "shallow clone per command": per_command[True]}


def rows(world: World) -> list:
    """The deploy rows, led by the listing right after a deploy (next to the cold listing's)."""
    found, n, runs = world.results["deploys"], world.args.deploys, world.runs
    d50, d95 = median_ms(found["deploy"]), percentile_ms(found["deploy"], 95)
    r50, r95 = median_ms(found["raw"]), percentile_ms(found["raw"], 95)
    b50, synced = median_ms(found["back to back"]), median_ms(found["raw synced"])
    after, cold = median_ms(found["after deploy"]), median_ms(world.results["inventory"]["cold"])
    full_clone = median_ms(found["clone per command"])
    shallow_clone = median_ms(found["shallow clone per command"])
    return [
        (f"`inventory(refresh=False)` right after a deploy: new commit, parse cache warm (n={runs})",
         fmt(after), "—", f"{after / cold:.2f}× cold"),
        (f"**Deploy p50**, call → commit on the remote, each after someone else's commit (n={n})", fmt(d50),
         f"≤ {DEPLOY_RATIO:g}× raw: {verdict(d50, DEPLOY_RATIO * r50)}",
         f"raw p50 {fmt(r50)} → **{d50 / r50:.2f}×**"),
        (f"Deploy p95 (n={n})", fmt(d95), "—", f"raw p95 {fmt(r95)} → {d95 / r95:.2f}×"),
        (f"Deploy p50 back to back: the previous commit is Ferry's own (n={n})", fmt(b50),
         f"≤ {BACK_TO_BACK_RATIO:g}× raw: {verdict(b50, BACK_TO_BACK_RATIO * r50)}",
         f"raw p50 {fmt(r50)} → **{b50 / r50:.2f}×**"),
        (f"Baseline: raw `git commit -a` + `git push`, existing clone, p50 (n={n})", fmt(r50),
         "—", "baseline"),
        (f"Baseline: raw `git fetch` + `reset --hard` + `commit -a` + `push`, p50 (n={n})",
         fmt(synced), f"deploy after someone else's ≤ {AFTER_OTHERS_RATIO:g}× this: "
         f"{verdict(d50, AFTER_OTHERS_RATIO * synced)}", f"deploy p50 is **{d50 / synced:.2f}×** this"),
        (f"Baseline: clone per command (`git clone`, edit, commit, push) (n={runs})", fmt(full_clone),
         "—", f"{full_clone / d50:.1f}× deploy p50"),
        (f"Baseline: shallow clone per command (`--depth 1`) (n={runs})", fmt(shallow_clone), "—",
         f"{shallow_clone / d50:.1f}× deploy p50"),
    ]


def git_process_rows(world: World) -> list:
    found = world.results["deploys"]
    processes, own = found["git processes"], found["git processes own"]
    return [
        (f"Git processes in one deploy after someone else's commit (`{'`, `'.join(processes)}`; "
         "cat-file is persistent)", str(len(processes)), "—", "raw `commit -a` + `push`: 2"),
        (f"Git processes in one deploy after Ferry's own (`{'`, `'.join(own)}`)",
         str(len(own)), "—", "raw `commit -a` + `push`: 2"),
    ]
