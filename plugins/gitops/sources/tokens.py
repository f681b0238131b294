"""Bearer tokens of one registry host, kept per repository scope until they expire.

Docker's token authentication (https://distribution.github.io/distribution/spec/auth/token/) hands
out a token per scope (``repository:charts/podinfo:pull``) valid for ``expires_in`` seconds (60
when the answer does not say). Keeping one token per host meant that moving from one chart to the
next on the same registry cost a refused request and a token round trip each time; kept per scope,
each chart's token is asked once and reused until shortly before it expires.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable, Optional
from urllib.parse import urlsplit

DEFAULT_EXPIRES_IN = 60.0  # seconds, per the token spec when `expires_in` is absent
MARGIN = 5.0  # give a token up a little before it expires: a request may be under way when it does
MAX_TOKENS = 512  # scopes kept per host; the oldest go first past it

# /v2/<name>/tags/list, /v2/<name>/manifests/<reference>, /v2/<name>/blobs/<digest>
_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:tags/list|manifests/[^/]+|blobs/[^/]+)$")


def scope_of(url: str) -> str:
    """The pull scope a request on ``url`` needs (``repository:<name>:pull``), or "" for a
    request outside any repository (``/v2/``)."""
    match = _REPOSITORY_PATH.match(urlsplit(url).path)
    return f"repository:{match.group('name')}:pull" if match else ""


def lifetime(body: dict) -> float:
    """Seconds a token answer is valid for: its ``expires_in``, 60 when absent or not a number."""
    value = body.get("expires_in") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_EXPIRES_IN
    return float(value)


class TokenCache:
    """``Authorization`` headers by scope, each until its expiry; safe to share between threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._headers: dict = {}  # scope -> (expires at, header)

    def get(self, scope: str) -> Optional[str]:
        with self._lock:
            entry = self._headers.get(scope)
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._headers[scope]
                return None
            return entry[1]

    def put(self, scope: str, header: str, expires_in: float = DEFAULT_EXPIRES_IN) -> None:
        now = self._clock()
        with self._lock:
            if len(self._headers) >= MAX_TOKENS:
                for key in [k for k, (t, _) in self._headers.items() if now >= t] or \
                        list(self._headers)[: len(self._headers) - MAX_TOKENS + 1]:
                    del self._headers[key]
            self._headers[scope] = (now + max(expires_in - MARGIN, expires_in / 2), header)

    def drop(self, scope: str) -> None:
        with self._lock:
            self._headers.pop(scope, None)

    def __len__(self) -> int:
        return len(self._headers)
