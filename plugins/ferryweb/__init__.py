"""Ferry's own HTTP server for its webhooks: bounded before anyone is authenticated.

Errbot's Webserver plugin runs werkzeug's ``ThreadedWSGIServer`` as it is: a thread per
connection, no limit on their number, no socket timeout. A caller that opens connections and
sends nothing (or one byte now and then: slowloris) holds a thread each, for ever, before any
signature is checked. Errbot has no setting for this, so ``FERRY_WEBSERVER_PORT`` opens this
server instead, on the same Flask app (``errbot.core_plugins.flask_app``, where ``@webhook`` and
the SlackV3 backend register their routes), with:

- at most ``max_connections`` connections at once: one more is closed at once, unread;
- every connection closed ``deadline`` seconds after it was accepted, whatever it is doing
  (reading headers byte by byte, idling on keep-alive, not reading the answer), and a read that
  waits ``idle`` seconds for a byte fails sooner;
- only Ferry's own paths served (``PATHS``): everything else is a 404 without reaching Flask
  (Errbot's ``/echo`` reflects any body as HTML to anyone);
- a JSON body nested deeper than ``MAX_DEPTH`` is a 400 before any handler parses it: Slack's
  Bolt parses the body before it checks the signature, and Python's parser raises
  ``RecursionError`` (a 500) on deep nesting. Bodies over ``MAX_BODY`` are a 413 here; the Flux
  endpoint's own, smaller limit is its one size check.

No Errbot import here: plain werkzeug and the standard library, tested over real sockets.
"""
from __future__ import annotations

import io
import logging
import re
import socket
import threading
from typing import Callable, Iterable

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
DEADLINE = 30.0  # seconds a connection may live, from accept to close
IDLE = 10.0  # seconds a read may wait for the next byte
# Flux's events, Slack's Events API and its button presses, the health and readiness checks,
# Prometheus's scrape.
PATHS = ("/flux/", "/slack/events", "/slack/interactive", "/ferry/health", "/ferry/ready", "/metrics")
MAX_BODY = 1024 * 1024  # bytes any request may carry (Slack's events and Flux's are a few KiB)
MAX_DEPTH = 64  # JSON nesting: Flux events and Slack events nest a handful of levels

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deeply ``body``'s JSON arrays and objects nest, strings aside (without parsing it)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def only(paths: Iterable[str], app: Callable) -> Callable:
    """A WSGI app that passes only requests for ``paths`` (exact, or a prefix ending in ``/``) to ``app``."""
    paths = tuple(paths)

    def allowed(path: str) -> bool:
        return any(path.startswith(p) and len(path) > len(p) if p.endswith("/") else path == p
                   for p in paths)

    def serve(environ, start_response):
        if not allowed(environ.get("PATH_INFO", "")):
            return _answer(start_response, "404 Not Found", "Not found.")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _answer(start_response, "400 Bad Request", "Content-Length is not a number.")
        if length > MAX_BODY:
            return _answer(start_response, "413 Content Too Large", f"At most {MAX_BODY} bytes are accepted.")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length or chunked:
            body = environ["wsgi.input"].read(length or MAX_BODY + 1)
            if len(body) > MAX_BODY:
                return _answer(start_response, "413 Content Too Large", f"At most {MAX_BODY} bytes are accepted.")
            environ["wsgi.input"] = io.BytesIO(body)  # the handler reads it again
            environ["CONTENT_LENGTH"] = str(len(body))
            if json_depth(body) > MAX_DEPTH:
                return _answer(start_response, "400 Bad Request",
                               f"The body nests more than {MAX_DEPTH} levels deep.")
        return app(environ, start_response)

    return serve


def _answer(start_response, status: str, text: str):
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class BoundedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a bound on connections and a deadline on each."""

    def __init__(self, host: str, port: int, app: Callable, max_connections: int = MAX_CONNECTIONS,
                 deadline: float = DEADLINE, idle: float = IDLE):
        # StreamRequestHandler applies ``timeout`` to each accepted socket: a read waiting longer fails.
        handler = type("BoundedHandler", (WSGIRequestHandler,), {"timeout": idle})
        super().__init__(host, port, app, handler=handler)
        self.deadline = deadline
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.turned_away = 0  # connections closed at once because all slots were taken

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.turned_away += 1
            if self.turned_away in (1, 10, 100) or self.turned_away % 1000 == 0:
                log.warning("webserver: %d connections open, %d turned away so far",
                            self.max_connections, self.turned_away)
            self.shutdown_request(request)
            return
        timer = threading.Timer(self.deadline, _cut, (request,))
        timer.daemon = True
        timer.start()
        thread = threading.Thread(target=self._serve, args=(request, client_address, timer),
                                  name="ferry-web", daemon=True)
        thread.start()

    def _serve(self, request, client_address, timer):
        try:
            # ThreadingMixIn's: the handler, its errors logged, then the socket closed.
            self.process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self._slots.release()

    def handle_error(self, request, client_address):
        # A connection cut by its deadline or reset by the peer is not a server error.
        log.debug("webserver: connection from %s ended with an error", client_address[0], exc_info=True)


def _cut(sock: socket.socket) -> None:
    """The deadline passed: end the connection; the handler's blocked read or write returns."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def start(host: str, port: int, app: Callable, **limits) -> BoundedServer:
    """Serve ``app`` (only ``PATHS``) on ``host:port`` in a daemon thread; ``.shutdown()`` stops it."""
    server = BoundedServer(host, port, only(PATHS, app), **limits)
    threading.Thread(target=server.serve_forever, name="ferry-webserver", daemon=True).start()
    return server
