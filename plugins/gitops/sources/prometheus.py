"""Prometheus's HTTP API, one instant query at a time (``GET /api/v1/query``), through the one
HTTP door (``transport``: a time bound, one attempt, no link-local or metadata address, no
``~/.netrc``); credentials only to the host they are bound to, never over plain HTTP to another
machine.

The answer (Prometheus's documented JSON): ``{"status": "success", "data": {"resultType":
"vector", "result": [{"metric": {…}, "value": [<time>, "<value>"]}]}}``, or ``{"status": "error",
"errorType": "bad_data", "error": "…"}`` with a 4xx/5xx status. A check is a comparison: a filter
comparison (``… < 1``) returns the samples that pass, with their own values, so a vector holds
when it has a sample, whatever its value; a scalar (``scalar(…) < bool 1``) when it is not 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import requests

from ..addresses import is_loopback
from ..errors import CheckUnreadable, FerryError
from ..safeyaml import load_json
from . import transport

MAX_ANSWER = 1024 * 1024  # bytes of one answer: a check's comparison returns a few samples
SHOWN = 5  # samples quoted in a figure


@dataclass(frozen=True)
class Reading:
    """One evaluation of a query: whether it holds, and what it returned, for people."""

    holds: bool
    figure: str  # "0.42", "0.42, 1.3 (+2 more)", "no sample"


def reading(answer) -> Reading:
    """Prometheus's parsed JSON answer to an instant query, as a ``Reading``; ``CheckUnreadable``
    when it is not one."""
    if not isinstance(answer, dict):
        raise CheckUnreadable("Prometheus answered something other than a JSON object.")
    if answer.get("status") != "success":
        kind, error = str(answer.get("errorType", "error")), str(answer.get("error", ""))[:300]
        raise CheckUnreadable(f"Prometheus refused the query ({kind}): {error}")
    data = answer.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise CheckUnreadable("Prometheus's answer has no `data.result`.")
    kind, result = data.get("resultType"), data["result"]
    if kind == "scalar":
        value = _number(result)
        return Reading(value != 0 and not math.isnan(value), _text(value))
    if kind != "vector":
        raise CheckUnreadable(f"the query returns a {kind}, not an instant vector or a scalar: "
                              "write it as a comparison such as `… < 1`.")
    values = [_number(sample.get("value") if isinstance(sample, dict) else None) for sample in result]
    if not values:
        return Reading(False, "no sample")
    shown = ", ".join(_text(v) for v in values[:SHOWN])
    more = f" (+{len(values) - SHOWN} more)" if len(values) > SHOWN else ""
    return Reading(True, shown + more)


def _number(pair) -> float:
    if not isinstance(pair, list) or len(pair) != 2:
        raise CheckUnreadable("a sample in Prometheus's answer is not [time, value].")
    try:
        return float(pair[1])
    except (TypeError, ValueError):
        raise CheckUnreadable(f"a sample's value is not a number: {str(pair[1])[:40]}") from None


def _text(value: float) -> str:
    return f"{value:.6g}"


class PrometheusClient:
    """Instant queries to the Prometheus servers the settings name; ``credentials``:
    ``host -> PrometheusCredentials`` (``Secrets.prometheus_host``)."""

    def __init__(self, credentials, timeout: float = 10.0):
        self.credentials = credentials
        self.timeout = timeout
        self.session = transport.bounded_session(timeout)

    def query(self, server: str, expr: str, at: Optional[float] = None) -> Reading:
        """Evaluate ``expr`` on ``server`` (its base URL), now or at ``at`` (epoch seconds)."""
        where = transport.origin(server)
        if where is None:
            raise CheckUnreadable(f"{server} is not a URL Ferry can connect to.")
        headers, auth = {"Accept": "application/json"}, None
        found = self.credentials(where.netloc)
        if found is not None:
            if where.scheme != "https" and not is_loopback(where.host):
                raise CheckUnreadable(f"{found.variables} would go over plain HTTP to {where.netloc}: "
                                      "serve Prometheus over HTTPS.")
            if found.token:
                headers["Authorization"] = f"Bearer {found.token}"
            else:
                auth = (found.username, found.password)
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{server.rstrip('/')}/api/v1/query"
        try:
            response = self.session.request("GET", url, params=params, headers=headers, auth=auth,
                                             timeout=self.timeout, allow_redirects=False, stream=True)
            with response:
                body = response.raw.read(MAX_ANSWER + 1, decode_content=True)
        except CheckUnreadable:
            raise
        except FerryError as e:  # a forbidden address, a busy host: the door's own words
            raise CheckUnreadable(f"Prometheus at {where.netloc}: {e}") from None
        except requests.RequestException as e:
            raise CheckUnreadable(f"Prometheus at {where.netloc} did not answer: "
                                  f"{type(e).__name__}") from None
        if len(body) > MAX_ANSWER:
            raise CheckUnreadable(f"Prometheus's answer is over {MAX_ANSWER} bytes: narrow the query.")
        if response.status_code in (401, 403):
            raise CheckUnreadable(f"Prometheus at {where.netloc} refused Ferry ({response.status_code}): "
                                  "check `prometheus_credentials`.")
        if 300 <= response.status_code < 400:
            raise CheckUnreadable(f"Prometheus at {where.netloc} answered with a redirect: set the "
                                  "check's `prometheus` to the server's own address.")
        try:
            answer = load_json(body, "Prometheus's answer")
        except FerryError:
            raise CheckUnreadable(f"Prometheus at {where.netloc} answered {response.status_code} "
                                  "without JSON.") from None
        return reading(answer)
