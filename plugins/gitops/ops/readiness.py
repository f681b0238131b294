"""Readiness: Ferry takes traffic once it has its settings, a clone of each repository and chat.

Liveness (``/ferry/health``) says the process answers; readiness (``/ferry/ready``) says it can do
its work. Kubernetes keeps an unready pod out of its Service, so readiness must not fall when Git
has an outage later: Flux's events still have to arrive, and a clone once held keeps serving reads.
A repository counts as held from the moment its first clone (or the check of a clone left on the
volume by an earlier run) succeeds, and stays held; how stale it is since is the metric
``ferry_git_last_fetch_timestamp_seconds``.

``Clones`` makes the first clones in a background thread at start, retrying with a growing pause
(a readiness probe asking while one is missing starts the next attempt sooner), so a first clone
does not wait for the first command. A first clone is of the tip only (its history follows in the
background: ``workspace.fullclone``), so a long history does not keep a pod unready. ``verdict``
is the pure decision.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Mapping, Optional

from ..errors import FerryError

log = logging.getLogger(__name__)

FIRST_PAUSE, MAX_PAUSE = 1.0, 60.0  # seconds between two attempts at a first clone (doubling)
MIN_NUDGE = 1.0  # seconds: probes asking more often do not make attempts more often


def verdict(settings_loaded: bool, connected: bool, missing: Mapping[str, str],
            chat_lost: str = "") -> tuple[bool, str]:
    """(ready, one line saying why not). ``missing``: repository -> why it has no clone yet;
    ``chat_lost``: why chat is not connected, once it was (the connection was lost)."""
    if not settings_loaded:
        return False, "Not ready: the settings are not loaded."
    if missing:
        repo, why = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more repositories)" if len(missing) > 1 else ""
        return False, f"Not ready: no clone of {repo} yet{more}: {why}"
    if not connected and chat_lost:
        return False, f"Not ready: not connected to chat, reconnecting: {chat_lost}"
    if not connected:
        return False, "Not ready: not connected to chat yet."
    return True, "ready"


class ChatLink:
    """Whether the bot hears chat: connected or not (and why not), how often it connected again
    after losing its connection, and how many seconds it was without one since it first had one."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.connected, self.lost = False, ""  # lost: why the connection is gone ("" if never had)
        self.reconnects = 0
        self._deaf, self._since = 0.0, None  # seconds of earlier outages; when this one began
        self._lock = threading.Lock()

    def up(self) -> None:
        with self._lock:
            if self._since is not None:
                self._deaf += self.clock() - self._since
                self._since = None
                self.reconnects += 1
            self.connected, self.lost = True, ""

    def down(self, why: str) -> None:
        """The connection is gone (``why``: one line); counted only once the bot had one."""
        with self._lock:
            if self.connected:
                self._since = self.clock()
            if self._since is not None:
                self.lost = (why or "the chat connection was lost.").splitlines()[0][:300]
            self.connected = False

    def seconds_without(self) -> float:
        with self._lock:
            return self._deaf + (self.clock() - self._since if self._since is not None else 0.0)


class Clones:
    """The first clone of each repository, made in the background; ``missing()`` says which are
    not held yet and why. ``workspaces``: a label (the repository's public URL) -> its workspace."""

    def __init__(self, workspaces: Mapping[str, object], first_pause: float = FIRST_PAUSE,
                 max_pause: float = MAX_PAUSE):
        self.workspaces = dict(workspaces)
        self.first_pause, self.max_pause = first_pause, max_pause
        self._held: set = set()
        self._why = {label: "the first clone is running." for label in self.workspaces}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_nudge = 0.0
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ferry-first-clones", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def missing(self) -> dict:
        """Repositories without a clone yet -> why; asking while one is missing nudges a retry."""
        with self._lock:
            for label, ws in self.workspaces.items():
                if label not in self._held and ws.cloned:  # a command may have cloned it meanwhile
                    self._held.add(label)
            missing = {label: self._why[label] for label in self.workspaces if label not in self._held}
            if missing and time.monotonic() - self._last_nudge >= MIN_NUDGE:
                self._last_nudge = time.monotonic()
                self._wake.set()
        return missing

    def _run(self) -> None:
        pause = self.first_pause
        while not self._stop.is_set():
            if not self._attempt():
                return  # every repository is held
            self._wake.wait(pause)
            self._wake.clear()
            pause = min(self.max_pause, pause * 2)

    def _attempt(self) -> bool:
        """Try each repository not held yet; True while one is still missing."""
        left = False
        for label, ws in self.workspaces.items():
            if self._stop.is_set() or label in self._held:
                continue
            try:
                ws.head()
                why = ""
            except FerryError as e:  # a typed Git error: its message names the remote, scrubbed
                why = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            except Exception as e:  # not ours to explain here: the log has it
                log.exception("the first clone of %s failed", label)
                why = f"the clone failed ({type(e).__name__}; the bot's log has the details)."
            with self._lock:
                # A clone left by an earlier run counts even when the fetch after it failed.
                if ws.cloned:
                    self._held.add(label)
                    if why:
                        log.warning("%s: using the clone on disk; fetching failed: %s", label, why)
                else:
                    self._why[label] = why or "the first clone is running."
                    left = True
                    log.warning("no clone of %s yet: %s", label, self._why[label])
        return left
