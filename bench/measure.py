"""How the benchmark measures and judges: the targets from the issue, the clock and its medians and
percentiles, the number format of the table, the verdict against a target, the machine line, and
the checks that what was timed did the right thing (never how long it took).
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

# Targets from the issue.
DEPLOY_RATIO = 2.0  # deploy p50 within 2x a raw commit + push
# Issue 21's: back to back within 1.2x a raw commit + push; after someone else's commit within
# 1.1x a raw fetch + reset + commit + push (the raw way to build on their commit).
BACK_TO_BACK_RATIO, AFTER_OTHERS_RATIO = 1.2, 1.1
LISTING_MS = 50.0  # warm listing of every app x environment
COMMIT_MS = 50.0  # the inventory right after a one-file commit (issue 21)
CLUSTER_RATIO = 1.5  # cold discovery behind Flux Kustomizations, against the plain layout
HISTORY_MS = 200.0  # one app's history in one environment
HISTORY_RATIO = 1.1  # ... within 1.1x `git log -- file` on the same clone (issue 21)
CHAT_VERSIONS_MS = 100.0  # !versions over the whole fleet through Errbot, warm
CONCURRENT = 100  # deploys to distinct apps sent at once through Errbot
CONCURRENT_S = 10.0  # ... all landed within
RSS_MB = 250.0  # the bot's resident memory with the fleet loaded
# At scale (issue 21: 10,000 apps x 4 environments, ``--scale``):
SCALE_APPS = 10_000
RSS_SCALE_MB = 300.0  # the bot's resident memory at that size
FIRST_VERSIONS_S = 15.0  # the first !versions after a start: clone, discovery, registry


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


def serve_job(run: Callable[[dict], dict]) -> int:
    """A measurement in a process of its own (``python -m bench.<area>``): the JSON job on stdin,
    ``run(job)``'s JSON on stdout; whatever else it prints goes to stderr."""
    job = json.loads(sys.stdin.read())
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        result = run(job)
    finally:
        sys.stdout = stdout
    json.dump(result, sys.stdout)
    return 0
