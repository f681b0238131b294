"""A local Flux ``Receiver`` endpoint that checks a call the way notification-controller does, and
records each one.

notification-controller (fluxcd/notification-controller @ 2e46958a, internal/server/
receiver_handlers.go and api/v1/receiver_types.go): the webhook path is ``/hook/`` and the hex
SHA-256 of ``token + name + namespace``, looked up by the request URI exactly (404 when no
Receiver has it); the body is read up to 3 MiB (413 past it); a ``generic-hmac`` Receiver checks
``X-Signature`` with go-github's ``ValidateSignature`` (github/messages.go): the header split once
on ``=``, the prefix exactly ``sha1``, ``sha256`` or ``sha512``, the rest hex, equal to the HMAC
of the raw body keyed with the token; a mismatch is 400, a match 200.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

MAX_BODY = 3 * 1024 * 1024
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def webhook_path(token: str, name: str, namespace: str) -> str:
    """``Receiver.GetWebhookPath``: what its ``status.webhookPath`` shows."""
    return "/hook/" + hashlib.sha256((token + name + namespace).encode()).hexdigest()


def signature_valid(header: Optional[str], body: bytes, token: str) -> bool:
    """go-github's ``ValidateSignature(signature, payload, secretToken)`` as a yes or no."""
    if not header:
        return False
    prefix, sep, digest = header.partition("=")
    if not sep or prefix not in _HASHES:
        return False
    try:
        given = bytes.fromhex(digest)
    except ValueError:
        return False
    return hmac.compare_digest(given, hmac.new(token.encode(), body, _HASHES[prefix]).digest())


@dataclass(frozen=True)
class Call:
    path: str
    body: bytes
    signature: str
    status: int
    at: float  # time.monotonic() when it arrived


class FluxReceivers(ThreadingHTTPServer):
    """Receivers by webhook path (token, name, namespace); ``calls`` in arrival order."""

    def __init__(self, status: Optional[int] = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receivers: dict = {}
        self.calls: list = []
        self.status = status  # answer this instead of checking (a broken notification-controller)
        self.arrived = threading.Condition()
        self.on_call = None  # called with each accepted call's body (the bench's source-controller)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, token: str, name: str = "ferry", namespace: str = "flux-system") -> str:
        """A generic-hmac Receiver; its webhook URL."""
        path = webhook_path(token, name, namespace)
        self.receivers[path] = token
        return self.url + path

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        """The calls, once ``count`` have arrived (fails after ``timeout`` seconds)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.calls) >= count, timeout), self.calls
            return list(self.calls)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        server: FluxReceivers = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY + 1))
        signature = self.headers.get("X-Signature") or ""
        token = server.receivers.get(self.path)
        if server.status is not None:
            status = server.status
        elif len(body) > MAX_BODY:
            status = 413
        elif token is None:
            status = 404
        else:
            status = 200 if signature_valid(signature, body, token) else 400
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with server.arrived:
            server.calls.append(Call(self.path, body, signature, status, time.monotonic()))
            server.arrived.notify_all()
        if status == 200 and server.on_call is not None:
            server.on_call(body)

    def log_message(self, *args):
        pass
