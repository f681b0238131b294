"""History: how long one app's versions in one environment take to read from a long history (the
"hot" pin, changed a few dozen times over all the fleet's commits), fetched once and with a fetch
first, next to ``git log -- <file>`` alone, with and without the commit-graph Ferry writes after
its clone, and next to the ``git log`` Ferry's history runs (message bodies for the trailers, the
file's blob id at each commit): what git itself spends of it.

History and its two ``git log`` baselines are timed in turns, round after round, so that a machine
busy with something else for a while weighs on all three alike.
"""
from __future__ import annotations

from gitops.workspace.objects import FILE_LOG_OPTIONS

from bench.fleet import git
from bench.measure import (HISTORY_MS, HISTORY_RATIO, check, clock, fmt, median_ms, repeat, say,
                           verdict)
from bench.world import World, close_core, new_core


def measure(world: World) -> dict:
    say("history")
    fleet, mid = world.fleet, world.mid
    hot_app, hot_env = fleet.hot
    history_core = new_core(fleet, world.clone, 3600.0)  # fetched once: times the history itself
    history_core.inventory()
    fetching = new_core(fleet, world.clone, 0)  # fetch_interval=0: every history() fetches first
    fetching.inventory()
    entries = history_core.history(hot_app, hot_env)
    check(len(entries) >= fleet.hot_changes // 2, f"history found only {len(entries)} versions")
    hot_file = fleet.pin_file(hot_app, hot_env, "0")[0]
    clone = next(iter(history_core._workspaces.values())).directory
    history, git_log, git_asked = interleaved((
        lambda: history_core.history(hot_app, hot_env),
        lambda: git("log", "--first-parent", "--format=%H", "origin/main", "--", hot_file, cwd=clone),
        lambda: git("log", "--first-parent", "--no-follow", "--max-count=500", "origin/main",
                    *FILE_LOG_OPTIONS, "--", hot_file, cwd=clone)), mid)
    history_fetch = repeat(lambda: fetching.history(hot_app, hot_env), mid)
    # What the commit-graph Ferry writes after its clone (changed-path Bloom filters) is worth.
    git_log_no_graph = repeat(lambda: git("-c", "core.commitGraph=false", "log", "--first-parent",
                                          "--format=%H", "origin/main", "--", hot_file, cwd=clone), mid)
    close_core(history_core)
    close_core(fetching)
    return {"versions": len(entries), "history": history, "history fetch": history_fetch,
            "git log": git_log, "git log asked by history": git_asked,
            "git log without graph": git_log_no_graph}


def interleaved(runs: tuple, times: int) -> list:
    """Samples of each of ``runs``, taken in turns (each round starting with the next one)."""
    samples: list = [[] for _ in runs]
    for round_ in range(times):
        for i in range(len(runs)):
            which = (round_ + i) % len(runs)
            samples[which].append(clock(runs[which])[0])
    return samples


def rows(world: World) -> list:
    found, mid = world.results["history"], world.mid
    history, history_fetch = median_ms(found["history"]), median_ms(found["history fetch"])
    git_log, no_graph = median_ms(found["git log"]), median_ms(found["git log without graph"])
    asked = median_ms(found["git log asked by history"])
    ratio = history / git_log
    return [
        (f"`history()` of one app in one env: {found['versions']} versions, {world.fleet.commits:,} commits "
         f"(n={mid}, in turns with both `git log` below)", fmt(history),
         f"< {HISTORY_MS:g} ms: {verdict(history, HISTORY_MS)}; ≤ {HISTORY_RATIO:g}× `git log`: "
         f"{verdict(ratio, HISTORY_RATIO)}",
         f"`git log -- file` alone: {fmt(git_log)} → **{ratio:.2f}×**"),
        (f"`git log -- file` as history runs it: message bodies (trailers) and the file's blob id at "
         f"each commit (`--raw -z`; n={mid})", fmt(asked), "—",
         f"{asked / git_log:.2f}× `git log` alone; `history()` is {history / asked:.2f}× this"),
        (f"`history()` with a fetch first (n={mid})", fmt(history_fetch),
         f"< {HISTORY_MS:g} ms: {verdict(history_fetch, HISTORY_MS)}", "—"),
        (f"`git log -- file` without the commit-graph Ferry writes after its clone (n={mid})",
         fmt(no_graph), "—", f"{no_graph / git_log:.1f}× `git log` with it"),
    ]
