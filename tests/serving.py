"""Run a stdlib HTTP server in a thread for the length of a ``with`` block (tests' small servers)."""
from __future__ import annotations

import threading
from contextlib import contextmanager


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
