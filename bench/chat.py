"""The benchmark end to end: the real plugins in Errbot's test backend over the benchmark's fleet.

``bench.run`` starts this module as its own process (``python -m bench.chat``), so that the
resident memory it reports is the bot's alone: a JSON job on stdin (the remote, the changes to
make), a JSON of samples on stdout. Latency is from ``push_message`` to the command's last reply
(a changing command answers twice: what it is about to do, then the result).
"""
from __future__ import annotations

import faulthandler
import json
import queue
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
for _path in (PLUGINS, ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from errbot.backends.test import TestBot  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from devtools.fluxrepo import demo_settings  # noqa: E402
from devtools.serial_replies import one_reply_at_a_time  # noqa: E402

POOL_SIZE = 10  # Errbot's default BOT_ASYNC_POOLSIZE, as config.py leaves it


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


def run(job: dict) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-chat-") as folder:
        bot = start_bot(job["url"], Path(folder))
        try:
            out["startup_memory"] = memory_kb()
            out["first_versions"] = timed(bot, "!versions")
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


def main() -> int:
    job = json.loads(sys.stdin.read())
    stdout, sys.stdout = sys.stdout, sys.stderr  # only the JSON goes to stdout
    try:
        result = run(job)
    finally:
        sys.stdout = stdout
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
