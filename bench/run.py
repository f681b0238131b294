"""Ferry's benchmark: ``python -m bench.run`` (``make bench``), ``--quick`` for a smoke run.

It builds its own world in a temporary folder (``bench.world``): a local in-memory OCI registry with
one chart of 2,000 tags and a few small charts, and a bare Git remote holding a Flux repository of
1,000 apps in four environments with a history of 10,000 version changes. Then each measured area
times the core on it and, in the same run and on the same repository, the baselines it is judged
against: discovery (``bench.inventory``), history (``bench.history``), version listing and chart
sources (``bench.sources``), deploys against a raw ``git commit`` + ``git push`` in an existing
clone and a fresh clone per command (``bench.deploys``, ``bench.baselines``), the bot end to end
through Errbot's test backend in a process of its own (``bench.chat``), and a whole-app promotion
(``bench.units``). It prints a markdown table and writes it to ``bench/results.md``; ``--scale``
runs issue 21's fleet (10,000 apps × 4 environments, 20,000 commits) into ``bench/results-scale.md``.

It checks that what it timed did the right thing (every pin found, every deploy pushed), never how
long it took: the targets are reported, not asserted.

An area is a module with ``measure(world) -> dict`` (what it found, kept as
``world.results[<its name>]``) and ``rows(world) -> list`` of (measurement, result, target,
baseline); a new area is one module, added to ``RUN`` and ``TABLE`` below.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "plugins", ROOT):  # as under Errbot: `import gitops` from plugins/
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from devtools.fluxrepo import ENVIRONMENTS  # noqa: E402
from devtools.registry import LocalRegistry  # noqa: E402

from bench import batch, chat, deploys, history, inventory, preview, receiver, signing, sources, units, webhooks  # noqa: E402
from bench.measure import machine, say  # noqa: E402
from bench.world import World, setup  # noqa: E402

FULL = dict(apps=1000, commits=10000, tags=2000, runs=5, deploys=20)
QUICK = dict(apps=60, commits=400, tags=200, runs=3, deploys=6)
SCALE = dict(apps=10000, commits=20000, tags=2000, runs=2, deploys=6)  # issue 21's fleet
RESULTS = ROOT / "bench" / "results.md"
SCALE_RESULTS = ROOT / "bench" / "results-scale.md"

# The order of the run: each area measures on what those before it left (the first inventory's
# clone, the pins changed so far).
RUN = (inventory, history, sources, preview, deploys, signing, batch, chat, units, webhooks, receiver)
# The order of the table; a row may set one area's result against another's baseline.
TABLE = (inventory.rows, deploys.rows, signing.rows, batch.rows, history.rows, deploys.git_process_rows,
         sources.rows, preview.rows, units.rows, chat.rows, webhooks.rows, receiver.rows)


def measure(world: World) -> list[tuple[str, str, str, str]]:
    for area in RUN:
        world.results[area.__name__.rsplit(".", 1)[-1]] = area.measure(world)
    return [row for rows in TABLE for row in rows(world)]


def report(world: World, rows: list, elapsed: float) -> str:
    args, fleet, timings = world.args, world.fleet, world.timings
    setup_parts = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "total")
    lines = [
        "## Ferry benchmark" + (" (quick)" if args.quick else " (scale)" if args.scale else ""),
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
    parser.add_argument("--scale", action="store_true",
                        help="the fleet of issue 21 (%s; building it takes minutes), its table in "
                             "bench/results-scale.md" % ", ".join(f"{k} {v}" for k, v in SCALE.items()))
    parser.add_argument("--output", type=Path,
                        help="where to write the table (default: bench/results.md, "
                             "bench/results-scale.md with --scale; none with --quick)")
    args = parser.parse_args(argv)
    if args.quick and args.scale:
        parser.error("--quick or --scale, not both")
    for key, value in (QUICK if args.quick else SCALE if args.scale else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not (args.apps >= 20 and args.commits >= 0 and args.tags >= 1 and args.runs >= 1
            and args.deploys >= 1):
        parser.error("need --apps >= 20, --commits >= 0, --tags >= 1, --runs >= 1, --deploys >= 1")
    if args.output is None and not args.quick:
        args.output = SCALE_RESULTS if args.scale else RESULTS
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    registry = LocalRegistry(tmp / "registry", in_memory=True)
    try:
        world = setup(args, tmp, registry)
        say(f"set-up took {world.timings['total']:.1f} s; measuring")
        rows = measure(world)
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(world, rows, time.perf_counter() - started)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
