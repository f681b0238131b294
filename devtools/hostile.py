"""Hostile HTTP clients on loopback, for the webserver's load test and bench: many connections
at once, each one of the abuses a webserver must survive. Bounded in count and time; stops by
itself (plain code, one thread, non-blocking sockets)."""
from __future__ import annotations

import errno
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

HEAD = b"POST /flux/qa HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n"
JUNK = b"[" * 65536

# What each kind sends first, and then at each tick (b"" = nothing more).
KINDS = {
    # headers one line at a time, never ended
    "slowloris": (HEAD, b"X-Trickle: 1\r\n"),
    # connects and says nothing
    "idle": (b"", b""),
    # a request line and one header past any sane limit
    "huge headers": (b"GET /ferry/health HTTP/1.1\r\nX-Big: " + b"a" * 128 * 1024, b""),
    # says 400 KB, sends one byte, waits
    "lying length": (HEAD + b"Content-Length: 400000\r\n\r\n{", b""),
    # Content-Length: -1, then a body without end
    "negative length": (HEAD + b"Content-Length: -1\r\n\r\n", JUNK),
    # a chunked body without end
    "chunked flood": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"10000\r\n" + JUNK + b"\r\n"),
    # requests sent over and over, answers never read
    "unread answers": (b"", b"GET /metrics HTTP/1.1\r\nHost: ferry\r\n\r\n" * 50),
}
_LATER = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOTCONN, errno.EINPROGRESS)


@dataclass
class _Client:
    kind: str
    pending: bytes  # bytes still to send


class HostileClients:
    """Keeps up to ``at_once`` hostile connections open to ``host:port`` (kinds in turn), until
    ``total`` were opened and all closed, or ``seconds`` passed, or ``stop()``."""

    def __init__(self, host: str, port: int, total: int = 3000, at_once: int = 1000,
                 seconds: float = 30.0, tick: float = 0.2):
        self.address, self.total, self.at_once, self.seconds, self.tick = (host, port), total, at_once, seconds, tick
        self.opened = 0
        self.closed_by_server = Counter()  # kind → connections the server ended
        self.answers = Counter()  # first bytes of an answer ("HTTP/1.1 400"), per kind and status
        self._clients: dict[socket.socket, _Client] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-clients", daemon=True)

    def __enter__(self) -> "HostileClients":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        kinds = list(KINDS)
        end = time.monotonic() + self.seconds
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                while len(self._clients) < self.at_once and self.opened < self.total:
                    self._open(kinds[self.opened % len(kinds)])
                if self.opened >= self.total and not self._clients:
                    break
                for sock, client in list(self._clients.items()):
                    self._turn(sock, client)
                self._stop.wait(self.tick)
        finally:
            for sock in self._clients:
                sock.close()
            self._clients.clear()

    def _open(self, kind: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(self.address)
        self._clients[sock] = _Client(kind, KINDS[kind][0])
        self.opened += 1

    def _turn(self, sock: socket.socket, client: _Client) -> None:
        if client.kind != "unread answers":
            try:
                data = sock.recv(65536)
                if not data:
                    return self._gone(sock, client)
                if data.startswith(b"HTTP/"):
                    self.answers[(client.kind, data[9:12].decode("latin-1"))] += 1
            except OSError as e:
                if e.errno not in _LATER:
                    return self._gone(sock, client)
        client.pending = client.pending or KINDS[client.kind][1]  # then the tick's bytes
        if not client.pending:
            return None
        try:
            client.pending = client.pending[sock.send(client.pending):]
        except OSError as e:
            if e.errno not in _LATER:
                return self._gone(sock, client)
        return None

    def _gone(self, sock: socket.socket, client: _Client) -> None:
        self.closed_by_server[client.kind] += 1
        del self._clients[sock]
        sock.close()
