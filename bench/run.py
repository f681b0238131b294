"""Ferry's benchmark: ``python -m bench.run`` (``make bench``), ``--quick`` for a smoke run.

It builds its own world in a temporary folder: a local in-memory OCI registry with one chart of
2,000 tags and a few small charts, and a bare Git remote holding a Flux repository of 1,000 apps in
four environments with a history of 10,000 version changes. Then it times the core (listing,
deploy, history, version listing) and, in the same run and on the same repository, the baselines a
deploy is judged against: a raw ``git commit`` + ``git push`` in an existing clone, and a fresh
clone per command. Last, ``bench.chat`` runs the bot end to end through Errbot's test backend
in a process of its own (``!versions``, ``!deploy``, ``!promote`` latency, 100 deploys at once,
the bot's resident memory). It prints a markdown table and writes it to ``bench/results.md``.

It checks that what it timed did the right thing (every pin found, every deploy pushed), never how
long it took: the targets are reported, not asserted.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "plugins", ROOT):  # as under Errbot: `import gitops` from plugins/
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from devtools.fluxrepo import ENVIRONMENTS, demo_settings, seed_remote  # noqa: E402
from devtools.registry import LocalRegistry, push_charts  # noqa: E402
from gitops.flux import manifests  # noqa: E402
from gitops.core import GitOps  # noqa: E402
from gitops.model import ChartLocation, Requester  # noqa: E402
from gitops.sources.registry import RegistryClient  # noqa: E402
from gitops.settings import parse_settings  # noqa: E402

from bench import chat, sources, webhooks  # noqa: E402
from bench.clusters import cluster_fleet_files, cluster_fleet_settings  # noqa: E402
from bench.units import unit_promotion  # noqa: E402
from bench.fleet import BIG_CHART, POOL, SMALL_CHARTS, Fleet, big_tags, build_remote, git  # noqa: E402

FULL = dict(apps=1000, commits=10000, tags=2000, runs=5, deploys=20)
QUICK = dict(apps=60, commits=400, tags=200, runs=3, deploys=6)
RESULTS = ROOT / "bench" / "results.md"
REQUESTER = Requester("U0BENCH01", "Bench Runner", "bench@example.com")
# Targets from the issue.
DEPLOY_RATIO = 2.0  # deploy p50 within 2x a raw commit + push
LISTING_MS = 50.0  # warm listing of every app x environment
CLUSTER_RATIO = 1.5  # cold discovery behind Flux Kustomizations, against the plain layout
HISTORY_MS = 200.0  # one app's history in one environment
CHAT_VERSIONS_MS = 100.0  # !versions over the whole fleet through Errbot, warm
CONCURRENT = 100  # deploys to distinct apps sent at once through Errbot
CONCURRENT_S = 10.0  # ... all landed within
RSS_MB = 250.0  # the bot's resident memory with the fleet loaded


class BenchError(RuntimeError):
    """Something the benchmark timed did not do what it should: the numbers would mean nothing."""


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(what)


# ---- timing ----------------------------------------------------------------------------------

def clock(fn: Callable, *args, **kwargs):
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def repeat(fn: Callable, times: int) -> list[float]:
    return [clock(fn)[0] for _ in range(times)]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile_ms(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


def fmt(value_ms: float) -> str:
    if value_ms >= 100:
        return f"{value_ms:,.0f}"
    if value_ms >= 10:
        return f"{value_ms:.1f}"
    if value_ms >= 0.1:
        return f"{value_ms:.2f}"
    return f"{value_ms:.4f}"


def verdict(value: float, limit: float) -> str:
    return "✓ met" if value <= limit else "✗ missed"


# ---- the machine -----------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {git_version}")


# ---- the world -------------------------------------------------------------------------------

class Changes:
    """Distinct (app, environment) pins to change, each to another version of the pool; keeps
    ``fleet.pins`` equal to the remote's tip (every writer of the remote goes through here)."""

    def __init__(self, fleet: Fleet, rng: random.Random):
        self.fleet, self.rng = fleet, rng
        self._left = [(a[0], env) for a in fleet.apps[1:] for env in ENVIRONMENTS if (a[0], env) != fleet.hot]
        rng.shuffle(self._left)

    def next(self) -> tuple[str, str, str, str]:
        check(bool(self._left), "ran out of distinct pins to change: use more --apps")
        app, env = self._left.pop()
        old = self.fleet.pins[(app, env)]
        return app, env, old, self.rng.choice([v for v in POOL if v != old])

    def done(self, app: str, env: str, new: str) -> None:
        self.fleet.pins[(app, env)] = new


def new_core(fleet: Fleet, data_dir: Path, fetch_interval: float) -> GitOps:
    raw = demo_settings(fleet.url)
    raw["data_dir"] = str(data_dir)
    for env in raw["environments"]:  # times the deploy itself: production approval is off here
        env["policy"] = {"approval": False}
    return GitOps(parse_settings(raw, environ={}), fetch_interval=fetch_interval)


def cluster_inventory(args, tmp: Path, fleet: Fleet, fast: int) -> tuple[list, list]:
    """Cold and warm inventories of the fleet's pins laid out behind `clusters/<env>` entries."""
    files = cluster_fleet_files(fleet.registry, fleet.apps, fleet.pins)
    url = seed_remote(tmp / "clusters.git", files)
    raw = cluster_fleet_settings(url)
    raw["data_dir"] = str(tmp / "clusters-data")
    pins = args.apps * len(ENVIRONMENTS)
    cold = []
    first = GitOps(parse_settings(raw, environ={}))
    first.inventory()  # the clone every run below reuses
    close_core(first)
    for _ in range(args.runs):
        manifests.DEFAULT_CACHE.clear()
        gc.collect()
        core = GitOps(parse_settings(raw, environ={}), fetch_interval=3600)  # as after a restart
        t, inventory = clock(core.inventory, refresh=False)
        check(len(inventory.pins) == pins and not inventory.problems,
              f"cluster layout: {len(inventory.pins)} pins, problems {inventory.problems[:2]}")
        check(all(p.location is not None for p in inventory.pins), "cluster layout: a pin without its line")
        cold.append(t)
        if len(cold) < args.runs:
            close_core(core)
    warm = repeat(lambda: core.inventory(refresh=False), fast)
    close_core(core)
    return cold, warm


def close_core(core: GitOps) -> None:
    for ws in core._workspaces.values():  # stop the persistent cat-file processes now
        ws.close()
    core.registry.close()


def remote_tip(fleet: Fleet) -> str:
    return git(f"--git-dir={fleet.bare}", "rev-parse", "refs/heads/main")


# ---- the baselines: plain git, the way a script without Ferry's core would do it ----------------

def edit_line(path: Path, key: str, old: str, new: str) -> None:
    """sed -i 's/<key>: <old>/<key>: <new>/' on the one line that pins the version."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf'^(\s*{key}: "?){re.escape(old)}(?="?(\s|$))', re.M)
    changed, count = pattern.subn(lambda m: m.group(1) + new, text, count=1)
    check(count == 1, f"{path}: no `{key}: {old}` line to edit")
    path.write_text(changed, encoding="utf-8")


def commit_and_push(clone: Path, fleet: Fleet, app: str, env: str, old: str, new: str) -> None:
    rel, _ = fleet.pin_file(app, env, old)
    key = "tag" if fleet.by_name[app][1] == "ocirepository" else "version"
    edit_line(clone / rel, key, old, new)
    git("commit", "-q", "-a", "-m", f"deploy {app} {old} → {new} to {env}", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)


def sync(clone: Path) -> None:
    git("fetch", "-q", "origin", cwd=clone)
    git("reset", "-q", "--hard", "origin/main", cwd=clone)


def clone_per_command(fleet: Fleet, dest: Path, change: tuple, shallow: bool) -> None:
    depth = ["--depth", "1"] if shallow else []
    git("clone", "-q", *depth, "--branch", "main", fleet.url, str(dest))
    commit_and_push(dest, fleet, *change)


# ---- the run ---------------------------------------------------------------------------------

def count_git_processes(core: GitOps, action: Callable) -> list:
    """The git subcommands the workspaces start while ``action`` runs (the persistent cat-file,
    started once, is not among them)."""
    from gitops.workspace import process

    calls, run = [], process.run

    def counting(args, *rest):
        calls.append(next(a for a in args if not a.startswith("-")))
        return run(args, *rest)

    process.run = counting
    try:
        action()
    finally:
        process.run = run
    return calls


def setup(args, tmp: Path, registry: LocalRegistry) -> tuple[Fleet, dict]:
    """Charts into the registry and the repository into a bare remote, side by side."""
    timings: dict = {}
    failures: list = []
    started = time.perf_counter()
    t, _ = clock(registry.start)
    timings["registry start"] = t
    pushes = args.tags + len(SMALL_CHARTS) * len(POOL)

    def push() -> None:
        try:
            t0 = time.perf_counter()
            push_charts(registry.host, f"charts/{BIG_CHART}", big_tags(args.tags))
            for chart in SMALL_CHARTS:
                push_charts(registry.host, f"charts/{chart}", POOL)
            timings[f"{pushes:,} chart pushes"] = time.perf_counter() - t0
        except BaseException as e:  # reported by the main thread
            failures.append(e)

    say(f"pushing {pushes:,} chart versions to {registry.host} while generating the repository")
    pusher = threading.Thread(target=push, name="bench-push")
    pusher.start()
    try:
        t, fleet = clock(build_remote, tmp, f"{registry.url}/charts", args.apps, args.commits)
        timings[f"fast-import of {fleet.commits:,} commits"] = t
    finally:
        pusher.join()
    if failures:
        raise failures[0]
    timings["total"] = time.perf_counter() - started
    return fleet, timings


def measure(args, tmp: Path, fleet: Fleet, registry: LocalRegistry) -> list[tuple[str, str, str, str]]:
    rng = random.Random(7)
    changes = Changes(fleet, rng)
    runs, pins = args.runs, args.apps * len(ENVIRONMENTS)
    fast, mid = (100, 20) if not args.quick else (20, 6)
    rows: list = []

    # -- discovery, cold: a new core, as after a restart of the bot (empty parse cache) ----
    say("first clone + inventory()")
    first = []
    for r in range(runs):
        data = tmp / f"data-{r}"
        manifests.DEFAULT_CACHE.clear()
        gc.collect()
        core = new_core(fleet, data, 5.0)
        t, inventory = clock(core.inventory)
        check(len(inventory.pins) == pins, f"first inventory found {len(inventory.pins)} pins, not {pins}")
        close_core(core)
        first.append(t)
        if r < runs - 1:
            shutil.rmtree(data)
    clone_dir = data  # the clone every later core reuses

    say("cold inventory on an existing clone")
    cold_fetch, cold = [], []
    for _ in range(runs):
        for refresh, samples in ((True, cold_fetch), (False, cold)):
            manifests.DEFAULT_CACHE.clear()
            gc.collect()
            core = new_core(fleet, clone_dir, 5.0)
            t, inventory = clock(core.inventory, refresh=refresh)
            check(len(inventory.pins) == pins, "cold inventory lost pins")
            close_core(core)
            samples.append(t)

    say("cold and warm inventory, cluster-entry layout")
    cluster_cold, cluster_warm = cluster_inventory(args, tmp, fleet, fast)

    # -- discovery, warm ------------------------------------------------------------------------
    say("warm inventory")
    core = new_core(fleet, clone_dir, 0)  # fetch_interval=0: inventory() always fetches
    core.inventory()
    warm = repeat(lambda: core.inventory(refresh=False), fast)
    warm_fetch = repeat(core.inventory, mid)

    # -- history ----------------------------------------------------------------------------------
    say("history")
    hot_app, hot_env = fleet.hot
    history_core = new_core(fleet, clone_dir, 3600.0)  # fetched once: times the history itself
    history_core.inventory()
    entries = history_core.history(hot_app, hot_env)
    check(len(entries) >= fleet.hot_changes // 2, f"history found only {len(entries)} versions")
    history = repeat(lambda: history_core.history(hot_app, hot_env), mid)
    history_fetch = repeat(lambda: core.history(hot_app, hot_env), mid)
    hot_file = fleet.pin_file(hot_app, hot_env, "0")[0]
    clone = next(iter(history_core._workspaces.values())).directory
    git_log = repeat(lambda: git("log", "--first-parent", "--format=%H", "origin/main", "--", hot_file,
                                 cwd=clone), mid)
    # What the commit-graph Ferry writes after its clone (changed-path Bloom filters) is worth.
    git_log_no_graph = repeat(lambda: git("-c", "core.commitGraph=false", "log", "--first-parent",
                                          "--format=%H", "origin/main", "--", hot_file, cwd=clone), mid)
    close_core(history_core)
    close_core(core)

    # -- version listing ---------------------------------------------------------------------------
    say("version listing")
    location = ChartLocation(registry.host, f"charts/{BIG_CHART}", insecure=True)
    listing_cold = []
    for _ in range(runs):
        client = RegistryClient(timeout=10.0)
        t, versions = clock(client.versions, location)
        check(len(versions.all_tags) == args.tags, f"listed {len(versions.all_tags)} tags, not {args.tags}")
        listing_cold.append(t)
        client.close()
    client = RegistryClient(timeout=10.0)
    client.versions(location)
    relist = []
    for _ in range(mid):
        client.invalidate(location)
        relist.append(clock(client.versions, location)[0])
    cached = repeat(lambda: client.versions(location), 1000)
    client.close()
    source_rows = sources.tag_rows(registry.host, f"charts/{BIG_CHART}", args.tags, runs, fmt, check)
    source_rows += sources.index_rows(runs, fmt, check, say)

    # -- deploys, interleaved with the raw commit + push baseline ----------------------------------
    say(f"{args.deploys} deploys and as many raw commit + push")
    raw_clone = tmp / "raw-clone"
    git("clone", "-q", "--branch", "main", fleet.url, str(raw_clone))
    deployer = new_core(fleet, clone_dir, 0)

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
        check(len(inventory.pins) == pins, "listing after a deploy lost pins")
        after_deploy.append(t)
    close_core(deployer)

    say("clone per command")
    per_command = {False: [], True: []}
    for shallow in (False, True):
        for r in range(runs):
            dest = tmp / f"per-command-{int(shallow)}-{r}"
            change = changes.next()
            per_command[shallow].append(clock(clone_per_command, fleet, dest, change, shallow)[0])
            changes.done(*change[:2], change[3])
            shutil.rmtree(dest)

    # -- end to end through Errbot's test backend, in a process of its own (its memory) -------------
    chat = chat_bench(args, fleet, changes)

    # -- the table --------------------------------------------------------------------------------
    d50, d95 = median_ms(deploys), percentile_ms(deploys, 95)
    r50, r95 = median_ms(raw), percentile_ms(raw, 95)
    b50 = median_ms(back_to_back)
    full_clone, shallow_clone = median_ms(per_command[False]), median_ms(per_command[True])
    m_warm, m_warm_fetch, m_history = median_ms(warm), median_ms(warm_fetch), median_ms(history)
    m_history_fetch = median_ms(history_fetch)
    n_pins = f"{pins:,} pins"
    rows += [
        (f"First clone + first `inventory()` ({n_pins}; n={runs})", fmt(median_ms(first)), "—",
         f"full `git clone` per command: {fmt(full_clone)}"),
        (f"Cold `inventory()`: new core on an existing clone, fetch + parse all (n={runs})",
         fmt(median_ms(cold_fetch)), "—", "—"),
        (f"Cold `inventory(refresh=False)`: same, no fetch (n={runs})", fmt(median_ms(cold)), "—", "—"),
        (f"Cold `inventory(refresh=False)`, the same pins behind cluster entries: Flux Kustomizations "
         f"with {args.apps // 3:,} patches and {args.apps // 3:,} ConfigMap variables per environment (n={runs})",
         fmt(median_ms(cluster_cold)), f"≤ {CLUSTER_RATIO:g}× plain: "
         f"{verdict(median_ms(cluster_cold), CLUSTER_RATIO * median_ms(cold))}",
         f"plain layout {fmt(median_ms(cold))} → {median_ms(cluster_cold) / median_ms(cold):.2f}×"),
        (f"Warm `inventory(refresh=False)`, cluster-entry layout (n={fast})", fmt(median_ms(cluster_warm)),
         f"< {LISTING_MS:g} ms: {verdict(median_ms(cluster_warm), LISTING_MS)}", "—"),
        (f"Warm `inventory(refresh=False)`, same commit (n={fast})", fmt(m_warm),
         f"< {LISTING_MS:g} ms: {verdict(m_warm, LISTING_MS)}", "—"),
        (f"Warm `inventory()` + fetch that finds nothing new (n={mid})", fmt(m_warm_fetch),
         f"< {LISTING_MS:g} ms: {verdict(m_warm_fetch, LISTING_MS)}", "—"),
        (f"`inventory(refresh=False)` right after a deploy: new commit, parse cache warm (n={runs})",
         fmt(median_ms(after_deploy)), "—", f"{median_ms(after_deploy) / median_ms(cold):.2f}× cold"),
        (f"**Deploy p50**, call → commit on the remote, each after someone else's commit (n={args.deploys})", fmt(d50),
         f"≤ {DEPLOY_RATIO:g}× raw: {verdict(d50, DEPLOY_RATIO * r50)}",
         f"raw p50 {fmt(r50)} → **{d50 / r50:.2f}×**"),
        (f"Deploy p95 (n={args.deploys})", fmt(d95), "—", f"raw p95 {fmt(r95)} → {d95 / r95:.2f}×"),
        (f"Deploy p50 back to back: the previous commit is Ferry's own (n={args.deploys})", fmt(b50),
         f"≤ {DEPLOY_RATIO:g}× raw: {verdict(b50, DEPLOY_RATIO * r50)}", f"raw p50 {fmt(r50)} → {b50 / r50:.2f}×"),
        (f"Baseline: raw `git commit -a` + `git push`, existing clone, p50 (n={args.deploys})", fmt(r50),
         "—", "baseline"),
        (f"Baseline: raw `git fetch` + `reset --hard` + `commit -a` + `push`, p50 (n={args.deploys})",
         fmt(median_ms(raw_synced)), "—", f"deploy p50 is {d50 / median_ms(raw_synced):.2f}× this"),
        (f"Baseline: clone per command (`git clone`, edit, commit, push) (n={runs})", fmt(full_clone),
         "—", f"{full_clone / d50:.1f}× deploy p50"),
        (f"Baseline: shallow clone per command (`--depth 1`) (n={runs})", fmt(shallow_clone), "—",
         f"{shallow_clone / d50:.1f}× deploy p50"),
        (f"`history()` of one app in one env: {len(entries)} versions, {fleet.commits:,} commits (n={mid})",
         fmt(m_history), f"< {HISTORY_MS:g} ms: {verdict(m_history, HISTORY_MS)}",
         f"`git log -- file` alone: {fmt(median_ms(git_log))}"),
        (f"`history()` with a fetch first (n={mid})", fmt(m_history_fetch),
         f"< {HISTORY_MS:g} ms: {verdict(m_history_fetch, HISTORY_MS)}", "—"),
        (f"`git log -- file` without the commit-graph Ferry writes after its clone (n={mid})",
         fmt(median_ms(git_log_no_graph)), "—",
         f"{median_ms(git_log_no_graph) / median_ms(git_log):.1f}× `git log` with it"),
        (f"Git processes in one deploy after someone else's commit (`{'`, `'.join(processes)}`; "
         "cat-file is persistent)", str(len(processes)), "—", "raw `commit -a` + `push`: 2"),
        (f"Git processes in one deploy after Ferry's own (`{'`, `'.join(processes_own)}`)",
         str(len(processes_own)), "—", "raw `commit -a` + `push`: 2"),
        (f"Versions of a chart with {args.tags:,} tags, cold: new client (n={runs})",
         fmt(median_ms(listing_cold)), "—", "—"),
        (f"Versions, cache expired, connection reused (n={mid})", fmt(median_ms(relist)), "—", "—"),
        ("Versions, cached (n=1000)", fmt(median_ms(cached)), "—", "—"),
        *source_rows,
    ]
    say("whole-app promotions: chart + image in one commit")
    unit = unit_promotion(tmp, registry.host, args.deploys, git)
    rows.append((f"Promote chart + image as one commit (two lines, both registries checked) p50 "
                 f"(n={unit['n']})", fmt(unit["promote"]),
                 f"≤ {DEPLOY_RATIO:g}× raw: {verdict(unit['promote'], DEPLOY_RATIO * unit['raw'])}",
                 f"raw two-line `commit -a` + `push` p50 {fmt(unit['raw'])} → "
                 f"**{unit['promote'] / unit['raw']:.2f}×**"))
    rows += chat_rows(args, chat, r50, d50, mid)
    say("webhooks: a signed Flux event end to end against werkzeug's server, then under hostile load")
    web = webhooks.measure(fleet.url, fleet.apps[1][0], 2 * mid, check)
    rows += webhooks.rows(web, fmt, median_ms, percentile_ms, verdict)
    return rows


def chat_bench(args, fleet: Fleet, changes: "Changes") -> dict:
    """``bench.chat`` in its own process: the bot over the fleet, the changes it is to make."""
    n = 20 if not args.quick else 6
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
    job = {"url": fleet.url, "apps": args.apps, "n": n, "app": fleet.apps[1][0],
           "deploys": [[a, e, new] for a, e, _, new in deploys],
           "promotes": [[a, "qa"] for a in promotes],
           "concurrent": [[a, e, new] for a, e, _, new in distinct]}
    say(f"end to end through Errbot: {n}× !versions, {len(deploys)} deploys, {len(promotes)} "
        f"promotions, {len(distinct)} concurrent deploys")
    res = subprocess.run([sys.executable, "-m", "bench.chat"], input=json.dumps(job), cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    check(res.returncode == 0, f"bench.chat failed: {res.stderr[-3000:]}")
    out = json.loads(res.stdout)
    if out.get("unanswered"):
        say(f"no final answer within 120 s to {', '.join(out['unanswered'])}; the bot's threads "
            f"then:\n{res.stderr[-20000:]}")
    for app, env, _, new in deploys + distinct:
        changes.done(app, env, new)
    for app in promotes:
        changes.done(app, "qa", fleet.pins[(app, "dev")])
    out["concurrent_count"] = len(distinct)
    return out


def chat_rows(args, out: dict, r50: float, d50: float, n: int) -> list:
    """The end-to-end rows: latency through Errbot, throughput, the bot's memory."""
    v50, v95 = median_ms(out["versions"]), percentile_ms(out["versions"], 95)
    a50, a95 = median_ms(out["versions_app"]), percentile_ms(out["versions_app"], 95)
    c50, c95 = median_ms(out["deploy"]), percentile_ms(out["deploy"], 95)
    p50, p95 = median_ms(out["promote"]), percentile_ms(out["promote"], 95)
    wall, count, landed = out["concurrent"] * 1000, out["concurrent_count"], out["concurrent_landed"]
    rss = out["memory"]["VmRSS"] / 1024
    hwm = out["memory"]["VmHWM"] / 1024
    pins = f"{args.apps:,} apps × {len(ENVIRONMENTS)} environments"
    return [
        (f"**Chat** first `!versions` after start: clone + discovery + registry ({pins})",
         fmt(out["first_versions"] * 1000), "—", "—"),
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
         f"({landed} landed; Errbot pool of {chat.POOL_SIZE} threads)", fmt(wall),
         f"< {CONCURRENT_S:g} s: {verdict(wall if landed == count else math.inf, CONCURRENT_S * 1000)}",
         f"{count / (wall / 1000):.1f} deploys/s"),
        ("**Bot resident memory** (VmRSS) after all of the above, MB", f"{rss:,.0f}",
         f"< {RSS_MB:g} MB: {verdict(rss, RSS_MB)}", f"peak (VmHWM) {hwm:,.0f} MB"),
    ]


def report(args, fleet: Fleet, timings: dict, rows: list, elapsed: float) -> str:
    setup_parts = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "total")
    lines = [
        "## Ferry benchmark" + (" (quick)" if args.quick else ""),
        "",
        f"- Machine: {machine()}",
        f"- Repository: {args.apps:,} apps × {len(ENVIRONMENTS)} environments = "
        f"{args.apps * len(ENVIRONMENTS):,} pins in {fleet.files:,} files; {fleet.commits:,} commits; "
        f"a third each pinned by an overlay patch, a HelmRelease beside an OCI HelmRepository, an "
        f"OCIRepository `ref.tag`; bare remote on `file://`",
        f"- Registry: local `docker-registry` (in memory); one chart with {args.tags:,} tags",
        f"- Set-up: {timings['total']:.1f} s ({setup_parts}; pushes and fast-import run side by side); "
        f"whole run {elapsed:.0f} s",
        f"- Medians of n runs, `time.perf_counter`; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        "| measurement | result (ms) | target | baseline / ratio |",
        "|---|---:|---|---|",
        *(f"| {m} | {r} | {t} | {b} |" for m, r, t, b in rows),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Optional[list] = None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, help=f"apps in the repository (default {FULL['apps']:,})")
    parser.add_argument("--commits", type=int, help=f"commits of history (default {FULL['commits']:,})")
    parser.add_argument("--tags", type=int, help=f"tags of the big chart (default {FULL['tags']:,})")
    parser.add_argument("--runs", type=int, help=f"runs of the slow measurements (default {FULL['runs']})")
    parser.add_argument("--deploys", type=int, help=f"timed deploys (default {FULL['deploys']})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (%s)" % ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    parser.add_argument("--output", type=Path,
                        help="where to write the table (default: bench/results.md; none with --quick)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not (args.apps >= 20 and args.commits >= 0 and args.tags >= 1 and args.runs >= 1
            and args.deploys >= 1):
        parser.error("need --apps >= 20, --commits >= 0, --tags >= 1, --runs >= 1, --deploys >= 1")
    if args.output is None and not args.quick:
        args.output = RESULTS
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    registry = LocalRegistry(tmp / "registry", in_memory=True)
    try:
        fleet, timings = setup(args, tmp, registry)
        say(f"set-up took {timings['total']:.1f} s; measuring")
        rows = measure(args, tmp, fleet, registry)
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, fleet, timings, rows, time.perf_counter() - started)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
