"""Ferry's one HTTP server for its webhooks: waitress, bounded before anyone is authenticated.

Flux's events (``/flux/<env>``), Slack's Events API and button presses, the probes and
Prometheus's scrape all come in here, on Errbot's Flask app (``errbot.core_plugins.flask_app``,
where ``@webhook`` and the SlackV3 backend register their routes). Errbot's own Webserver plugin
(werkzeug's threaded server: a thread per connection, no limit, no timeout, no body limit) is not
loaded (config.py).

waitress reads every request on one event loop (a connection costs a socket, not a thread), and
hands only whole requests to a small pool of threads. Its own settings bound what a caller may do
before the app sees anything:

- ``Content-Length`` must be digits (``-1``, ``1e9``, two values: a 400 at once); a length over
  ``MAX_BODY``, or a chunked body that grows past it, is a 413 without reading on; the body is
  buffered in memory up to that size (never a temporary file);
- headers over ``MAX_HEADER`` bytes are a 431;
- a connection with no activity for ``idle`` seconds is closed (it holds no request being served).

Ferry adds what waitress has no setting for:

- a **deadline**: a connection is closed ``deadline`` seconds after it was accepted, whatever it
  sends (a header byte now and then never trips ``idle``: slowloris), between requests;
- **room for newcomers**: at ``max_connections`` open connections, accepting one more closes the
  oldest that is not being answered, so connections held open by one caller cannot keep a Flux
  event or a Slack request out (waitress alone stops accepting at its limit);
- only Ferry's own paths (``PATHS``) reach the app: everything else is a 404 (Errbot's ``/echo``
  reflects any body as HTML to anyone);
- a body nested deeper than ``MAX_DEPTH`` is a 400 before any handler parses it (``bodies``);
- at most ``MAX_PIPELINED`` requests read ahead on one connection (``ReadAhead``).

No Errbot import here: waitress and the standard library, tested over real sockets.
"""
from __future__ import annotations

import io
import logging
import threading
from typing import Callable, Iterable

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from gitops.safeyaml import json_depth

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256  # open at once; each holds at most MAX_HEADER + MAX_BODY bytes of request
DEADLINE = 30.0  # seconds a connection may live, from accept to close
IDLE = 10.0  # seconds a connection may stay silent
THREADS = 8  # requests answered at once (Ferry's handlers answer in milliseconds)
# Flux's events, the forges' webhooks, Slack's Events API and its button presses, the health and readiness checks,
# Prometheus's scrape.
PATHS = ("/flux/", "/forge/", "/slack/events", "/slack/interactive", "/ferry/health", "/ferry/ready", "/metrics")
MAX_BODY = 512 * 1024  # bytes any request may carry (Slack's events and Flux's are a few KiB)
MAX_HEADER = 32 * 1024  # bytes of request line and headers
MAX_DEPTH = 64  # JSON nesting: Flux events and Slack events nest a handful of levels
MAX_PIPELINED = 4  # requests read ahead on one connection; the last one read closes it

# waitress logs a warning for every request queued while all threads are busy: a flood under load.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def only(paths: Iterable[str], app: Callable) -> Callable:
    """A WSGI app that passes only requests for ``paths`` (exact, or a prefix ending in ``/``)
    whose body nests at most ``MAX_DEPTH`` deep to ``app``. The server has read and bounded the
    body already (``CONTENT_LENGTH`` is its true length, chunked or not)."""
    paths = tuple(paths)

    def allowed(path: str) -> bool:
        return any(path.startswith(p) and len(path) > len(p) if p.endswith("/") else path == p
                   for p in paths)

    def serve(environ, start_response):
        if not allowed(environ.get("PATH_INFO", "")):
            return _answer(start_response, "404 Not Found", "Not found.")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)  # the handler reads it again
            if json_depth(body) > MAX_DEPTH:
                return _answer(start_response, "400 Bad Request",
                               f"The body nests more than {MAX_DEPTH} levels deep.")
        return app(environ, start_response)

    return serve


def _answer(start_response, status: str, text: str):
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class ReadAhead(list):
    """A connection's requests read and not answered yet, at most ``MAX_PIPELINED``.

    One read of 8 KiB can hold two hundred pipelined ``GET``s, all queued at once for the
    threads, ahead of a Flux event that arrives next. waitress appends each request it parses
    holding the connection's lock (a thread answering the first one takes it to drop that one):
    past the bound, a request is dropped unanswered, the last one kept closes the connection, and
    nothing read after is queued (a client that pipelines sends again what was not answered,
    RFC 9112 9.3.2). Trimming after a read raced the threads: they could answer the first few
    before it, then the bound was counted from there."""

    past = False

    def append(self, request) -> None:
        if self.past or len(self) >= MAX_PIPELINED:
            request.close()
            if not self.past:
                self.past = True
                self[-1].headers["CONNECTION"] = "close"  # not served yet: only [0] may be
            return
        super().append(request)


class BoundedChannel(HTTPChannel):
    """waitress's connection, reading at most ``MAX_PIPELINED`` requests ahead (``ReadAhead``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests = ReadAhead()


class BoundedServer(TcpWSGIServer):
    """waitress's server with a deadline on each connection and room kept for new ones."""

    channel_class = BoundedChannel

    def __init__(self, host: str, port: int, app: Callable, max_connections: int = MAX_CONNECTIONS,
                 deadline: float = DEADLINE, idle: float = IDLE, threads: int = THREADS,
                 max_body: int = MAX_BODY):
        adj = Adjustments(
            host=host, port=port, threads=threads, ident="ferry",
            # waitress's own limit stops accepting; ours (handle_accept) makes room before it
            # is reached, unless every connection is being answered.
            connection_limit=max_connections + threads + 2,
            max_request_header_size=MAX_HEADER,
            max_request_body_size=max_body + 1,  # waitress refuses a length equal to its limit
            inbuf_overflow=max_body + 1,  # a body stays in memory: no file per connection in /tmp
            asyncore_use_poll=True,  # select() stops at 1,024 descriptors
            log_socket_errors=False,  # resets by hostile peers are not the operator's errors
            expose_tracebacks=False,
        )
        # waitress reads these as whole seconds; set after, they may be fractions (the tests').
        adj.channel_timeout = idle
        adj.cleanup_interval = adj.asyncore_loop_timeout = min(1.0, idle / 2, deadline / 2)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        super().__init__(app, map={}, dispatcher=dispatcher, adj=adj)
        self.max_connections, self.deadline, self.idle = max_connections, deadline, idle
        self.evicted = 0  # connections closed to make room for a new one
        self.thread = None

    @property
    def port(self) -> int:
        return int(self.effective_port)  # waitress keeps it as getnameinfo wrote it: a string

    def handle_accept(self):
        if len(self.active_channels) >= self.max_connections:
            self._make_room()
        super().handle_accept()

    def _make_room(self) -> None:
        """Close the oldest connection not being answered (``active_channels`` keeps accept order)."""
        oldest = next((c for c in self.active_channels.values() if not c.requests), None)
        if oldest is None:
            return
        oldest.handle_close()
        self.evicted += 1
        if self.evicted in (1, 10, 100) or self.evicted % 1000 == 0:
            log.warning("webserver: %d connections open, %d closed to make room so far",
                        self.max_connections, self.evicted)

    def maintenance(self, now):
        """waitress closes the idle connections; those past their deadline go too (between requests)."""
        super().maintenance(now)
        cutoff = now - self.deadline
        for channel in self.active_channels.values():
            if not channel.requests and channel.creation_time < cutoff:
                channel.will_close = True

    def serve(self) -> "BoundedServer":
        self.thread = threading.Thread(target=self.run, name="ferry-webserver", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every connection, from the server's own loop, and end
        the threads."""
        if self.thread is not None and self.thread.is_alive():
            self.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
            self.thread.join(timeout)
        else:
            wasyncore.close_all(self._map)
        self.task_dispatcher.shutdown(timeout=timeout)


def start(host: str, port: int, app: Callable, **limits) -> BoundedServer:
    """Serve ``app`` (only ``PATHS``) on ``host:port`` (0: any free port, see ``.port``) in a
    daemon thread; ``.stop()`` ends it."""
    return BoundedServer(host, port, only(PATHS, app), **limits).serve()
