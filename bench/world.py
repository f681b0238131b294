"""The world every area of the benchmark measures on: the fleet's bare remote and its charts in the
local registry, built side by side; the changes still to make, each to a distinct pin; the cores
under test, opened and closed the same way by every area; and what each area found, for the rows
that set one area's result against another's.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from devtools.artifacts import push_charts
from devtools.fluxrepo import ENVIRONMENTS, demo_settings
from devtools.registry import LocalRegistry
from gitops.core import GitOps
from gitops.model import Requester
from gitops.settings import parse_settings

from bench.fleet import BIG_CHART, POOL, SMALL_CHARTS, Fleet, big_tags, build_remote, git
from bench.measure import check, clock, say

REQUESTER = Requester("U0BENCH01", "Bench Runner", "bench@example.com")


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


@dataclass
class World:
    """What the areas measure on, in the order of the run; each leaves what it found in
    ``results`` under its own name."""

    args: argparse.Namespace
    tmp: Path
    fleet: Fleet
    registry: LocalRegistry
    timings: dict  # the set-up's, for the report
    changes: Changes = field(init=False)
    clone: Optional[Path] = None  # the first inventory's clone, which every later core reuses
    results: dict = field(default_factory=dict)  # area -> what its measure() returned

    def __post_init__(self):
        self.changes = Changes(self.fleet, random.Random(7))

    @property
    def runs(self) -> int:
        """Samples of the slow measurements (a clone, a cold inventory)."""
        return self.args.runs

    @property
    def fast(self) -> int:
        """Samples of the measurements well under a millisecond."""
        return 20 if self.args.quick else 100

    @property
    def mid(self) -> int:
        """Samples of the measurements of a few milliseconds."""
        return 6 if self.args.quick else 20

    @property
    def pins(self) -> int:
        return self.args.apps * len(ENVIRONMENTS)


def new_core(fleet: Fleet, data_dir: Path, fetch_interval: float, **settings) -> GitOps:
    raw = {**demo_settings(fleet.url), **settings}
    raw["data_dir"] = str(data_dir)
    for env in raw["environments"]:  # times the deploy itself: production approval is off here
        env["policy"] = {"approval": False}
    return GitOps(parse_settings(raw, environ={}), fetch_interval=fetch_interval)


def close_core(core: GitOps) -> None:
    for ws in core._workspaces.values():  # stop the persistent cat-file processes now
        ws.close()
    core.registry.close()


def remote_tip(fleet: Fleet) -> str:
    return git(f"--git-dir={fleet.bare}", "rev-parse", "refs/heads/main")


def setup(args, tmp: Path, registry: LocalRegistry) -> World:
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
    return World(args, tmp, fleet, registry, timings)
