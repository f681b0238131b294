"""A slow dependency cannot stall chat (issue 19, item 4): through a real Errbot (its test backend,
with config.py's command threads), the real local registry on 127.0.0.1 and a registry-like
server on 127.0.0.2 that answers every request correctly, in 20 s (under the registry timeout).

Twelve `!deploy`s to the slow registry (more than Errbot's default ten threads), then `!pending`,
`!locks`, `!help`, a deploy on the other registry and `!versions`: those answer before the slow
registry's first answer (`!versions` with one note that the slow host is busy, not one per app on
it); one deploy waits for the slow registry and lands, the others are told it is busy.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devtools.fluxrepo import demo_files, demo_settings
from tests.ferrybot import started_bot
from tests.fixtures_git import remote_file
from tests.serving import serving

ROOT = Path(__file__).resolve().parent.parent
SLOW = 20.0  # seconds the slow registry takes for every answer
SLOW_DEPLOYS = 12


def command_threads() -> int:
    """BOT_ASYNC_POOLSIZE as config.py sets it (Errbot's default when it does not)."""
    code = "import config; print(getattr(config, 'BOT_ASYNC_POOLSIZE', 10))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60, check=True)
    return int(run.stdout)


class SlowRegistry(BaseHTTPRequestHandler):
    """The OCI distribution API's tag lists of charts/redis and charts/cert-manager, after SLOW
    seconds."""

    def do_GET(self):
        self.server.asked.append(self.path)
        time.sleep(SLOW)
        tags = {"redis": ["18.0.0", "18.1.0", "19.0.0", "19.1.0"], "cert-manager": ["v1.14.0", "v1.15.0"]}
        chart = self.path.split("?")[0].removeprefix("/v2/charts/").removesuffix("/tags/list")
        if chart in tags:
            status, body = 200, {"name": f"charts/{chart}", "tags": tags[chart]}
        else:
            status, body = 404, {"errors": [{"code": "NAME_UNKNOWN"}]}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_slow_registry_holds_only_the_commands_that_need_it(tmp_path, registry, charts, bare_remote):
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    server = ThreadingHTTPServer(("127.0.0.2", 0), SlowRegistry)
    server.asked = []
    with serving(server):
        slow_host = f"127.0.0.2:{server.server_address[1]}"
        settings = {**demo_settings(url), "registry_timeout": SLOW * 2,
                    "apps": {app: {"registry": {"url": f"oci://{slow_host}/charts", "insecure": True}}
                             for app in ("redis", "cert-manager")}}
        with started_bot(tmp_path, settings, BOT_ASYNC_POOLSIZE=command_threads()) as bot:
            started = time.monotonic()
            for _ in range(SLOW_DEPLOYS):
                bot.push_message("!deploy redis 19.1.0 to dev")
            while not server.asked:  # the slow registry is being asked: the queue is real
                assert time.monotonic() - started < 30, "the slow registry was never asked"
                time.sleep(0.05)
            quick = ["!pending", "!locks", "!help", "!deploy podinfo 6.5.3 to qa", "!versions"]
            for command in quick:
                bot.push_message(command)
            said, redis_said = [], []
            answered = {"pending": False, "locks": False, "help": False, "podinfo": False,
                        "versions": False}
            deadline = started + SLOW * 4
            while not (all(answered.values()) and any("Deployed redis" in t for t in redis_said)):
                text = bot.pop_message(timeout=max(0.1, deadline - time.monotonic()))
                at = time.monotonic() - started
                said.append((round(at, 1), text))
                if "apps across" in text:
                    answered["versions"], overview = at, text
                elif "redis" in text:
                    redis_said.append(text)
                elif "No change is waiting for approval" in text:
                    answered["pending"] = at
                elif "Nothing is locked or frozen" in text:
                    answered["locks"] = at
                elif "!deploy" in text and "!versions" in text:
                    answered["help"] = at
                elif text.startswith("Deployed podinfo"):
                    answered["podinfo"] = at
            time.sleep(0.5)
            while True:  # what else was said: every other slow deploy has its one answer
                try:
                    said.append((round(time.monotonic() - started, 1), bot.pop_message(timeout=1)))
                except queue.Empty:
                    break
    slow_first = next(at for at, text in said if "redis" in text and "busy" not in text)
    assert max(answered.values()) < slow_first, said  # none of them waited for the slow registry
    assert slow_first >= SLOW * 0.9, said
    busy = [text for _, text in said if text.startswith("Registry") and "busy" in text]
    assert len(busy) == SLOW_DEPLOYS - 1, said
    assert all(text == f"Registry {slow_host} is busy: another command is still waiting for its "
               "answer. Try again in a moment." for text in busy)
    assert overview.count(f"Registry {slow_host} is busy") == 1, overview  # asked once for both apps
    row = next(line.split() for line in overview.splitlines() if line.startswith("podinfo"))
    assert row[-1] == "6.6.0"  # the other registry's newest, all the same
    assert 'version: "6.5.3"' in remote_file(url, "apps/qa/podinfo-values.yaml")
    assert server.asked.count("/v2/charts/redis/tags/list") == 1  # one question, not twelve


def test_requests_to_one_host_are_bounded_and_others_are_not_held():
    """transport's per-host bound: PER_HOST requests under way to a slow host, one more refused as
    busy after its short wait, while a request to another host answers. Five Helm repositories
    on one host (five indexes: no shared per-index gate) make the five requests."""
    from gitops.errors import SourceBusy
    from gitops.model import ChartLocation
    from gitops.sources import transport
    from gitops.sources.helmindex import HelmIndexClient

    release = threading.Event()

    class Held(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.server.slow:
                release.wait(30)
            data = b"apiVersion: v1\nentries: {}\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    slow, fast = ThreadingHTTPServer(("127.0.0.2", 0), Held), ThreadingHTTPServer(("127.0.0.1", 0), Held)
    slow.slow, fast.slow = True, False
    with serving(slow), serving(fast):
        client = HelmIndexClient(timeout=30, busy_seconds=0.5)
        host = f"127.0.0.2:{slow.server_address[1]}"
        outcomes = []

        def read(n):
            try:
                client.entries(ChartLocation(host, f"repo{n}/web", True, "http"))
                outcomes.append("read")
            except SourceBusy as e:
                outcomes.append(str(e))

        threads = [threading.Thread(target=read, args=(n,)) for n in range(transport.PER_HOST + 1)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while not outcomes and time.monotonic() < deadline:
            time.sleep(0.05)
        other = HelmIndexClient(timeout=5, busy_seconds=0.5)
        assert other.entries(ChartLocation(f"127.0.0.1:{fast.server_address[1]}", "web", True, "http")) == {}
        release.set()
        for t in threads:
            t.join(30)
    assert outcomes.count("read") == transport.PER_HOST
    assert [o for o in outcomes if o != "read"] == [
        f"{host} is busy: {transport.PER_HOST} requests to it are still waiting for answers. "
        "Try again in a moment."]
    # Every place came back once the answers were read: none is leaked by a streamed body.
    taken = [transport.SLOTS.take(host, 0) for _ in range(transport.PER_HOST)]
    for _ in range(sum(taken)):
        transport.SLOTS.give(host)
    assert all(taken)
