"""Signed commits: a deploy whose commit git signs (``commit.sign``, an ed25519 SSH key) against the
same deploy unsigned, back to back in the same run on the same remote: each round one unsigned and
one signed, alternating which goes first, each after the other's commit. The unsigned path is the
one every other row measures; signing adds one ``git commit-tree -S`` (and its ``ssh-keygen``).
"""
from __future__ import annotations

import subprocess

from gitops.workspace import commit as commit_stream

from bench.deploys import count_git_processes
from bench.measure import check, clock, fmt, median_ms, say
from bench.world import REQUESTER, World, close_core, new_core, remote_tip


def measure(world: World) -> dict:
    fleet, changes, n = world.fleet, world.changes, world.args.deploys
    key = world.tmp / "signing" / "ferry-signing"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry", "-f", str(key)],
                   check=True, capture_output=True, timeout=30)
    say(f"{n} signed and {n} unsigned deploys, alternating")
    cores = {False: new_core(fleet, world.tmp / "signing-unsigned", 0),
             True: new_core(fleet, world.tmp / "signing-signed", 0,
                            commit={"sign": {"format": "ssh", "key_file": str(key)}})}

    def deploy(signed: bool) -> float:
        core, (app, env, _, new) = cores[signed], changes.next()
        t, done = clock(lambda: core.apply(core.plan_deploy(app, env, new), REQUESTER))
        check(done.commit is not None and remote_tip(fleet) == done.commit.sha,
              f"{'signed' if signed else 'unsigned'} deploy of {app} {new} to {env} did not land")
        changes.done(app, env, new)
        return t

    try:
        for signed in (False, True):  # warm-up: each core's clone and caches
            cores[signed].inventory()
            deploy(signed)
        times = {False: [], True: []}
        for i in range(n):
            for signed in ((False, True) if i % 2 == 0 else (True, False)):
                times[signed].append(deploy(signed))
        processes = count_git_processes(cores[True], lambda: deploy(True))
        commits = commit_step(cores[True], max(world.mid, 10))
    finally:
        for core in cores.values():
            close_core(core)
    return {"n": n, "unsigned": times[False], "signed": times[True], "git processes": processes,
            **commits}


def commit_step(core, n: int) -> dict:
    """The commit alone, on one clone, one base and one edit: fast-import, and fast-import then
    ``commit-tree -S``, alternating (nothing is pushed; the commits stay unreferenced)."""
    workspace = next(iter(core.workspaces.values()))
    signing, tree = workspace.signing, workspace.tree(workspace.head())
    path = next(p for p in tree.files() if p.endswith(".yaml"))
    writes = commit_stream.planned_writes(tree, {path: tree.read(path) + "\n# bench\n"})
    times = {False: [], True: []}
    try:
        for i in range(n):
            for signed in ((False, True) if i % 2 == 0 else (True, False)):
                workspace.signing = signing if signed else None
                times[signed].append(clock(workspace._commit, tree.commit, writes, REQUESTER, "bench")[0])
    finally:
        workspace.signing = signing
    return {"commit n": n, "commit unsigned": times[False], "commit signed": times[True]}


def rows(world: World) -> list:
    found = world.results["signing"]
    unsigned, signed = median_ms(found["unsigned"]), median_ms(found["signed"])
    commit, commit_signed = median_ms(found["commit unsigned"]), median_ms(found["commit signed"])
    return [
        (f"Deploy p50, commit signed by git (`commit.sign`, ssh ed25519), alternating with unsigned "
         f"(n={found['n']}; git processes `{'`, `'.join(found['git processes'])}`)", fmt(signed), "—",
         f"unsigned p50 {fmt(unsigned)} → **{signed / unsigned:.2f}×** ({signed - unsigned:+.1f} ms)"),
        (f"The commit step alone, signed (`fast-import` + `commit-tree -S`), alternating with "
         f"unsigned, p50 (n={found['commit n']})", fmt(commit_signed), "—",
         f"unsigned (`fast-import`) p50 {fmt(commit)} → {commit_signed / commit:.2f}× "
         f"({commit_signed - commit:+.1f} ms)"),
    ]
