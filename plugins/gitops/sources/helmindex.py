"""Chart versions from classic Helm repositories: the ``index.yaml`` a Flux ``HelmRepository``
without ``type: oci`` points at (``<url>/index.yaml``, served by any static host).

What a chat bot needs from it, and why:

- bounded: each read waits at most ``timeout`` seconds, the whole download at most ``seconds``,
  and an index larger than ``max_bytes`` (after decompression, so a small gzip cannot blow up) is
  refused in one line rather than read into memory;
- cached: one parse per repository serves every chart in it for ``cache_seconds``; after that the
  repository is asked conditionally (``If-None-Match`` / ``If-Modified-Since``) and a ``304``
  keeps the parse, so a large public index is downloaded again only when it changed;
- fast and safe: the loader's plain data from libyaml's events (``safeyaml``: bounded nesting and
  aliases), or ``json`` when the index is JSON (Helm's ``repo index --json``; JSON is YAML, so
  servers serve it under the same name): tens of MB in seconds, where a pure-Python parser takes
  minutes, and a 0.6 KB alias bomb is one line about its repository;
- credentials from ``registry_credentials`` go to their own host only (as ``transport.origin``,
  the connection's own parser, reads a URL; never to a URL naming a user): over HTTPS, or plain
  HTTP when their entry says ``plain_http`` (an ``http://`` URL in Git is not enough), never along
  a redirect to another host or to chart URLs in the index that name another host. Redirects are
  followed here, hop by hop;
- one download per index at a time; another command waits at most ``busy_seconds`` for it and is
  then told the repository is busy, rather than holding a chat worker.
"""
from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Callable, Mapping, Optional
from urllib.parse import urljoin, urlsplit

import requests

from . import transport
from .. import safeyaml
from ..errors import RegistryUnauthorized, RegistryUnavailable, SourceBusy, UnreadableDocument
from ..ops.metrics import observed_request
from ..model import ChartLocation
from ..settings import RegistryCredentials

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
CHANGES = "artifacthub.io/changes"
MAX_REDIRECTS = 5
CHUNK = 256 * 1024


@dataclass(frozen=True)
class IndexEntry:
    """One chart version as the index lists it."""

    version: str
    app_version: str = ""
    description: str = ""
    created: str = ""
    digest: str = ""
    urls: tuple = ()  # as written: relative to the index, or absolute
    changes: str = ""  # its `artifacthub.io/changes` annotation (`!preview` lists the notes between)


@dataclass
class _Cached:
    charts: dict  # chart name -> {version: IndexEntry}
    expires: float
    etag: str = ""
    last_modified: str = ""


class UnreadableIndex(RegistryUnavailable):
    """The index cannot be read (not an outage of the host)."""


def parse_index(data: bytes, where: str = "index.yaml", max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """{chart: {version: IndexEntry}} from an index's bytes (YAML, or JSON), read within the
    loader's bounds (``max_bytes``: the download's own)."""
    limits = replace(safeyaml.LIMITS, bytes=max_bytes)
    document = None
    try:
        if data.lstrip()[:1] == b"{":  # Helm's `repo index --json`: JSON is YAML, json is faster
            try:
                document = safeyaml.load_json(data, where, limits)
            except UnreadableDocument:
                pass  # YAML's flow style, or a problem the YAML reading names the same way
        if document is None:
            document = safeyaml.load_yaml(data, where, limits)
    except UnreadableDocument as e:
        raise UnreadableIndex(f"{where} {e.problem}: Ferry cannot read its versions.") from None
    entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise UnreadableIndex(f"{where} has no `entries`: it is not a Helm repository index.")
    charts = {}
    for name, versions in entries.items():
        if not isinstance(versions, list):
            continue
        found = {}
        for item in versions:
            if not isinstance(item, dict) or item.get("version") is None:
                continue
            version = str(item["version"])
            urls = item.get("urls")
            annotations = item.get("annotations")
            changes = annotations.get(CHANGES) if isinstance(annotations, dict) else None
            found.setdefault(version, IndexEntry(
                version, _text(item.get("appVersion")), _text(item.get("description")),
                _text(item.get("created")), _text(item.get("digest")),
                tuple(str(u) for u in urls) if isinstance(urls, list) else (),
                changes if isinstance(changes, str) else ""))
        charts[str(name)] = found
    return charts


def archive_url(location: ChartLocation, entry: IndexEntry) -> str:
    """The chart archive's absolute URL: Helm resolves a relative one against the repository URL."""
    if not entry.urls:
        return ""
    return urljoin(location.repository_url.rstrip("/") + "/", entry.urls[0])


class HelmIndexClient:
    """Indexes of Helm repositories, cached per repository; safe to share between threads."""

    observe = None  # metrics.Metrics, or None: each request counted and timed

    def __init__(self, credentials: Mapping[str, RegistryCredentials] = None, timeout: float = 5.0,
                 seconds: float = 30.0, max_bytes: int = DEFAULT_MAX_BYTES,
                 cache_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 busy_seconds: float = transport.BUSY_WAIT):
        self._credentials = {h.lower(): c for h, c in (credentials or {}).items()}
        self.timeout, self.seconds, self.max_bytes = timeout, seconds, max_bytes
        self.cache_seconds = cache_seconds
        self._clock = clock
        self.busy_seconds = busy_seconds
        self._session = transport.bounded_session(timeout, busy_seconds)
        self.verify = True  # or the CA bundle (a path) HTTPS is checked against: `registry_ca_file`
        self._lock = threading.Lock()
        self._cache: dict = {}  # index URL -> _Cached
        self._fetching: dict = {}  # index URL -> lock: one download per repository at a time
        self.downloads = 0  # full index bodies read (a 304 is not one): for tests and the bench

    def entries(self, location: ChartLocation) -> dict:
        """{version: IndexEntry} of the location's chart; {} when the index does not list it."""
        return self._index(location.index_url).get(location.chart, {})

    def invalidate(self, location: Optional[ChartLocation] = None) -> None:
        """Ask again next time (conditionally: an unchanged index is not downloaded again)."""
        with self._lock:
            for url, cached in self._cache.items():
                if location is None or url == location.index_url:
                    cached.expires = 0.0

    def close(self) -> None:
        self._session.close()

    def archive(self, location: ChartLocation, entry: IndexEntry) -> bytes:
        """The chart archive of one index entry (``urls[0]``, relative or absolute), bounded like
        the index; credentials only where ``get`` lets them go."""
        url = archive_url(location, entry)
        if not url:
            raise UnreadableIndex(f"The index of {location.repository_url} lists no URL for "
                                  f"{location.chart} {entry.version}.")
        with self.download(url) as response:
            return self._body(url, response, time.monotonic(), f"The chart archive {url}")

    def download(self, url: str) -> requests.Response:
        """The streamed response of a chart archive at ``url`` (redirects and credentials as
        ``get`` follows them), its status checked (a typed refusal else). The caller reads it
        within its own bounds (a failed read: ``unreachable``) and closes it."""
        response, _ = self.get(url, {"Accept": "application/gzip, application/octet-stream, */*"})
        if response.status_code != 200:
            response.close()
            raise self.refused(url, response.status_code)
        return response

    def may_receive_credentials(self, url: str) -> Optional[RegistryCredentials]:
        """The credentials bound to ``url``'s host, when they may travel to it: HTTPS, or plain
        HTTP when their entry says the host is plain HTTP (an ``http://`` URL from Git is not
        enough). None for a URL naming a user."""
        where = transport.origin(url)
        if where is None or where.userinfo:
            return None
        credentials = self._credentials.get(where.netloc)
        if credentials is None or where.scheme == "https":
            return credentials
        return credentials if where.scheme == "http" and credentials.plain_http else None

    # ---- the index -------------------------------------------------------------------------

    def _index(self, url: str) -> dict:
        cached = self._fresh(url)
        if cached is not None:
            return cached.charts
        with self._lock:
            gate = self._fetching.setdefault(url, threading.Lock())
        if not gate.acquire(timeout=self.busy_seconds):
            raise SourceBusy(f"Helm repository {_repository(url)} is busy: another command is still "
                             "waiting for its index. Try again in a moment.")
        try:
            cached = self._fresh(url)  # another thread may have fetched it meanwhile
            if cached is not None:
                return cached.charts
            with self._lock:
                stale = self._cache.get(url)
            return self._refresh(url, stale)
        finally:
            gate.release()

    def _fresh(self, url: str) -> Optional[_Cached]:
        with self._lock:
            cached = self._cache.get(url)
            return cached if cached is not None and self._clock() < cached.expires else None

    def _refresh(self, url: str, stale: Optional[_Cached]) -> dict:
        headers = {"Accept": "application/x-yaml, application/yaml, application/json;q=0.9, */*;q=0.8"}
        if stale is not None and stale.etag:
            headers["If-None-Match"] = stale.etag
        if stale is not None and stale.last_modified:
            headers["If-Modified-Since"] = stale.last_modified
        started = time.monotonic()
        response, final_url = self.get(url, headers)
        with response:
            if response.status_code == 304 and stale is not None:
                stale.expires = self._clock() + self.cache_seconds
                log.debug("index %s unchanged (304)", url)
                return stale.charts
            if response.status_code != 200:
                raise self.refused(url, response.status_code)
            data = self._body(url, response, started)
            etag = response.headers.get("ETag", "")
            last_modified = response.headers.get("Last-Modified", "")
        charts = parse_index(data, f"The index of {_repository(url)}", self.max_bytes)
        self.downloads += 1
        log.debug("read index %s (%d bytes, %d charts) in %.3f s", final_url, len(data), len(charts),
                  time.monotonic() - started)
        cached = _Cached(charts, self._clock() + self.cache_seconds, etag, last_modified)
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[url] = cached
        return charts

    def get(self, url: str, headers: dict) -> tuple:
        """(streamed response, final URL) for a GET of ``url``, redirects followed hop by hop:
        each hop carries only the credentials of its own host, when they may go there."""
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            credentials = self.may_receive_credentials(url)
            if credentials is not None:
                sent["Authorization"] = _basic(credentials)
            try:
                response = self._send(url, sent)
            except requests.RequestException as e:
                raise self.unreachable(url, e) from e
            if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
                return response, url
            response.close()
            url = urljoin(url, response.headers["Location"])
        raise RegistryUnavailable(f"Helm repository {_repository(url)} redirected more than "
                                  f"{MAX_REDIRECTS} times: gave up.")

    @observed_request
    def _send(self, url: str, headers: dict) -> requests.Response:
        return transport.send(self._session, "GET", url, headers=headers, timeout=self.timeout,
                              stream=True, verify=self.verify)

    def _body(self, url: str, response: requests.Response, started: float, what: str = "") -> bytes:
        limit = self.max_bytes
        thing = "a chart archive" if what else "its index"
        what = what or f"The index of Helm repository {_repository(url)}"
        too_big = RegistryUnavailable(
            f"{what} is larger than {_size(limit)}: raise `helm_index.max_mb` in the settings if "
            "that is expected.")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit and not response.headers.get("Content-Encoding"):
            raise too_big
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_big
                if time.monotonic() - started > self.seconds:
                    raise RegistryUnavailable(
                        f"Helm repository {_repository(url)} did not send "
                        f"{thing} within {self.seconds:g} s "
                        "(`helm_index.timeout` in the settings).", outage=True)
                chunks.append(chunk)
        except requests.RequestException as e:
            raise self.unreachable(url, e) from e
        return b"".join(chunks)

    def refused(self, url: str, status: int) -> RegistryUnavailable:
        """The typed error of a refusal or an error status from the repository at ``url``."""
        where = _repository(url)
        where_to = transport.origin(url)
        host = where_to.netloc if where_to is not None else urlsplit(url).netloc.lower()
        if status in (401, 403):
            credentials = self._credentials.get(host)
            if credentials is not None and self.may_receive_credentials(url) is None:
                return RegistryUnauthorized(
                    f"Helm repository {where} wants credentials ({status}), and Git asks for it over "
                    f"plain HTTP: Ferry sends {credentials.variables} over HTTPS only, unless its "
                    "`registry_credentials` entry says `plain_http: true`.")
            if credentials is not None:
                return RegistryUnauthorized(f"Helm repository {where} refused Ferry's credentials "
                                            f"({status}): check {credentials.variables}.")
            return RegistryUnauthorized(f"Helm repository {where} wants credentials ({status}): give "
                                        f"{host} its own in the settings' `registry_credentials`.")
        if status == 404:
            return RegistryUnavailable(f"Helm repository {where} has no index.yaml (404): check the "
                                       "HelmRepository's `spec.url`.")
        try:
            phrase = f" ({HTTPStatus(status).phrase})"
        except ValueError:
            phrase = ""
        return RegistryUnavailable(f"Helm repository {where} answered {status}{phrase}.",
                                   outage=status >= 500)

    def unreachable(self, url: str, error: requests.RequestException) -> RegistryUnavailable:
        """The typed error of a request to ``url`` that got no (whole) answer."""
        where, text = _repository(url), str(error).lower()
        if isinstance(error, requests.Timeout) or "timed out" in text:
            return RegistryUnavailable(f"Helm repository {where} did not answer within {self.timeout:g} s.",
                                       outage=True)
        if isinstance(error, requests.exceptions.SSLError):
            return RegistryUnavailable(f"Helm repository {where} failed the TLS handshake.")
        if "refused" in text:
            return RegistryUnavailable(f"Helm repository {where} cannot be reached: connection refused.",
                                       outage=True)
        if "resolve" in text or "name or service not known" in text or "nodename" in text:
            return RegistryUnavailable(f"Helm repository {where} cannot be reached: its name does not "
                                       "resolve.", outage=True)
        return RegistryUnavailable(f"Helm repository {where} cannot be reached: the connection failed.",
                                   outage=True)


def _repository(index_url: str) -> str:
    """The repository's URL for messages: the index URL without ``/index.yaml``, no userinfo."""
    parts = urlsplit(index_url)
    path = parts.path[: -len("/index.yaml")] if parts.path.endswith("/index.yaml") else parts.path
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{path}"


def _basic(credentials: RegistryCredentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _text(value) -> str:
    return "" if value is None else str(value)
