"""The one door every request to a chart source goes through: OCI registries, their token realms
and Helm repositories' indexes.

What every request needs is added here, whoever builds it (oras-py makes some itself, requests
follows redirects): a time bound and one attempt; no ``~/.netrc`` or proxy credentials; no
connection to a link-local or metadata address, checked on the address the socket reached (a
name that resolves there, or a redirect that leads there, is refused alike); and at most
``PER_HOST`` requests under way to one host, a request that cannot get a place within its wait
refused as busy, so a slow host holds the commands that need it and no others.

``origin`` is the one URL parser for deciding where credentials go: urllib3's, the parser the
connection itself uses, so a decision and the connection cannot disagree about the host
(``http://evil:80\\@registry/`` is ``evil`` to both; ``urlsplit`` says ``registry``).
"""
from __future__ import annotations

import threading
import weakref
from pathlib import Path
from dataclasses import dataclass
from typing import Optional

import certifi  # requests' own default CA bundle
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .. import addresses
from ..errors import ForbiddenAddress, SourceBusy

PER_HOST = 4  # requests under way to one host at once
BUSY_WAIT = 5.0  # seconds a request waits for a place before it is refused as busy


@dataclass(frozen=True)
class Origin:
    """Where a URL connects: its scheme, host (lower case) and port as the connection reads them."""

    scheme: str
    host: str
    port: Optional[int]
    userinfo: bool  # the URL names a user (and maybe a password) before the host

    @property
    def netloc(self) -> str:
        """``host[:port]`` the way settings name hosts (the port only when the URL has one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host


def origin(url: str) -> Optional[Origin]:
    """The origin ``url`` connects to, or None when the connection could not parse it either."""
    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError):
        return None
    if not parts.scheme or not parts.host:
        return None
    return Origin(parts.scheme.lower(), parts.host.lower().strip("[]"), parts.port, parts.auth is not None)


class _Guarded:
    """Refuses a link-local or metadata address: before connecting, whatever the host resolves
    to; after, the address the socket reached (the name may resolve elsewhere the second time)."""

    def _new_conn(self):
        address = addresses.forbidden_address_of(self.host, self.port)
        if address is not None:
            raise ForbiddenAddress(addresses.refusal(self.host, address))
        sock = super()._new_conn()
        address = sock.getpeername()[0]
        if addresses.forbidden(address):
            sock.close()
            raise ForbiddenAddress(addresses.refusal(self.host, address))
        return sock


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class HostSlots:
    """At most ``limit`` requests under way per host; shared by every session of the process."""

    def __init__(self, limit: int = PER_HOST):
        self.limit = limit
        self._lock = threading.Lock()
        self._slots: dict = {}  # netloc -> BoundedSemaphore

    def take(self, netloc: str, wait: float) -> bool:
        with self._lock:
            slot = self._slots.setdefault(netloc, threading.BoundedSemaphore(self.limit))
        return slot.acquire(timeout=wait)

    def give(self, netloc: str) -> None:
        with self._lock:
            slot = self._slots[netloc]
        slot.release()


SLOTS = HostSlots()


class TimeoutAdapter(HTTPAdapter):
    """Gives every request of a session a timeout, no retries, guarded connections and a place
    among its host's ``PER_HOST``, whoever builds the request."""

    def __init__(self, timeout: float, busy_wait: float = BUSY_WAIT):
        self.timeout, self.busy_wait = timeout, busy_wait
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def send(self, request, timeout=None, **kwargs):
        where = origin(request.url)
        netloc = where.netloc if where is not None else ""
        if not SLOTS.take(netloc, self.busy_wait):
            raise SourceBusy(f"{netloc} is busy: {SLOTS.limit} requests to it are still waiting for "
                             "answers. Try again in a moment.")
        try:
            response = super().send(request, timeout=timeout or self.timeout, **kwargs)
        except BaseException:
            SLOTS.give(netloc)
            raise
        if kwargs.get("stream"):
            _release_on_close(response, netloc)
        else:
            SLOTS.give(netloc)
        return response


def _release_on_close(response: requests.Response, netloc: str) -> None:
    """A streamed body is still being read: the host's place is given back when it is closed
    (read to the end, or closed unread)."""
    released = threading.Event()
    raw_release = response.raw.release_conn

    def give_back():
        if not released.is_set():
            released.set()
            SLOTS.give(netloc)

    def release_conn():
        try:
            raw_release()
        finally:
            give_back()

    response.raw.release_conn = release_conn
    closing = response.close

    def close():
        try:
            closing()
        finally:
            give_back()

    response.close = close
    weakref.finalize(response, give_back)  # dropped unclosed: the place comes back all the same


def bounded_session(timeout: float, busy_wait: float = BUSY_WAIT) -> requests.Session:
    """A session whose every request is bounded by ``timeout`` and never reads ``~/.netrc`` or
    proxy credentials from the environment: credentials come from Ferry's settings only."""
    session = requests.Session()
    mount(session, timeout, busy_wait)
    return session


def mount(session: requests.Session, timeout: float, busy_wait: float = BUSY_WAIT) -> None:
    adapter = TimeoutAdapter(timeout, busy_wait)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False


def trusted(extra_ca_file: str, directory) -> "bool | str":
    """What HTTPS is checked against: the default CAs (True), or, with ``extra_ca_file``, a bundle
    of the default CAs and those (written once into ``directory``): a private CA is added, the
    public registries stay trusted."""
    if not extra_ca_file:
        return True
    bundle = Path(directory) / "ca-bundle.pem"
    text = Path(certifi.where()).read_text(encoding="ascii", errors="ignore").rstrip("\n") + "\n" + \
        Path(extra_ca_file).read_text(encoding="ascii", errors="ignore")
    bundle.parent.mkdir(parents=True, exist_ok=True)
    if not bundle.is_file() or bundle.read_text(encoding="ascii", errors="ignore") != text:
        bundle.write_text(text, encoding="ascii")
    return str(bundle)


def send(session: requests.Session, method: str, url: str, *, timeout: float,
         headers: Optional[dict] = None, params: Optional[dict] = None, data=None, json=None,
         stream: bool = False, verify=True, allow_redirects: bool = False) -> requests.Response:
    """Send one request, once. Redirects are not followed unless asked: a caller holding
    credentials follows them itself, deciding at each hop what may go there."""
    return session.request(method, url, headers=headers, params=params, data=data, json=json,
                           stream=stream, verify=verify, timeout=timeout,
                           allow_redirects=allow_redirects)
