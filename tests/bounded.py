"""Run a test's risky part in a Python of its own with a memory limit (``RLIMIT_AS``): a parse
that blows up fails that test with a ``MemoryError`` (or a timeout) instead of taking the whole
suite, or the machine, with it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

_CHILD = """\
import importlib, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_AS)[1]))
sys.path[:0] = sys.argv[2:4]
module, _, name = sys.argv[4].partition(":")
result = getattr(importlib.import_module(module), name)(*json.loads(sys.stdin.read()))
print("\\n" + json.dumps(result))
"""


def run_bounded(function: str, *args, memory_mb: int = 1024, timeout: float = 120):
    """``module:function(*args)`` (JSON in, JSON out) in a new Python whose address space may not
    pass ``memory_mb``; what it returned, or AssertionError with the end of its stderr."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # threads' malloc arenas would count against it
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(memory_mb * MB), str(ROOT / "plugins"),
                               str(ROOT), function], input=json.dumps(args), capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{function} did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        raise AssertionError(f"{function} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.rsplit("\n", 2)[-2])
