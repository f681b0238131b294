"""The Helm OCI registry client: which versions of a chart exist, and what one version says.

Built on oras-py's ``Registry`` for the OCI HTTP API (tag listing with ``Link`` pagination, blob
URLs, the bearer-token dance), with three things changed because a chat bot must answer in seconds
and must never leak a secret:

- every request goes out once, bounded by ``timeout``: oras wraps ``do_request`` in ``@retry``,
  which sleeps about 131 s in total on any exception, connection refused included, and sends
  requests without any timeout;
- errors are typed (``RegistryUnavailable``, ``RegistryUnauthorized``) with a one-line message
  naming the registry host, never the credentials; oras raises a plain ``ValueError`` for all;
- credentials come only from Ferry's settings (no Docker config, no ``ORAS_USER``, no netrc) and
  are bound to one host: they go to that host, and to the token realm its challenge names only
  when the realm is on the same host name or on a host the settings allow (``token_hosts``);
  a realm anywhere else is asked for an anonymous token. oras's own token code would send them to
  any realm, so challenges are answered here.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from http import HTTPStatus
from typing import Callable, Iterable, Optional
from urllib.parse import urljoin, urlsplit

import oras.auth.utils
import oras.container
import oras.defaults
import oras.provider
import requests
from requests.adapters import HTTPAdapter

from .errors import RegistryUnauthorized, RegistryUnavailable, VersionNotFound
from .metrics import observed_request
from .model import ChartInfo, ChartLocation, ChartVersions
from .settings import RegistryCredentials
from .versions import nearest_versions, registry_tag, same_version, sort_tags

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(oras.defaults.default_manifest_accepted_media_types)
CREATED_ANNOTATION = "org.opencontainers.image.created"
MAX_PAGES = 1000  # 100 tags a page on most registries: far beyond any chart's history


class _NotFound(Exception):
    """The registry answered 404: a missing repository or tag, which callers turn into an answer."""


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request of a session a timeout, the token requests oras makes itself included."""

    def __init__(self, timeout: float):
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=timeout or self.timeout, **kwargs)


class _BoundedRegistry(oras.provider.Registry):
    """oras-py's ``Registry`` for one host: one bounded attempt per request, typed errors, and the
    host's own credentials (or none) sent only where they belong."""

    def __init__(self, host: str, insecure: bool, credentials: Optional[RegistryCredentials],
                 timeout: float):
        # oras's auth backends are not used: they send Basic credentials to any token realm a
        # challenge names and follow its redirects. Challenges are answered in _authenticate.
        super().__init__(hostname=host, insecure=insecure, auth_backend="basic")
        self.timeout = timeout
        self.credentials = credentials
        self._host_name = urlsplit(f"//{host}").hostname or host
        adapter = _TimeoutAdapter(timeout)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # no ~/.netrc credentials, whatever the host
        self._basic = ("Basic " + oras.auth.utils.get_basic_auth(credentials.username, credentials.password)
                       if credentials else None)
        self._authorization: Optional[str] = None  # the header that last worked, sent up front
        self._warned_realms: set = set()
        self._lock = threading.Lock()  # the session and the token state are not shared safely
        self._last_failure: tuple = (0.0, None)  # (when, error) of the last outage

    @contextmanager
    def turn(self):
        """Talk to this host alone. Whoever waited while a turn met an outage fails
        the same way at once (an outage: no answer, or a server error): behind a dead registry,
        ten queued commands must not wait ten timeouts in a row. A refusal (401/403: credentials
        or scope, often for one repository) is about one request: the next one is asked."""
        asked = time.monotonic()
        with self._lock:
            failed_at, error = self._last_failure
            if error is not None and failed_at >= asked:
                raise RegistryUnavailable(str(error), outage=True)
            try:
                yield self
            except RegistryUnavailable as e:
                if e.outage:
                    self._last_failure = (time.monotonic(), e)
                raise

    # oras calls this for every HTTP request; the original is wrapped in @retry.
    @observed_request
    def do_request(self, url: str, method: str = "GET", data=None, headers: Optional[dict] = None,
                   json=None, stream: bool = False) -> requests.Response:
        headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        same_host = urlsplit(url).netloc == self.hostname
        if self._authorization and same_host:
            headers["Authorization"] = self._authorization
        try:
            response = self._send(method, url, data, json, headers, stream)
            if response.status_code not in (401, 403) or not same_host:
                return response
            authorization = self._authenticate(response, headers.get("Authorization"))
            if authorization is None:
                return response
            response = self._send(method, url, data, json, {**headers, "Authorization": authorization},
                                  stream)
            if response.status_code not in (401, 403):
                self._authorization = authorization
            return response
        except requests.RequestException as e:
            raise self._unreachable(e) from e

    def _send(self, method, url, data, json_body, headers, stream) -> requests.Response:
        # Blob downloads are redirected to storage elsewhere (ghcr.io, S3): requests drops the
        # Authorization header when a redirect changes host, and trust_env=False keeps netrc out.
        return self.session.request(method, url, data=data, json=json_body, headers=headers,
                                    stream=stream, verify=self._tls_verify, timeout=self.timeout,
                                    allow_redirects=method in ("GET", "HEAD"))

    def _authenticate(self, response: requests.Response, sent: Optional[str]) -> Optional[str]:
        """The Authorization header for one retry that answers the registry's challenge, or None."""
        challenge = response.headers.get("Www-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self._basic is None or sent == self._basic:
                return None  # nothing to offer, or these very credentials were just refused
            return self._basic
        if scheme == "bearer":
            parsed = oras.auth.utils.parse_auth_header(challenge)
            if not parsed.realm:
                return None
            token = self._token(parsed.realm, parsed.service, parsed.scope)
            return f"Bearer {token}" if token else None
        return None

    def may_receive_credentials(self, realm: str) -> bool:
        """A token realm gets this host's credentials only on the same host name or on a host the
        settings allow for it (``token_hosts``), and over HTTPS unless the registry is plain HTTP."""
        if self.credentials is None:
            return False
        parts = urlsplit(realm)
        name = (parts.hostname or "").lower()
        if parts.scheme != "https" and not (parts.scheme == "http" and self.prefix == "http"):
            return False
        return name == self._host_name.lower() or name in self.credentials.token_hosts

    def _token(self, realm: str, service: Optional[str], scope: Optional[str]) -> Optional[str]:
        """A bearer token from the challenge's realm (Docker's token auth): with this host's
        credentials where they may go, anonymous elsewhere; no redirects when credentials go."""
        if not realm.startswith(("http://", "https://")):
            realm = f"{self.prefix}://{realm}"
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Accept": "application/json"}
        if self.may_receive_credentials(realm):
            headers["Authorization"] = self._basic
        elif self.credentials is not None and realm not in self._warned_realms:
            self._warned_realms.add(realm)
            log.warning("registry %s names the token realm %s, which is not its host nor in its "
                        "token_hosts: Ferry asks it for an anonymous token only", self.hostname,
                        urlsplit(realm).netloc)
        response = self.session.get(realm, params=params, headers=headers, verify=self._tls_verify,
                                    timeout=self.timeout, allow_redirects="Authorization" not in headers)
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        return token if isinstance(token, str) and token else None

    def _do_paginated_request(self, url: str, callable: Callable[[requests.Response], bool]):
        """oras's ``Link: <…>; rel="next"`` walk, kept on this host and safe from endless loops."""
        seen = set()
        while url not in seen and len(seen) < MAX_PAGES:
            seen.add(url)
            response = self.do_request(url, "GET", headers=self.headers)
            self._check_200_response(response)
            link = response.links.get("next", {}).get("url")
            if not callable(response) or not link:
                return
            url = urljoin(url, link)
            if urlsplit(url).netloc != self.hostname:
                # Our credentials go to this host only.
                raise RegistryUnavailable(f"Registry {self.hostname} sent a next-page link to another host.")
        raise RegistryUnavailable(f"Registry {self.hostname} kept sending next-page links: gave up.")

    def _check_200_response(self, response: requests.Response):
        if response.status_code in (200, 201, 202):
            return
        if response.status_code == 404:
            raise _NotFound(response.request.url if response.request else "")
        raise self._refused(response.status_code)

    def _refused(self, status: int) -> Exception:
        host = self.hostname
        if status in (401, 403):
            if self.credentials is not None:
                return RegistryUnauthorized(
                    f"Registry {host} refused Ferry's credentials ({status}): "
                    f"check {self.credentials.variables} and what they may read.")
            return RegistryUnauthorized(
                f"Registry {host} wants credentials ({status}): "
                f"give {host} its own in the settings' `registry_credentials`.")
        try:
            phrase = f" ({HTTPStatus(status).phrase})"
        except ValueError:
            phrase = ""
        return RegistryUnavailable(f"Registry {host} answered {status}{phrase}.", outage=status >= 500)

    def _unreachable(self, error: requests.RequestException) -> RegistryUnavailable:
        host, text = self.hostname, str(error).lower()
        # A body that stalls after the headers surfaces as ConnectionError(ReadTimeoutError).
        if isinstance(error, requests.Timeout) or "timed out" in text:
            return RegistryUnavailable(f"Registry {host} did not answer within {self.timeout:g} s.",
                                       outage=True)
        if isinstance(error, requests.exceptions.SSLError):
            return RegistryUnavailable(
                f"Registry {host} failed the TLS handshake: if it serves plain HTTP, mark it `insecure: true`.")
        if "refused" in text:
            return RegistryUnavailable(f"Registry {host} cannot be reached: connection refused.",
                                       outage=True)
        if "resolve" in text or "name or service not known" in text or "nodename" in text:
            return RegistryUnavailable(f"Registry {host} cannot be reached: its name does not resolve.",
                                       outage=True)
        if isinstance(error, requests.ConnectionError):
            return RegistryUnavailable(f"Registry {host} cannot be reached: the connection failed.",
                                       outage=True)
        return RegistryUnavailable(f"Registry {host} cannot be asked: {type(error).__name__}.")

    def manifest(self, container: oras.container.Container, tag: str) -> tuple[dict, str]:
        """(manifest, digest). oras's get_manifest drops the digest header and reads Docker configs."""
        response = self.do_request(f"{self.prefix}://{container.manifest_url(tag)}", "GET",
                                   headers={"Accept": MANIFEST_ACCEPT})
        self._check_200_response(response)
        digest = response.headers.get("Docker-Content-Digest") or \
            "sha256:" + hashlib.sha256(response.content).hexdigest()
        return self._json(response, "manifest"), digest

    def blob_json(self, container: oras.container.Container, digest: str) -> dict:
        response = self.get_blob(container, digest)
        self._check_200_response(response)
        return self._json(response, "config blob")

    def _json(self, response: requests.Response, what: str) -> dict:
        try:
            value = response.json()
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise RegistryUnavailable(f"Registry {self.hostname} answered with a {what} Ferry cannot read.")
        return value


def _container(location: ChartLocation) -> oras.container.Container:
    """The oras container for a location, built field by field: oras's name regex would take a
    first path segment holding a dot (``my.org/charts/x``) for the registry host."""
    namespace, _, name = location.repository.strip("/").rpartition("/")
    container = oras.container.Container(name, registry=location.host)
    container.namespace = namespace or None
    return container


def chart_name(location: ChartLocation) -> str:
    return location.repository.rstrip("/").rsplit("/", 1)[-1]


class RegistryClient:
    """Chart versions from Helm OCI registries, cached briefly, safe to share between threads."""

    def __init__(self, credentials: Iterable[RegistryCredentials] = (), timeout: float = 5.0,
                 cache_seconds: float = 30.0):
        # Each host's own credentials; a host not named here is asked without any.
        self._credentials = {c.host: c for c in credentials}
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._tags: dict = {}  # ChartLocation -> (expires, ChartVersions)
        self._infos: dict = {}  # (ChartLocation, tag) -> (expires, ChartInfo)
        self._registries: dict = {}  # (host, insecure) -> _BoundedRegistry
        self.observe = None  # metrics.Metrics, set by the core: each request counted and timed

    def __repr__(self) -> str:
        return f"RegistryClient(timeout={self.timeout}, cache_seconds={self.cache_seconds})"

    def versions(self, location: ChartLocation) -> ChartVersions:
        """Every tag of the chart, sorted; a repository that does not exist has none."""
        cached = self._cached(self._tags, location)
        if cached is not None:
            return cached
        with self._registry(location).turn() as registry:
            # Another thread may have fetched it while this one waited.
            cached = self._cached(self._tags, location)
            if cached is not None:
                return cached
            started = time.monotonic()
            try:
                tags = registry.get_tags(_container(location))
            except _NotFound:
                tags = []
            except ValueError:  # the JSON of a page did not parse
                raise RegistryUnavailable(
                    f"Registry {location.host} answered with a tag list Ferry cannot read.") from None
            result = sort_tags(t for t in tags if isinstance(t, str))
            log.debug("listed %d tags of %s in %.3f s", len(result.all_tags), location,
                      time.monotonic() - started)
            self._store(self._tags, location, result)
        return result

    def has_version(self, location: ChartLocation, version: str) -> bool:
        return self._match(location, version) is not None

    def require(self, location: ChartLocation, version: str, chart: str) -> str:
        """The tag holding ``version``, or ``VersionNotFound`` naming the nearest ones.

        The tag is ``registry_tag(version)``; failing that, a tag naming the same semantic
        version with or without a ``v`` prefix (people type ``1.14.0`` for ``v1.14.0``).
        """
        tag = self._match(location, version)
        if tag is None:
            raise VersionNotFound(chart, version, nearest_versions(version, self.versions(location)))
        return tag

    def chart_info(self, location: ChartLocation, version: str) -> ChartInfo:
        """appVersion and description (the Helm config blob), creation time and digest (the manifest)."""
        tag = self._match(location, version) or registry_tag(version)
        key = (location, tag)
        cached = self._cached(self._infos, key)
        if cached is not None:
            return cached
        container = _container(location)
        try:
            with self._registry(location).turn() as registry:
                manifest, digest = registry.manifest(container, tag)
                config_digest = (manifest.get("config") or {}).get("digest")
                config = registry.blob_json(container, config_digest) if config_digest else {}
        except _NotFound:
            self.invalidate(location)  # the cached tag list said otherwise: it is stale
            raise VersionNotFound(chart_name(location), version,
                                  nearest_versions(version, self.versions(location))) from None
        annotations = manifest.get("annotations") or {}
        info = ChartInfo(
            version=version if registry_tag(version) == tag else tag,
            app_version=_text(config.get("appVersion")),
            description=_text(config.get("description")),
            created=_text(annotations.get(CREATED_ANNOTATION)),
            digest=digest,
        )
        self._store(self._infos, key, info)
        return info

    def invalidate(self, location: Optional[ChartLocation] = None) -> None:
        """Forget what was cached about one chart, or about every chart."""
        with self._lock:
            if location is None:
                self._tags.clear()
                self._infos.clear()
                return
            self._tags.pop(location, None)
            for key in [k for k in self._infos if k[0] == location]:
                del self._infos[key]

    def close(self) -> None:
        with self._lock:
            registries, self._registries = list(self._registries.values()), {}
        for registry in registries:
            registry.session.close()

    def _match(self, location: ChartLocation, version: str) -> Optional[str]:
        available = self.versions(location).all_tags
        tag = registry_tag(version)
        if tag in available:
            return tag
        return next((t for t in available if same_version(t, tag)), None)

    def _registry(self, location: ChartLocation) -> _BoundedRegistry:
        key = (location.host, location.insecure)
        with self._lock:
            registry = self._registries.get(key)
            if registry is None:
                registry = _BoundedRegistry(location.host, location.insecure,
                                            self._credentials.get(location.host.lower()), self.timeout)
                registry.observe = self.observe
                self._registries[key] = registry
            return registry

    def _cached(self, cache: dict, key):
        with self._lock:
            entry = cache.get(key)
            if entry is None:
                return None
            expires, value = entry
            if time.monotonic() >= expires:
                del cache[key]
                return None
            return value

    def _store(self, cache: dict, key, value) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            cache[key] = (time.monotonic() + self.cache_seconds, value)


def _text(value) -> str:
    return "" if value is None else str(value)
