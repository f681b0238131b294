"""History: how long one app's versions in one environment take to read from a long history (the
"hot" pin, changed a few dozen times over all the fleet's commits), fetched once and with a fetch
first, next to ``git log -- <file>`` alone, with and without the commit-graph Ferry writes after
its clone.
"""
from __future__ import annotations

from bench.fleet import git
from bench.measure import HISTORY_MS, check, fmt, median_ms, repeat, say, verdict
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
    history = repeat(lambda: history_core.history(hot_app, hot_env), mid)
    history_fetch = repeat(lambda: fetching.history(hot_app, hot_env), mid)
    hot_file = fleet.pin_file(hot_app, hot_env, "0")[0]
    clone = next(iter(history_core._workspaces.values())).directory
    git_log = repeat(lambda: git("log", "--first-parent", "--format=%H", "origin/main", "--", hot_file,
                                 cwd=clone), mid)
    # What the commit-graph Ferry writes after its clone (changed-path Bloom filters) is worth.
    git_log_no_graph = repeat(lambda: git("-c", "core.commitGraph=false", "log", "--first-parent",
                                          "--format=%H", "origin/main", "--", hot_file, cwd=clone), mid)
    close_core(history_core)
    close_core(fetching)
    return {"versions": len(entries), "history": history, "history fetch": history_fetch,
            "git log": git_log, "git log without graph": git_log_no_graph}


def rows(world: World) -> list:
    found, mid = world.results["history"], world.mid
    history, history_fetch = median_ms(found["history"]), median_ms(found["history fetch"])
    git_log, no_graph = median_ms(found["git log"]), median_ms(found["git log without graph"])
    return [
        (f"`history()` of one app in one env: {found['versions']} versions, {world.fleet.commits:,} commits "
         f"(n={mid})", fmt(history), f"< {HISTORY_MS:g} ms: {verdict(history, HISTORY_MS)}",
         f"`git log -- file` alone: {fmt(git_log)}"),
        (f"`history()` with a fetch first (n={mid})", fmt(history_fetch),
         f"< {HISTORY_MS:g} ms: {verdict(history_fetch, HISTORY_MS)}", "—"),
        (f"`git log -- file` without the commit-graph Ferry writes after its clone (n={mid})",
         fmt(no_graph), "—", f"{no_graph / git_log:.1f}× `git log` with it"),
    ]
