"""The local Slack's Socket Mode side (``FakeSlack`` mixes this in): the WebSocket written by hand
(RFC 6455: masked client frames, ping/pong, close), envelopes kept until acknowledged, and the ways
Slack's connections misbehave.

Each connection (``Link``) says ``hello``, then gets every envelope not acknowledged yet, again,
with ``retry_attempt`` one higher (Slack's redelivery: same ``envelope_id`` and payload); new
envelopes go to the newest connection Slack has not asked to be replaced. An acknowledgement
counts on any connection.

Faults, as Slack has them:

- ``drop_connection()``: the TCP connection ends without a close frame;
- ``go_half_open()``: the connection stays open but nothing passes either way (no pong, no
  envelope, no acknowledgement), until the bot closes it;
- ``ask_to_reconnect(reason)``: Slack's ``disconnect`` message (``warning``, ``refresh_requested``),
  then a close frame on that connection once a newer one said hello (or after ``grace`` seconds);
- ``lose_acks(n)``: the next ``n`` acknowledgements never reach Slack (it sends those envelopes
  again at the next connection, or at ``redeliver()``);
- ``apps.connections.open`` refusing for a while: ``outage(...)`` of ``tests/slack_faults.py``.
"""
from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Optional


@dataclass(eq=False)
class Link:
    sock: socket.socket
    number: int
    said_hello: bool = False
    half_open: bool = False  # nothing passes either way
    retiring: bool = False  # Slack asked the bot to replace it
    send_lock: threading.Lock = field(default_factory=threading.Lock)


class SocketMode:
    def _socket_mode_init(self) -> None:
        self._links: list = []
        self._link_numbers = itertools.count(1)
        self._unacked: dict = {}  # envelope_id -> envelope, in the order they were first sent
        self.deliveries: list = []  # (envelope_id, retry_attempt, link number), every envelope sent
        self.lost_acks: list = []  # envelope_ids acknowledged by the bot that Slack never got
        self._acks_to_lose = 0
        self.hellos = 0  # connections opened (hello said)

    # ---- what the tests do --------------------------------------------------------------

    def deliver(self, envelope: dict) -> None:
        """Send ``envelope`` on the current connection, or keep it for the next (not acknowledged)."""
        with self._lock:
            self._unacked[envelope["envelope_id"]] = envelope
            link = self._current()
        if link is not None:
            self._send_envelope(link, envelope)

    def wait_acked(self, envelope_ids, timeout: float = 30) -> None:
        ids = set(envelope_ids)
        self.wait_for(lambda: ids <= self.acks, timeout,
                      f"{len(ids - self.acks)} of {len(ids)} envelope(s) not acknowledged")

    def drop_connection(self) -> int:
        """The current connection's TCP stream ends, no close frame; returns its number."""
        link = self._wait_current()
        try:
            link.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return link.number

    def go_half_open(self) -> int:
        link = self._wait_current()
        link.half_open = True
        return link.number

    def ask_to_reconnect(self, reason: str = "refresh_requested", grace: float = 10.0) -> int:
        link = self._wait_current()
        link.retiring = True
        self._send(link, json.dumps({"type": "disconnect", "reason": reason,
                                     "debug_info": {"host": "ferry-test"}}))
        threading.Thread(target=self._retire, args=(link, grace), daemon=True).start()
        return link.number

    def lose_acks(self, count: int = 1) -> None:
        with self._lock:
            self._acks_to_lose += count

    def redeliver(self) -> None:
        """Slack's retry of the envelopes not acknowledged, on the current connection."""
        with self._lock:
            link, waiting = self._current(), list(self._unacked.values())
        for envelope in waiting if link is not None else ():
            self._send_envelope(link, envelope, again=True)

    def live_links(self) -> list:
        with self._lock:
            return [link.number for link in self._links if link.said_hello]

    # ---- the connection -----------------------------------------------------------------

    def serve_websocket(self, sock: socket.socket) -> None:
        """A connection, after the handshake: hello, what is waiting, then acks, pings and close."""
        link = Link(sock, next(self._link_numbers))
        with self._lock:
            self._links.append(link)
        try:
            self._send(link, json.dumps({"type": "hello", "num_connections": 1,
                                         "debug_info": {"host": "ferry-test"},
                                         "connection_info": {"app_id": "A0FERRY"}}))
            with self._lock:
                link.said_hello, self.hellos = True, self.hellos + 1
                waiting = list(self._unacked.values())
                self._lock.notify_all()
            self.connected.set()
            for envelope in waiting:
                self._send_envelope(link, envelope, again=True)
            self._read(link)
        except (OSError, ConnectionError, ValueError):
            return
        finally:
            with self._lock:
                self._links.remove(link)
                if not any(other.said_hello for other in self._links):
                    self.connected.clear()
                self._lock.notify_all()
            try:
                sock.close()
            except OSError:
                pass

    def _read(self, link: Link) -> None:
        while True:
            opcode, payload = _read_frame(link.sock)
            if link.half_open:
                continue  # what the bot sends never arrives
            if opcode == 0x8:  # close
                self._send(link, payload, opcode=0x8)
                return
            if opcode == 0x9:  # ping: pong with the same payload
                self._send(link, payload, opcode=0xA)
            elif opcode == 0x1:
                message = json.loads(payload.decode("utf-8"))
                with self._lock:
                    envelope_id = message.get("envelope_id")
                    if envelope_id and self._acks_to_lose:
                        self._acks_to_lose -= 1
                        self.lost_acks.append(envelope_id)
                    elif envelope_id:
                        self.acks.add(envelope_id)
                        self._unacked.pop(envelope_id, None)
                    self._lock.notify_all()

    def _retire(self, link: Link, grace: float) -> None:
        deadline = time.monotonic() + grace
        with self._lock:
            while time.monotonic() < deadline and not any(
                    other.said_hello and other.number > link.number for other in self._links):
                self._lock.wait(0.1)
        self._send(link, struct.pack("!H", 1000) + b"refresh", opcode=0x8)

    def _current(self) -> Optional[Link]:
        """The connection new envelopes go to (the caller holds the lock)."""
        ready = [link for link in self._links if link.said_hello]
        staying = [link for link in ready if not link.retiring]
        return (staying or ready)[-1] if ready else None

    def _wait_current(self, timeout: float = 10) -> Link:
        return self.wait_for(self._current, timeout, "a Socket Mode connection")

    def _send_envelope(self, link: Link, envelope: dict, again: bool = False) -> None:
        with self._lock:
            if envelope["envelope_id"] not in self._unacked:
                return  # acknowledged meanwhile
            if again:
                envelope["retry_attempt"] += 1
                envelope["retry_reason"] = "timeout"
            self.deliveries.append((envelope["envelope_id"], envelope["retry_attempt"], link.number))
            data = json.dumps(envelope)
        self._send(link, data)

    def _send_ws(self, data, opcode: int = 0x1) -> None:
        """On the current connection (the interactive envelopes of tests/slack_interactive.py)."""
        with self._lock:
            link = self._current()
        if link is None:
            raise AssertionError("no Socket Mode connection")
        self._send(link, data, opcode)

    def _send(self, link: Link, data, opcode: int = 0x1) -> None:
        if link.half_open:
            return  # lost on the way
        payload = data.encode("utf-8") if isinstance(data, str) else data
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        with link.send_lock:
            try:
                link.sock.sendall(header + payload)
            except OSError:
                pass  # the connection is gone: what was not acknowledged is sent again later


def _recv(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    first, second = _recv(sock, 2)
    opcode, masked, size = first & 0x0F, second & 0x80, second & 0x7F
    if size == 126:
        size = struct.unpack("!H", _recv(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _recv(sock, 8))[0]
    mask = _recv(sock, 4) if masked else b"\0\0\0\0"
    data = _recv(sock, size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))
