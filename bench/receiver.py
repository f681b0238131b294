"""The benchmark's Receiver rows: from a push landing to Flux's first event about it, with Ferry
calling the environment's Flux ``Receiver`` after the push and without (Flux finds the commit at
its next poll of the repository).

This MODELS Flux; no Flux runs here. The parts: Ferry's real workspace pushing to a bare remote
and its real ``Receivers`` calling a local Receiver endpoint (``devtools.flux_receiver``: the
webhook path and signature checked as notification-controller checks them); a loop standing in for
source-controller's GitRepository reconciler, which asks the remote for the branch's tip every
``INTERVAL`` seconds (``spec.interval``; Flux's are often 1 to 10 minutes) or at once when the
Receiver is called, and on a new revision posts a ``NewArtifact`` event signed as
notification-controller's generic-hmac provider signs it, to an endpoint that checks the signature
with Ferry's own ``verify`` and notes when it arrived. Without the Receiver the wait is the time to
the next poll: half the interval on average, whatever the interval is.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench.measure import check, fmt, median_ms, say
from devtools.flux_receiver import FluxReceivers
from devtools.fluxrepo import demo_settings, seed_remote
from gitops.feedback.events import sign, verify
from gitops.feedback.receiver import Receivers
from gitops.model import Requester
from gitops.ops.metrics import RepoObserver
from gitops.settings import parse_settings
from gitops.workspace import Workspace

INTERVAL = 5.0  # seconds between the modelled source-controller's polls of the remote
TOKEN, PROVIDER_TOKEN = "bench-receiver-token", "bench-flux-provider-token"
FILE = "apps/qa/app.yaml"


class SourceController:
    """One GitRepository's reconciler, modelled: the branch's tip every ``interval`` seconds, or
    at once when ``wake``d; each new revision posted to ``events`` as a signed event."""

    def __init__(self, url: str, events: str, interval: float):
        self.url, self.events, self.interval = url, events, interval
        self.seen, self.woken, self.stopped = self._tip(), threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def wake(self, body: bytes = b"") -> None:
        self.woken.set()

    def stop(self) -> None:
        self.stopped.set()
        self.woken.set()
        self.thread.join(10)

    def _tip(self) -> str:
        out = subprocess.run(["git", "ls-remote", self.url, "refs/heads/main"], capture_output=True,
                             text=True, check=True).stdout
        return out.split()[0]

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.woken.wait(self.interval)
            self.woken.clear()
            tip = self._tip()
            if tip != self.seen:
                self.seen = tip
                self._post(tip)

    def _post(self, revision: str) -> None:
        event = {"involvedObject": {"kind": "GitRepository", "namespace": "flux-system", "name": "flux-system",
                                    "apiVersion": "source.toolkit.fluxcd.io/v1"},
                 "severity": "info", "reason": "NewArtifact", "reportingController": "source-controller",
                 "message": f"stored artifact for commit '{revision[:12]}'",
                 "metadata": {"revision": f"main@sha1:{revision}"},
                 "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        body = json.dumps(event, separators=(",", ":")).encode()
        requests.post(self.events, data=body, timeout=10,
                      headers={"Content-Type": "application/json", "X-Signature": sign(body, PROVIDER_TOKEN)})


class Events(ThreadingHTTPServer):
    """Where the events go: each checked with Ferry's ``verify``; revision -> when it arrived."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _EventHandler)
        self.arrived: dict = {}
        self.changed = threading.Condition()

    def wait(self, revision: str, timeout: float) -> float:
        with self.changed:
            check(self.changed.wait_for(lambda: revision in self.arrived, timeout),
                  f"no event for {revision[:12]} within {timeout} s")
            return self.arrived[revision]


class _EventHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        verify(body, self.headers.get("X-Signature"), PROVIDER_TOKEN)
        revision = json.loads(body)["metadata"]["revision"].rsplit(":", 1)[-1]
        with self.server.changed:
            self.server.arrived[revision] = time.perf_counter()
            self.server.changed.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def pushes(folder: Path, n: int, with_receiver: bool) -> list[float]:
    """``n`` pushes, one after another, each timed from landing to its event."""
    url = seed_remote(folder / "remote", {FILE: "version: 0\n"})
    receivers, events = FluxReceivers(), Events()
    for server in (receivers, events):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    raw = demo_settings(url)
    raw["environments"][1]["flux_receiver"] = receivers.add(TOKEN)
    settings = parse_settings({**raw, "data_dir": str(folder / "data")}, {"GITOPS_FLUX_RECEIVER_TOKEN_QA": TOKEN})
    source = SourceController(url, f"http://127.0.0.1:{events.server_address[1]}/flux/qa", INTERVAL)
    calls, landed = Receivers(settings), {}
    call = calls.landing(settings.environment("qa").repo, url) if with_receiver else None

    def on_landed(tip):
        landed[tip] = time.perf_counter()
        if call is not None:
            call(tip)

    if with_receiver:
        receivers.on_call = source.wake
    ws = Workspace(url, "main", folder / "clone", observe=RepoObserver(None, landed=on_landed))
    samples = []
    try:
        for i in range(1, n + 1):
            sha, _ = ws.change(lambda tree, i=i: {FILE: f"version: {i}\n"}, author=Requester("U0BENCH", "Bench"),
                               message=f"bench push {i}")
            samples.append(events.wait(sha, 3 * INTERVAL) - landed[sha])
            if not with_receiver:  # the next push at another point of the poll cycle
                time.sleep(INTERVAL * (0.3 + 0.37 * (i % 3)))
    finally:
        ws.close()
        source.stop()
        calls.close()
        for server in (receivers, events):
            server.shutdown()
            server.server_close()
    check(not with_receiver or len(receivers.calls) == n and all(c.status == 200 for c in receivers.calls),
          f"the Receiver was not called once per push with a valid signature: {receivers.calls}")
    return samples


def measure(world) -> dict:
    n = max(3, world.args.runs)
    say(f"receiver: push → Flux's first event, with and without the Receiver call ({n} pushes each, "
        f"a modelled source-controller polling every {INTERVAL:g} s)")
    with tempfile.TemporaryDirectory(prefix="ferry-bench-receiver-") as folder:
        return {"with": pushes(Path(folder) / "with", n, True),
                "without": pushes(Path(folder) / "without", n, False)}


def rows(world) -> list:
    out = world.results["receiver"]
    with_, without = median_ms(out["with"]), median_ms(out["without"])
    n = len(out["with"])
    return [
        (f"**Push → Flux's first event, Ferry calling the Receiver** (a model of Flux: Receiver "
         f"checked as notification-controller does, a source-controller loop, the event signed as "
         f"Flux sends it), p50 (n={n})", fmt(with_), "seconds, not the interval",
         f"without: {fmt(without)} → **{without / max(with_, 1e-6):.0f}× sooner**"),
        (f"Baseline: push → Flux's first event without the Receiver (the same model polling every "
         f"{INTERVAL:g} s; Flux's own `spec.interval` is often 1–10 min, the wait about half of it), "
         f"p50 (n={n})", fmt(without), "—", f"baseline; max {fmt(max(out['without']) * 1000)}"),
    ]
