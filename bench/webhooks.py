"""The benchmark's webhook rows: a signed Flux event end to end (POST ``/flux/qa`` → the real
plugins in Errbot's test backend: signature, parse, the app found in the inventory, the live state
kept → 200), on Ferry's webserver (``plugins/ferryweb``, waitress), against a baseline measured in
the same run on the same app: werkzeug's threaded server, what Errbot's Webserver plugin runs (and
what Ferry's own server was built on before). Then the same event while hostile connections
come and go (``devtools.hostile``), which the baseline is not asked to survive.

``bench.run`` starts this module as its own process (``python -m bench.webhooks``): a JSON job on
stdin (the remote, the release, n), a JSON of samples on stdout.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "plugins", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import requests  # noqa: E402
from errbot import core_plugins  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench.chat import start_bot  # noqa: E402
from bench.measure import check, fmt, median_ms, percentile_ms, say, serve_job, verdict  # noqa: E402
from devtools.hostile import HostileClients  # noqa: E402
from devtools.registry import free_port  # noqa: E402
from gitops.feedback.events import sign  # noqa: E402

TOKEN = "bench-flux-token-qa"
HOSTILE, AT_ONCE = 3000, 1000
RATIO = 1.5  # target: Ferry's webserver against werkzeug's on the same event, p50


def signed_event(release: str, n: int) -> tuple[bytes, dict]:
    """helm-controller's UpgradeSucceeded as notification-controller posts it (a new body each
    time: Ferry refuses a replay), signed as a generic-hmac provider signs it."""
    event = {"involvedObject": {"kind": "HelmRelease", "namespace": release, "name": release,
                                "apiVersion": "helm.toolkit.fluxcd.io/v2"},
             "severity": "info", "reason": "UpgradeSucceeded", "reportingController": "helm-controller",
             "message": f"Helm upgrade succeeded for release {release}/{release}.v{n} with chart {release}@1.0.0",
             "metadata": {"helm.toolkit.fluxcd.io/revision": "1.0.0"},
             "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-Signature": sign(body, TOKEN)}


_SENT = itertools.count()


def post(url: str, release: str, timeout: float = 30) -> float:
    body, headers = signed_event(release, next(_SENT))
    started = time.perf_counter()
    response = requests.post(url, data=body, headers=headers, timeout=timeout)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or not response.text.startswith("accepted"):
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return elapsed


def run(job: dict) -> dict:
    port = free_port()
    os.environ.update(FERRY_WEBSERVER_PORT=str(port), FERRY_WEBSERVER_HOST="127.0.0.1",
                      GITOPS_FLUX_TOKEN_QA=TOKEN)
    release, n, out = job["release"], job["n"], {"ferry": [], "baseline": [], "under_load": []}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-web-") as folder:
        bot = start_bot(job["url"], Path(folder))
        baseline = make_server("127.0.0.1", 0, lambda e, s: core_plugins.flask_app(e, s), threaded=True)
        threading.Thread(target=baseline.serve_forever, daemon=True).start()
        try:
            ferry_url = f"http://127.0.0.1:{port}/flux/qa"
            baseline_url = f"http://127.0.0.1:{baseline.server_port}/flux/qa"
            for _ in range(3):  # the first inventory (minutes at --scale), connections, caches
                post(ferry_url, release, timeout=900)
                post(baseline_url, release)
            for _ in range(n):  # interleaved: the same moment's machine for both
                out["ferry"].append(post(ferry_url, release))
                out["baseline"].append(post(baseline_url, release))
            with HostileClients("127.0.0.1", port, total=HOSTILE, at_once=AT_ONCE, seconds=60) as hostile:
                while hostile.running:
                    out["under_load"].append(post(ferry_url, release))
                    time.sleep(0.05)
            out["hostile"] = {"opened": hostile.opened, "closed_by_server": sum(hostile.closed_by_server.values())}
        finally:
            baseline.shutdown()
            baseline.server_close()
            bot.stop()
    return out


def measure(world) -> dict:
    """``run`` in its own process (its own Flask app and Errbot), over the benchmark's remote."""
    say("webhooks: a signed Flux event end to end against werkzeug's server, then under hostile load")
    job = {"url": world.fleet.url, "release": world.fleet.apps[1][0], "n": 2 * world.mid}
    res = subprocess.run([sys.executable, "-m", "bench.webhooks"], input=json.dumps(job), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    check(res.returncode == 0, f"bench.webhooks failed: {res.stderr[-3000:]}")
    return json.loads(res.stdout)


def rows(world, ratio: float = RATIO) -> list:
    out = world.results["webhooks"]
    f50, b50 = median_ms(out["ferry"]), median_ms(out["baseline"])
    l50, lmax = median_ms(out["under_load"]), max(out["under_load"]) * 1000
    n, hostile = len(out["ferry"]), out["hostile"]
    return [
        (f"**Signed Flux event end to end** (POST `/flux/qa` → signature, parse, app found, live "
         f"state kept → 200) on Ferry's webserver (waitress), p50 (n={n})", fmt(f50),
         f"≤ {ratio:g}× baseline: {verdict(f50, ratio * b50)}",
         f"werkzeug p50 {fmt(b50)} → **{f50 / b50:.2f}×**; p95 {fmt(percentile_ms(out['ferry'], 95))}"),
        (f"Baseline: the same on werkzeug's threaded server (Errbot's Webserver plugin), interleaved (n={n})",
         fmt(b50), "—", f"baseline; p95 {fmt(percentile_ms(out['baseline'], 95))}"),
        (f"Signed Flux event while {hostile['opened']:,} hostile connections come and go ({AT_ONCE:,} "
         f"at once: slowloris, idle, huge headers, lying and negative lengths, chunked floods, "
         f"answers never read), p50 (n={len(out['under_load'])}, all answered)", fmt(l50), "—",
         f"max {fmt(lmax)}; {l50 / f50:.1f}× unloaded p50; {hostile['closed_by_server']:,} closed by the server"),
    ]


if __name__ == "__main__":
    sys.exit(serve_job(run))
