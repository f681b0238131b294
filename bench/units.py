"""Chart and image as one unit: a whole-app promotion (the chart version and the image tag of one
release, two lines, one commit) timed against the raw baseline, two lines edited in an existing
clone, `git commit -a` and `git push`.

The repository: dev and qa, one HelmRelease each (chart `unit-web` and an image `unit/web` in its
values). Each round, the raw baseline sets qa back to the older pair (timed) and Ferry promotes
dev's pair into qa (timed): the promotion is always a real two-line change after someone else's
commit, checked in both registries first.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from devtools.artifacts import push_chart, push_image
from devtools.fluxrepo import seed_remote
from gitops.core import GitOps
from gitops.model import Requester
from gitops.settings import parse_settings

from bench.fleet import git
from bench.measure import DEPLOY_RATIO, fmt, say, verdict
from bench.world import World

REQUESTER = Requester("U0BENCH02", "Bench Runner", "bench@example.com")
NEW, OLD = ("6.5.1", "1.1.0"), ("6.5.0", "1.0.0")


def _release(registry_host: str, chart_version: str, tag: str) -> str:
    return (f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n"
            f"spec:\n  chart:\n    spec:\n      chart: unit-web\n      version: {chart_version}\n"
            f"      sourceRef:\n        kind: HelmRepository\n        name: charts\n  values:\n"
            f"    image:\n      repository: {registry_host}/unit/web\n      tag: {tag}\n")


def _files(registry_host: str) -> dict:
    files = {}
    for env, (chart, tag) in (("dev", NEW), ("qa", NEW)):  # each round first sets qa back
        files[f"apps/{env}/web.yaml"] = _release(registry_host, chart, tag)
        files[f"apps/{env}/repository.yaml"] = (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n"
            f"spec:\n  type: oci\n  insecure: true\n  url: oci://{registry_host}/charts\n")
    return files


def unit_promotion(tmp: Path, registry_host: str, rounds: int) -> dict:
    """Medians (ms) of a whole-app promotion and of the raw two-line commit + push."""
    for version in (OLD[0], NEW[0]):
        push_chart(registry_host, "charts/unit-web", version)
    push_image(registry_host, "unit/web", (OLD[1], NEW[1]))
    url = seed_remote(tmp / "units.git", _files(registry_host))
    settings = parse_settings({"repo": {"url": url, "branch": "main"}, "data_dir": str(tmp / "units-data"),
                               "environments": [{"name": e, "path": f"apps/{e}"} for e in ("dev", "qa")]},
                              environ={})
    core = GitOps(settings, fetch_interval=0)
    clone = tmp / "units-clone"
    git("clone", "-q", "--branch", "main", url, str(clone))
    qa = clone / "apps" / "qa" / "web.yaml"
    promote, raw = [], []
    for i in range(rounds + 1):  # the first round warms the caches
        git("fetch", "-q", "origin", cwd=clone)
        git("reset", "-q", "--hard", "origin/main", cwd=clone)
        started = time.perf_counter()
        qa.write_text(_release(registry_host, *OLD), encoding="utf-8")  # the two lines back
        git("commit", "-q", "-a", "-m", "qa back to the older web", cwd=clone)
        git("push", "-q", "origin", "HEAD:main", cwd=clone)
        raw_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        plan = core.plan_promotion("web", "qa")
        done = core.apply(plan, REQUESTER, force=True, admin=True)
        promote_ms = (time.perf_counter() - started) * 1000
        if done.commit is None or len(done.moves) != 2:
            raise RuntimeError(f"the promotion did not move chart and image in one commit: {done}")
        if i:
            promote.append(promote_ms)
            raw.append(raw_ms)
    core.registry.close()
    return {"promote": statistics.median(promote), "raw": statistics.median(raw), "n": rounds}


def measure(world: World) -> dict:
    say("whole-app promotions: chart + image in one commit")
    return unit_promotion(world.tmp, world.registry.host, world.args.deploys)


def rows(world: World) -> list:
    unit = world.results["units"]
    return [(f"Promote chart + image as one commit (two lines, both registries checked) p50 "
             f"(n={unit['n']})", fmt(unit["promote"]),
             f"≤ {DEPLOY_RATIO:g}× raw: {verdict(unit['promote'], DEPLOY_RATIO * unit['raw'])}",
             f"raw two-line `commit -a` + `push` p50 {fmt(unit['raw'])} → "
             f"**{unit['promote'] / unit['raw']:.2f}×**")]
