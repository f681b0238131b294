"""The one door every request to a chart source goes through: OCI registries, their token realms
and Helm repositories' indexes.

One function, so that what every request needs is added in one place (a time bound here, metrics
later): callers build the request, this sends it exactly once.
"""
from __future__ import annotations

from typing import Optional

import requests
from requests.adapters import HTTPAdapter


class TimeoutAdapter(HTTPAdapter):
    """Gives every request of a session a timeout and no retries, whoever builds the request
    (oras-py makes some itself)."""

    def __init__(self, timeout: float):
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=timeout or self.timeout, **kwargs)


def bounded_session(timeout: float) -> requests.Session:
    """A session whose every request is bounded by ``timeout`` and never reads ``~/.netrc`` or
    proxy credentials from the environment: credentials come from Ferry's settings only."""
    session = requests.Session()
    mount(session, timeout)
    return session


def mount(session: requests.Session, timeout: float) -> None:
    adapter = TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False


def send(session: requests.Session, method: str, url: str, *, timeout: float,
         headers: Optional[dict] = None, params: Optional[dict] = None, data=None, json=None,
         stream: bool = False, verify=True, allow_redirects: bool = False) -> requests.Response:
    """Send one request, once. Redirects are not followed unless asked: a caller holding
    credentials follows them itself, deciding at each hop what may go there."""
    return session.request(method, url, headers=headers, params=params, data=data, json=json,
                           stream=stream, verify=verify, timeout=timeout,
                           allow_redirects=allow_redirects)
