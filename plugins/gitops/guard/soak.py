"""What "healthy" means after Flux reports a release live, and how long a version soaks before it
may be promoted: an environment's ``verify``, ``on_failure`` and ``promote_after`` settings, and
the soak blocker of a promotion, as pure functions (callers pass ``now`` and the records).

``verify: {checks: [{prometheus: URL, query: '… < 1', for: 5m}], interval: 30s}``: after the
live event, every check's query is evaluated each ``interval``; a check holds when every
evaluation over its ``for`` is true (a comparison query returning no sample is false). The first
false evaluation fails the verification. ``on_failure: rollback`` reverts a failed change with a
commit of its own; ``notify`` (the default) only says so. ``promote_after: 30m``: a version leaves
the environment by promotion only once it has been verified there that long.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ..errors import SettingsError
from ..model import Blocker

ON_FAILURE = ("notify", "rollback")
DEFAULT_INTERVAL = 30.0  # seconds between two evaluations of the checks
MAX_QUERY = 4000  # characters of a PromQL query
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class Check:
    """One Prometheus query that must hold for ``seconds`` after the release is live."""

    prometheus: str  # the server's base URL: http(s)://host[:port][/path]
    query: str  # a comparison: a sample returned means it holds
    seconds: float  # ``for``
    name: str = ""  # how the thread calls it ("" = the query)

    @property
    def label(self) -> str:
        return self.name or self.query


@dataclass(frozen=True)
class Verify:
    """An environment's verification after Flux reports a change live."""

    checks: tuple = ()  # tuple[Check, ...]; none: live is verified
    interval: float = DEFAULT_INTERVAL
    on_failure: str = "notify"
    promote_after: float = 0.0  # seconds verified before a promotion out of the environment

    @property
    def soak(self) -> float:
        """How long after the live event the checks must all hold."""
        return max((c.seconds for c in self.checks), default=0.0)


def seconds(raw, where: str) -> float:
    """``30``, ``"90s"``, ``"5m"``, ``"1h"``: a duration in seconds (a bare number is seconds)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise SettingsError(f"`{where}` must be a duration such as 30s, 5m or 1h.")
    match = _DURATION.match(str(raw))
    if not match:
        raise SettingsError(f"`{where}` must be a duration such as 30s, 5m or 1h, not `{str(raw)[:40]}`.")
    value = float(match.group(1)) * _UNIT[match.group(2)]
    if not 0 <= value <= 7 * 86400:
        raise SettingsError(f"`{where}` must be at most 7 days.")
    return value


def parse_verify(env: dict, where: str) -> Optional[Verify]:
    """The ``verify``, ``on_failure`` and ``promote_after`` keys of one environment; None when it
    sets none of them (nothing is verified there)."""
    if not {"verify", "on_failure", "promote_after"} & set(env):
        return None
    raw = env.get("verify") or {}
    if not isinstance(raw, dict) or set(raw) - {"checks", "interval"}:
        raise SettingsError(f"`{where}.verify` must be {{checks: [{{prometheus: URL, query: '… < 1', "
                            "for: 5m}], interval: 30s}.")
    checks_raw = raw.get("checks", [])
    if not isinstance(checks_raw, list):
        raise SettingsError(f"`{where}.verify.checks` must be a list of {{prometheus, query, for}}.")
    checks = tuple(_check(c, f"{where}.verify.checks[{i}]") for i, c in enumerate(checks_raw))
    interval = seconds(raw.get("interval", DEFAULT_INTERVAL), f"{where}.verify.interval")
    if interval <= 0:
        raise SettingsError(f"`{where}.verify.interval` must be more than 0 seconds.")
    on_failure = env.get("on_failure", "notify")
    if on_failure not in ON_FAILURE:
        raise SettingsError(f"`{where}.on_failure` must be `notify` (the default: say so) or `rollback` "
                            "(revert the change with a commit of its own).")
    return Verify(checks, interval, on_failure, seconds(env.get("promote_after", 0), f"{where}.promote_after"))


def _check(raw, where: str) -> Check:
    if not isinstance(raw, dict) or set(raw) - {"prometheus", "query", "for", "name"} \
            or not {"prometheus", "query"} <= set(raw):
        raise SettingsError(f"`{where}` must be {{prometheus: http://host:9090, query: '… < 1', for: 5m}}.")
    url = raw["prometheus"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"`{where}.prometheus` must be the server's URL, such as http://prometheus:9090.")
    if "@" in parts.netloc:
        raise SettingsError(f"`{where}.prometheus` holds credentials: use `prometheus_credentials` instead.")
    query = raw["query"]
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        raise SettingsError(f"`{where}.query` must be a PromQL comparison such as "
                            "'sum(rate(http_requests_total{code=~\"5..\"}[2m])) < 1'.")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise SettingsError(f"`{where}.name` must be text.")
    return Check(url.rstrip("/"), query.strip(), seconds(raw.get("for", 0), f"{where}.for"), name.strip())


# ---- the soak blocker -------------------------------------------------------------------------

def soak_blocker(app: str, version: str, environment: str, promote_after: float,
                 verified_at: Optional[float], now: float) -> Optional[Blocker]:
    """What stands in the way of promoting ``version`` of ``app`` out of ``environment``: not
    verified there yet (``verified_at`` None), or verified less than ``promote_after`` ago."""
    if promote_after <= 0:
        return None
    if verified_at is None:
        return Blocker("soak", f"soak {environment}/{app} {version} unverified",
                       f"`{app}` {version} is not verified in {environment} yet: it must be verified "
                       f"there and soak {_duration(promote_after)} before it is promoted")
    remaining = verified_at + promote_after - now
    if remaining <= 0:
        return None
    return Blocker("soak", f"soak {environment}/{app} {version} since {verified_at:.0f}",
                   f"`{app}` {version} has soaked in {environment} for {_duration(now - verified_at)} "
                   f"of {_duration(promote_after)}: {_duration(math.ceil(remaining))} remain")


def _duration(value: float) -> str:
    s = int(round(max(0.0, value)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s" if s % 60 else f"{s // 60}m"
    return f"{s // 3600}h {s % 3600 // 60}m" if s % 3600 // 60 else f"{s // 3600}h"
