"""Run a stdlib HTTP server in a thread for the length of a ``with`` block (tests' small servers),
and wait for a server to answer."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import requests


@contextmanager
def serving(server):
    """Serve ``server`` (a ``ThreadingHTTPServer``) until the block ends, then close it."""
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def answering(url: str, timeout: float = 10):
    """The response to a GET of ``url`` once a server there accepts connections (it may still be
    starting, or getting its connection slots back); fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.05)
