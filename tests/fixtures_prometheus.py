"""A real Prometheus for the tests: Debian's ``prometheus`` (a pytest plugin module, no mocks).

Fixtures (they FAIL, never skip, when Prometheus cannot start)
- ``exporter``: a small exporter the test controls (``prometheus_client`` on a free 127.0.0.1
  port): ``exporter.errors`` is a gauge ``ferry_test_errors`` (set it to turn a query bad),
  ``exporter.requests`` a counter ``ferry_test_requests_total``.
- ``prometheus``: Prometheus on a free 127.0.0.1 port with a temporary config and storage,
  scraping ``exporter`` every second; ``.url`` is ``http://127.0.0.1:PORT``. ``.wait_for(query,
  holds)`` waits until an instant query returns a sample (``holds``) or none.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

SCRAPE_SECONDS = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Exporter:
    port: int
    errors: Gauge
    requests: Counter
    server: object

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    log: Path

    def query(self, expr: str) -> list:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        return answer["data"]["result"]

    def wait_for(self, expr: str, holds: bool = True, timeout: float = 30) -> None:
        """Until ``expr`` returns a sample (``holds``) or returns none."""
        deadline = time.monotonic() + timeout
        while bool(self.query(expr)) != holds:
            assert time.monotonic() < deadline, f"{expr} did not {'hold' if holds else 'stop holding'}" \
                                                f" within {timeout} s"
            time.sleep(0.2)


@pytest.fixture
def exporter():
    registry = CollectorRegistry()
    errors = Gauge("ferry_test_errors", "5xx answers the test says the app gives", registry=registry)
    counter = Counter("ferry_test_requests", "requests the test says the app served", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield Exporter(port, errors, counter, server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(tmp_path, exporter):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (make system-deps installs Debian's)", pytrace=False)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_SECONDS}s\n"
        f"  evaluation_interval: {SCRAPE_SECONDS}s\n"
        "scrape_configs:\n"
        "  - job_name: app\n"
        f"    static_configs: [{{targets: ['{exporter.target}']}}]\n")
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
             # A sample is stale after the scrape that misses it; the tests' gauge is always there.
             "--query.lookback-delta=5s"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    found = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}", pytrace=False)
            try:
                if requests.get(f"{found.url}/-/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus not ready in 30 s: {log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.1)
        found.wait_for("up{job='app'} == 1")  # the exporter scraped once
        yield found
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
