"""Socket Mode that never goes deaf: slack_sdk's built-in client, with what it lacks.

slack_sdk's client pings every ``ping_interval`` seconds, reconnects on a close frame and on
Slack's ``disconnect`` message, and its monitor reconnects a session it finds closed. It lacks:

- **A socket closed without a close frame** is not noticed: a ``recv`` answering ``b""`` (the peer
  is gone) is read as "nothing yet", in a busy loop, until the ping monitor gives up minutes later.
  Here the peer's end of the stream ends the session at once.
- **A half-open socket** (pings sent, no pong back) counts as dead only after a first pong came
  and four intervals passed; here after ``PONGS_MISSED`` intervals without a pong, first one
  included.
- **apps.connections.open failing or refused** was retried every ping interval for ever (or, at
  the first connection, ended ``serve_once``); here one keeper thread reconnects, waiting between
  failed attempts from ``first_delay`` doubling up to ``max_delay`` seconds, each wait drawn
  between half and all of that (jitter: bots that lost Slack together do not come back together).
- **Being told**: each connection's ``hello`` and each loss are reported (``link_up()``,
  ``link_down(why)``), so readiness and the metrics know when the bot cannot hear commands.

Envelopes are the backend's part (``FerrySlackBackend._sm_generic_event_handler``): one is run only
once its acknowledgement is sent, and an envelope already acknowledged is never run again.
"""
from __future__ import annotations

import errno
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin.client import SocketModeClient

log = logging.getLogger(__name__)

PONGS_MISSED = 3  # ping intervals without a pong after which a connection is dead


@dataclass(frozen=True)
class SocketSettings:
    ping_interval: float = 5.0  # seconds between two pings (slack_sdk's default)
    first_delay: float = 1.0  # seconds before the second attempt at a connection
    max_delay: float = 60.0  # the longest wait between two attempts

    @classmethod
    def from_identity(cls, identity: dict) -> "SocketSettings":
        """From ``BOT_IDENTITY``'s ``socket_ping_interval``, ``reconnect_first_delay`` and
        ``reconnect_max_delay`` (config.py reads them from the environment); defaults otherwise."""
        default = cls()
        ping = _seconds(identity.get("socket_ping_interval"), default.ping_interval)
        most = _seconds(identity.get("reconnect_max_delay"), default.max_delay)
        first = min(_seconds(identity.get("reconnect_first_delay"), default.first_delay), most)
        return cls(ping_interval=ping, first_delay=first, max_delay=most)


def _seconds(value, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def _failure(error: BaseException) -> str:
    """One line: Slack's error code when it answered one, else the error's first line."""
    response = getattr(error, "response", None)
    code = response.get("error") if isinstance(error, SlackApiError) and response is not None else None
    if code:
        return f"Slack answered {str(code)[:60]} (HTTP {getattr(response, 'status_code', '?')})"
    text = str(error).splitlines()[0][:160] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def reconnect_delay(failures: int, first: float, most: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row: none before the first retry of
    a fresh loss, then ``first`` doubling up to ``most``, each between half and all of it."""
    if failures <= 0:
        return 0.0
    ceiling = min(most, first * 2 ** min(failures - 1, 32))
    return ceiling * (0.5 + rand() / 2)


class EndOfStreamIsClosed:
    """A socket whose ``recv`` raises once the peer closed its end (``b""`` for a wanted size):
    slack_sdk then ends the session instead of reading nothing in a loop."""

    def __init__(self, sock):
        self._sock = sock

    def recv(self, size: int, *args):
        data = self._sock.recv(size, *args)
        if not data and size:
            raise ConnectionResetError(errno.ECONNRESET, "Slack closed the Socket Mode connection without a close frame")
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


def client_class(settings: SocketSettings, link_up: Callable[[], None], link_down: Callable[[str], None]):
    """slack_sdk's ``SocketModeClient`` as described above (SlackV3 builds it in ``serve_once``)."""

    class SteadySocketModeClient(SocketModeClient):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("ping_interval", settings.ping_interval)
            super().__init__(*args, **kwargs)
            self._wake, self._stop = threading.Event(), threading.Event()
            self._replace = None  # the session Slack asked to replace (its `disconnect`)
            self._why = "the Socket Mode connection was lost"
            self._down_since = None
            self.message_listeners.append(self._hello)
            self._keeper = threading.Thread(target=self._keep, name="ferry-slack-socket", daemon=True)

        # ---- what SlackV3 and slack_sdk call ------------------------------------------------

        def connect(self) -> None:
            """SlackV3's first connection: a failure is the keeper's to retry, not a crash."""
            if not self._open():
                self._went_down(self._why)
                self._wake.set()
            if not self._keeper.is_alive():  # after the first attempt: never two at once
                self._keeper.start()

        def connect_to_new_endpoint(self, force: bool = False):
            """slack_sdk asks for a new connection (a close frame, Slack's `disconnect`, its monitor):
            the keeper makes it, so no reader thread waits on Slack meanwhile."""
            if force:
                self._replace = self.current_session
            self._wake.set()

        def close(self) -> None:
            self._stop.set()
            self._wake.set()
            super().close()

        def _on_message(self, message: str):
            if '"disconnect"' in message[:200]:
                try:
                    reason = json.loads(message).get("reason")
                except ValueError:
                    reason = None
                log.info("Slack asks for a new Socket Mode connection (%s)", str(reason)[:40])
            super()._on_message(message)

        def _on_error(self, error: Exception):
            self._why = f"the Socket Mode connection failed: {_failure(error)}"
            super()._on_error(error)
            self._wake.set()

        def _on_close(self, code: int, reason=None):
            self._why = f"Slack closed the Socket Mode connection (code {code})"
            super()._on_close(code, reason)

        def _monitor_current_session(self):
            """slack_sdk's ping, then: no pong for ``PONGS_MISSED`` intervals is a dead socket."""
            session = self.current_session
            if session is not None and session.is_active():
                session.check_state()
                last = max(session.last_ping_pong_time or 0.0, getattr(session, "ferry_opened", 0.0))
                silent = time.time() - last
                if session.is_active() and last and silent > PONGS_MISSED * self.ping_interval:
                    self._why = f"no pong from Slack for {silent:.0f} s"
                    log.warning("Slack Socket Mode: %s; the connection is dead, closing it", self._why)
                    session.disconnect()
            if not self.is_connected():
                self._wake.set()

        # ---- the keeper --------------------------------------------------------------------

        def _keep(self) -> None:
            failures = 0
            while not self._stop.is_set():
                self._wake.wait(min(self.ping_interval, 1.0))
                self._wake.clear()
                if self._stop.is_set() or self.closed:
                    return
                replace = self._replace is not None and self._replace is self.current_session
                if self.is_connected() and not replace:
                    continue
                if not self.is_connected():
                    self._went_down(self._why)
                delay = reconnect_delay(failures, settings.first_delay, settings.max_delay)
                if delay:
                    log.warning("Slack Socket Mode: no connection: %s; attempt %d in %.1f s",
                                self._why, failures + 1, delay)
                if self._stop.wait(delay):
                    return
                if self._open():
                    failures, self._replace = 0, None
                else:
                    failures += 1
                    self._wake.set()

        def _open(self) -> bool:
            """A new connection (a fresh URL from apps.connections.open); False when none came."""
            try:
                with self.connect_operation_lock:
                    self.wss_uri = self.issue_new_wss_url()
                    SocketModeClient.connect(self)
            except Exception as e:  # any failure here is retried; the log says which
                self._why = f"apps.connections.open failed: {_failure(e)}"
                return False
            session = self.current_session
            if session is None or not session.is_active():
                self._why = "the WebSocket handshake with Slack failed"
                return False
            session.sock = EndOfStreamIsClosed(session.sock)
            session.ferry_opened = time.time()
            return True

        # ---- told ----------------------------------------------------------------------------

        def _hello(self, client, message: dict, raw=None):
            if message.get("type") != "hello":
                return
            if self._down_since is not None:
                log.info("Slack Socket Mode connected again after %.1f s without a connection",
                         time.monotonic() - self._down_since)
                self._down_since = None
            link_up()

        def _went_down(self, why: str) -> None:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            log.warning("Slack Socket Mode: no connection: %s; reconnecting", why)
            try:
                link_down(why)
            except Exception:  # being told must not stop the reconnecting
                log.exception("reporting the lost Slack connection failed")

    return SteadySocketModeClient
