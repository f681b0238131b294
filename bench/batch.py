"""Concurrent deploys: N ``!deploy``s of distinct apps started at once against one repository,
written as group commits (``write.batch``, the default) and one by one (``write.batch: false``),
against N raw ``git commit -a`` + ``git push`` in a row in an existing clone, in the same run on
the same remote. Each deploy must come back with its own commit, and every commit must be on the
remote's branch.
"""
from __future__ import annotations

import threading

from gitops.model import Requester

from bench.baselines import commit_and_push, sync
from bench.fleet import git
from bench.measure import BATCH_RATIO as RATIO, check, clock, fmt, say
from bench.world import World, close_core, new_core, remote_tip

CONCURRENT = 5  # concurrent deploys per timed deploy of ``--deploys`` (100 in the full run)


def concurrently(world: World, batch: bool, n: int) -> float:
    """Seconds from N deploys released at once to the last one answered."""
    fleet, changes = world.fleet, world.changes
    core = new_core(fleet, world.clone, 5.0, write={"batch": batch})
    try:
        core.inventory()  # the bot has its inventory before anyone asks
        todo = [changes.next() for _ in range(n)]
        start, answers = threading.Barrier(n + 1), {}

        def deploy(i, change):
            app, env, old, new = change
            who = Requester(f"U0BATCH{i:04d}", f"Person {i}", f"person{i}@example.com")  # each their own
            start.wait()
            try:
                answers[change] = core.apply(core.plan_deploy(app, env, new), who)
            except Exception as e:  # noqa: BLE001 - checked below, with the others
                answers[change] = e

        threads = [threading.Thread(target=deploy, args=(i, c)) for i, c in enumerate(todo)]
        for t in threads:
            t.start()

        def release_and_wait():
            start.wait()
            for t in threads:
                t.join()

        seconds, _ = clock(release_and_wait)
        shas = set()
        for change in todo:
            done = answers[change]
            check(not isinstance(done, Exception) and done.commit is not None and done.new == change[3],
                  f"deploy {change[0]} {change[3]} to {change[1]} did not commit ({done})")
            shas.add(done.commit.sha)
            changes.done(change[0], change[1], change[3])
        on_branch = set(git(f"--git-dir={fleet.bare}", "rev-list", f"--max-count={n * 2}",
                            "refs/heads/main").split())
        check(len(shas) == n and shas <= on_branch, "a deploy's answer does not name its own commit on the branch")
        return seconds
    finally:
        close_core(core)


def measure(world: World) -> dict:
    n = CONCURRENT * world.args.deploys
    say(f"{n} concurrent deploys, batched")
    batched = concurrently(world, True, n)
    say(f"{n} concurrent deploys, one by one")
    serial = concurrently(world, False, n)
    say(f"{n} raw commit + push in a row")
    raw_clone = world.tmp / "batch-raw-clone"
    git("clone", "-q", "--branch", "main", world.fleet.url, str(raw_clone))
    sync(raw_clone)
    todo = [world.changes.next() for _ in range(n)]

    def raw_in_a_row():
        for change in todo:
            commit_and_push(raw_clone, world.fleet, *change)

    raw, _ = clock(raw_in_a_row)
    check(remote_tip(world.fleet) == git("rev-parse", "HEAD", cwd=raw_clone), "raw pushes did not land")
    for change in todo:
        world.changes.done(*change[:2], change[3])
    return {"n": n, "batched": batched, "serial": serial, "raw": raw}


def rows(world: World) -> list:
    found = world.results["batch"]
    n, raw = found["n"], found["raw"] * 1000
    batched, serial = found["batched"] * 1000, found["serial"] * 1000
    return [
        (f"**{n} concurrent deploys** of distinct apps, batched (`write.batch`), first call → last "
         f"answer ({n / found['batched']:.1f}/s)", fmt(batched),
         f"≤ {RATIO:g}× raw: {'✓ met' if batched <= RATIO * raw else '✗ missed'}",
         f"raw {fmt(raw)} → **{batched / raw:.2f}×**"),
        (f"{n} concurrent deploys, one push each (`write.batch: false`) ({n / found['serial']:.1f}/s)",
         fmt(serial), "—", f"raw {fmt(raw)} → {serial / raw:.2f}×"),
        (f"Baseline: {n} raw `git commit -a` + `git push` in a row, existing clone", fmt(raw), "—",
         "baseline"),
    ]
