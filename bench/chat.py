"""End to end through chat: the real plugins in Errbot's test backend over the benchmark's fleet.
How long ``!versions`` (whole fleet and one app), ``!deploy`` and ``!promote`` take, how long 100
deploys to distinct apps sent at once take to land, and the bot's resident memory; then the first
``!versions`` of the bot started again on the data folder it left (its clone and parse cache), and
a plain ``git clone`` of the same remote as the first answer's baseline.

``measure()`` (in ``bench.run``'s process) starts this module as a process of its own
(``python -m bench.chat``), so that the resident memory it reports is the bot's alone: a JSON job
on stdin (the remote, the changes to make), a JSON of samples on stdout. Latency is from
``push_message`` to the command's last reply (a changing command answers twice: what it is about to
do, then the result).
"""
from __future__ import annotations

import faulthandler
import json
import math
import os
import queue
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
for _path in (PLUGINS, ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from errbot.backends.test import TestBot  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from devtools.fluxrepo import ENVIRONMENTS, demo_settings  # noqa: E402
from devtools.serial_replies import one_reply_at_a_time  # noqa: E402

from bench.measure import (BATCH_RATIO, CHAT_VERSIONS_MS, CONCURRENT, DEPLOY_RATIO,  # noqa: E402
                           FIRST_VERSIONS_S, RSS_MB, RSS_SCALE_MB, SCALE_APPS, check, clock, fmt,
                           median_ms, percentile_ms, say, serve_job, verdict)

if TYPE_CHECKING:  # the bot's process imports no more than it needs: its memory is measured
    from bench.world import World

POOL_SIZE = 10  # Errbot's default BOT_ASYNC_POOLSIZE, as config.py leaves it


# ---- in bench.run's process ------------------------------------------------------------------

def measure(world: "World") -> dict:
    """``bench.chat`` in its own process: the bot over the fleet, the changes it is to make."""
    args, fleet, changes = world.args, world.fleet, world.changes
    n = world.mid
    deploys = [changes.next() for _ in range(args.deploys)]
    promotes = []
    used = {c[0] for c in deploys}
    for app, _, _ in fleet.apps[1:]:
        if len(promotes) == args.deploys:
            break
        if app not in used and (app, "qa") != fleet.hot and fleet.pins[(app, "dev")] != fleet.pins[(app, "qa")]:
            promotes.append(app)
    check(len(promotes) == args.deploys, "not enough apps to promote")
    used |= set(promotes)
    distinct = []  # deploys to distinct apps, sent at once
    want = min(CONCURRENT, (len(fleet.apps) - 2) // 2)
    while len(distinct) < want:
        change = changes.next()
        if change[0] not in used:
            used.add(change[0])
            distinct.append(change)
    folder = world.tmp / "chat"  # the bot's data folder, kept for its restart
    job = {"url": fleet.url, "apps": args.apps, "n": n, "app": fleet.apps[1][0], "folder": str(folder),
           "deploys": [[a, e, new] for a, e, _, new in deploys],
           "promotes": [[a, "qa"] for a in promotes],
           "concurrent": [[a, e, new] for a, e, _, new in distinct]}
    say(f"end to end through Errbot: {n}× !versions, {len(deploys)} deploys, {len(promotes)} "
        f"promotions, {len(distinct)} concurrent deploys")
    out = _bot_process(job)
    # The same bot started again on its data folder (its clone, its parse cache): a new process.
    say("the bot again, restarted on its data folder: the first !versions")
    out["restart"] = _bot_process({**job, "restart": True})
    say("discovery's own memory, traced in a process of its own")
    out["discovery_memory"] = _bot_process({**job, "discovery": True})
    # Baseline: a plain `git clone` of the same remote, the floor of any first answer.
    out["git_clone"] = [clock(_git_clone, fleet.url, world.tmp / f"baseline-clone-{i}")[0]
                        for i in range(min(world.runs, 3))]
    if out.get("unanswered"):
        say(f"no final answer within 120 s to {', '.join(out['unanswered'])}; the bot's threads "
            f"then:\n{out['stderr']}")
    for app, env, _, new in deploys + distinct:
        changes.done(app, env, new)
    for app in promotes:
        changes.done(app, "qa", fleet.pins[(app, "dev")])
    out["concurrent_count"] = len(distinct)
    return out


def _bot_process(job: dict) -> dict:
    # The bot runs as the image runs it (Dockerfile): glibc's memory pools bounded to two.
    res = subprocess.run([sys.executable, "-m", "bench.chat"], input=json.dumps(job), cwd=ROOT,
                         capture_output=True, text=True, timeout=3600,
                         env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    check(res.returncode == 0, f"bench.chat failed: {res.stderr[-3000:]}")
    out = json.loads(res.stdout)
    if out.get("unanswered"):  # where the bot's threads stood (``faulthandler``), for bench.run to say
        out["stderr"] = res.stderr[-20000:]
    return out


def _git_clone(url: str, target: Path) -> None:
    from bench.fleet import git  # the benchmark's git: no machine config
    try:
        git("clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch", url, str(target))
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=False)


def rows(world: "World") -> list:
    """The end-to-end rows: latency through Errbot, throughput, the bot's memory; a changing
    command next to the raw commit + push and the core's deploy measured by ``bench.deploys``."""
    out, n = world.results["chat"], world.mid
    r50, d50 = median_ms(world.results["deploys"]["raw"]), median_ms(world.results["deploys"]["deploy"])
    v50, v95 = median_ms(out["versions"]), percentile_ms(out["versions"], 95)
    a50, a95 = median_ms(out["versions_app"]), percentile_ms(out["versions_app"], 95)
    c50, c95 = median_ms(out["deploy"]), percentile_ms(out["deploy"], 95)
    p50, p95 = median_ms(out["promote"]), percentile_ms(out["promote"], 95)
    wall, count, landed = out["concurrent"] * 1000, out["concurrent_count"], out["concurrent_landed"]
    batch = world.results["batch"]  # measured before: its raw commits in a row, the baseline here
    raw_n = batch["n"]
    raw_all = batch["raw"] * 1000 / raw_n * count
    rss = out["memory"]["VmRSS"] / 1024
    hwm = out["memory"]["VmHWM"] / 1024
    first_rss, start_rss = out["first_memory"]["VmRSS"] / 1024, out["startup_memory"]["VmRSS"] / 1024
    found = out["discovery_memory"]
    rss_goal = RSS_SCALE_MB if world.args.apps >= SCALE_APPS else RSS_MB
    pins = f"{world.args.apps:,} apps × {len(ENVIRONMENTS)} environments"
    first, again = out["first_versions"] * 1000, out["restart"]["first_versions"] * 1000
    cloned = median_ms(out["git_clone"])
    return [
        (f"**Chat** first `!versions` after start: clone + discovery + registry ({pins})",
         fmt(first), f"≤ {FIRST_VERSIONS_S:g} s: {verdict(first, FIRST_VERSIONS_S * 1000)}",
         f"plain `git clone` (n={len(out['git_clone'])}) {fmt(cloned)} → {first / cloned:.2f}×"),
        ("Chat first `!versions` after a restart: the clone and parse cache on disk, fetch + discovery",
         fmt(again), "—", f"{again / first:.2f}× the first start; "
         f"{out['restart']['parse_cache_entries']:,} parse cache entries"),
        (f"**Chat `!versions`** warm, p50 (n={n})", fmt(v50),
         f"< {CHAT_VERSIONS_MS:g} ms: {verdict(v50, CHAT_VERSIONS_MS)}", f"p95 {fmt(v95)}"),
        (f"Chat `!versions <app>` warm, p50 (n={n})", fmt(a50), "—", f"p95 {fmt(a95)}"),
        (f"**Chat `!deploy`** to the last reply, back to back, p50 (n={len(out['deploy'])})", fmt(c50),
         f"≤ {DEPLOY_RATIO:g}× raw: {verdict(c50, DEPLOY_RATIO * r50)}",
         f"raw p50 {fmt(r50)} → **{c50 / r50:.2f}×**; core deploy p50 {fmt(d50)}; p95 {fmt(c95)}"),
        (f"Chat `!promote` to the last reply, back to back, p50 (n={len(out['promote'])})", fmt(p50),
         f"≤ {DEPLOY_RATIO:g}× raw: {verdict(p50, DEPLOY_RATIO * r50)}",
         f"raw p50 {fmt(r50)} → {p50 / r50:.2f}×; p95 {fmt(p95)}"),
        (f"**Chat: {count} `!deploy` to distinct apps at once**, all answered "
         f"({landed} landed; Errbot pool of {POOL_SIZE} threads)", fmt(wall),
         f"≤ {BATCH_RATIO:g}× raw: {verdict(wall if landed == count else math.inf, BATCH_RATIO * raw_all)}",
         f"{count} raw `commit -a` + `push` in a row ≈ {fmt(raw_all)} (the batch rows' {raw_n} in a row, "
         f"scaled) → **{wall / raw_all:.2f}×**; {count / (wall / 1000):.1f} deploys/s"),
        ("Bot resident memory (VmRSS) after its start and first `!versions`, MB", f"{first_rss:,.0f}",
         f"< {rss_goal:g} MB: {verdict(first_rss, rss_goal)}", f"at start {start_rss:,.0f} MB"),
        ("**Bot resident memory** (VmRSS) after all of the above, MB", f"{rss:,.0f}",
         f"< {rss_goal:g} MB: {verdict(rss, rss_goal)}",
         f"peak (VmHWM) {hwm:,.0f} MB: {verdict(hwm, rss_goal)}"),
        (f"Discovery's Python memory (`tracemalloc`), one discovery of {found['pins']:,} pins parsing "
         "every file, peak, MB", f"{found['peak']:,.0f}", "—",
         f"held after: {found['held']:,.0f} MB (parsed documents {found['documents']:,.0f}, "
         f"pins and parts {found['known']:,.0f})"),
    ]


# ---- in the bot's process --------------------------------------------------------------------


def memory_kb() -> dict:
    status = Path("/proc/self/status").read_text()
    return {k: int(line.split()[1]) for line in status.splitlines()
            for k in ("VmRSS", "VmHWM") if line.startswith(k + ":")}


def start_bot(url: str, folder: Path) -> TestBot:
    raw = demo_settings(url)
    for env in raw["environments"]:  # times the command itself: production approval is off here
        env["policy"] = {"approval": False}
    settings = folder / "ferry.yaml"
    YAML().dump({**raw, "data_dir": str(folder / "gitops")}, settings)
    bot = TestBot(extra_plugin_dir=str(PLUGINS), loglevel=30, extra_config={
        "GITOPS_CONFIG": str(settings), "BOT_ADMINS": ("U0BENCH01",), "AUTOINSTALL_DEPS": False,
        "BOT_ASYNC_POOLSIZE": POOL_SIZE,
        "CORE_PLUGINS": ("ACLs", "Help", "Plugins", "Utils")})
    bot.start(timeout=30)
    one_reply_at_a_time(bot)  # Errbot's test backend converts replies sent at once unsafely
    return bot


def timed(bot: TestBot, command: str, replies: int = 1, expect: str = "") -> float:
    started = time.perf_counter()
    bot.push_message(command)
    answers = [bot.pop_message(timeout=120) for _ in range(replies)]
    elapsed = time.perf_counter() - started
    if expect and not answers[-1].startswith(expect):
        raise RuntimeError(f"{command}: {answers[-1][:300]}")
    return elapsed


def restarted(job: dict) -> dict:
    """The first `!versions` of a bot started on the data folder a bot before it left."""
    folder = Path(job["folder"])
    bot = start_bot(job["url"], folder)
    try:
        out = {"first_versions": timed(bot, "!versions"), "memory": memory_kb()}
    finally:
        bot.stop()
    from gitops.flux.parsestore import FILE_NAME, ParseStore
    out["parse_cache_entries"] = len(ParseStore(folder / "gitops" / FILE_NAME))
    return out


def discovery_memory(job: dict) -> dict:
    """What one discovery of the whole fleet allocates in Python (``tracemalloc``), on the clone
    the bot left, parsing every file afresh: its peak, and what stays held after it by the parsed
    documents and by what it found (``carry.Known``: pins, parts, read-sets), in MB."""
    import gc
    import tracemalloc

    from gitops.changes import carry
    from gitops.core import GitOps
    from gitops.flux.manifests import DocumentCache
    from gitops.settings import load_settings

    core = GitOps(load_settings(str(Path(job["folder"]) / "ferry.yaml"), environ={}), fetch_interval=0)
    workspace = next(iter(core.workspaces.values()))
    tree = workspace.tree(workspace.head(refresh=False))
    cache = DocumentCache()
    gc.collect()
    tracemalloc.start()
    try:
        known = carry.discover(tree, core.settings, cache=cache)
        cache.flush()
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        pins = len(known.pins)
        del known
        gc.collect()
        without_known = tracemalloc.get_traced_memory()[0]
        cache.clear()
        gc.collect()
        without_documents = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        workspace.close()
    mb = 1024 * 1024
    return {"peak": peak / mb, "held": held / mb, "known": (held - without_known) / mb,
            "documents": (without_known - without_documents) / mb, "pins": pins}


def run(job: dict) -> dict:
    if job.get("restart"):
        return restarted(job)
    if job.get("discovery"):
        return discovery_memory(job)
    out: dict = {}
    folder = job["folder"]
    Path(folder).mkdir(parents=True, exist_ok=True)
    bot = start_bot(job["url"], Path(folder))
    try:
        out["startup_memory"] = memory_kb()
        out["first_versions"] = timed(bot, "!versions")
        out["first_memory"] = memory_kb()
        out["versions"] = [timed(bot, "!versions") for _ in range(job["n"])]
        out["versions_app"] = [timed(bot, f"!versions {job['app']}") for _ in range(job["n"])]
        out["deploy"] = [timed(bot, f"!deploy {a} {v} to {e}", 2, "Deployed")
                         for a, e, v in job["deploys"]]
        out["promote"] = [timed(bot, f"!promote {a} to {e}", 2, "Promoted")
                          for a, e in job["promotes"]]
        # 100 deploys to distinct apps, all at once
        started = time.perf_counter()
        for app, env, version in job["concurrent"]:
            bot.push_message(f"!deploy {app} {version} to {env}")
        finals = []
        while len(finals) < len(job["concurrent"]):
            try:
                text = bot.pop_message(timeout=120)
            except queue.Empty:
                # A command with no final answer: which, and where every thread of the bot
                # stands now (bench.run prints this), so that the cause can be found.
                out["unanswered"] = [f"!deploy {a} {v} to {e}" for a, e, v in job["concurrent"]
                                     if not any(a in t.replace("`", " ").split() for t in finals)]
                faulthandler.dump_traceback(sys.stderr, all_threads=True)
                break
            if not text.startswith("Deploying"):
                finals.append(text)
        out["concurrent"] = time.perf_counter() - started
        out["concurrent_landed"] = sum(t.startswith("Deployed") for t in finals)
        out["memory"] = memory_kb()
    finally:
        bot.stop()
    return out


if __name__ == "__main__":
    sys.exit(serve_job(run))
