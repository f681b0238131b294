"""One OCI registry host, spoken to through oras-py's ``Registry`` (tag listing with ``Link``
pagination, blob URLs), with what a chat bot needs changed:

- every request goes out once, bounded by ``timeout``, through ``transport.send``: oras wraps
  ``do_request`` in ``@retry``, which sleeps about 131 s in total on any exception, connection
  refused included, and sends requests without any timeout;
- errors are typed (``RegistryUnavailable``, ``RegistryUnauthorized``) with a one-line message
  naming the registry host, never the credentials; oras raises a plain ``ValueError`` for all;
- credentials come only from Ferry's settings (no Docker config, no ``ORAS_USER``, no netrc) and
  are bound to one host: they go to that host, and to the token realm its challenge names only
  when the realm is on the same host name or on a host the settings allow (``token_hosts``), as
  ``transport.origin`` reads it (the parser the connection uses); a realm anywhere else is asked
  for an anonymous token, a realm naming a user is not asked at all. Over plain HTTP only when the
  settings say the host is plain HTTP (``plain_http``), never because Git says ``insecure``.
  oras's own token code would send them to any realm, so challenges are answered here;
- one command at a time talks to a host; another waits at most ``busy_wait`` seconds for its
  turn and is then answered that the registry is busy, rather than holding a chat worker;
- bearer tokens are kept per repository scope until they expire (``tokens.TokenCache``), so going
  from one chart to another and back asks the realm once per chart, not at every switch.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from http import HTTPStatus
from typing import Callable, Optional
from urllib.parse import urljoin

import oras.auth.utils
import oras.container
import oras.defaults
import oras.provider
import requests

from . import transport
from ..errors import RegistryUnauthorized, RegistryUnavailable, SourceBusy, UnreadableDocument
from ..ops.metrics import observed_request
from ..model import ChartLocation
from ..safeyaml import load_json
from ..settings import RegistryCredentials
from .tokens import TokenCache, lifetime, scope_of

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(oras.defaults.default_manifest_accepted_media_types)
MAX_PAGES = 1000  # 100 tags a page on most registries: far beyond any chart's history


class NotFound(Exception):
    """The registry answered 404: a missing repository or tag, which callers turn into an answer."""


class OciRegistry(oras.provider.Registry):
    """oras-py's ``Registry`` for one host: one bounded attempt per request, typed errors, and the
    host's own credentials (or none) sent only where they belong."""

    observe = None  # metrics.Metrics, or None: each request counted and timed

    def __init__(self, host: str, insecure: bool, credentials: Optional[RegistryCredentials],
                 timeout: float, busy_wait: float = transport.BUSY_WAIT,
                 withheld: Optional[RegistryCredentials] = None):
        # oras's auth backends are not used: they send Basic credentials to any token realm a
        # challenge names and follow its redirects. Challenges are answered in _authenticate.
        super().__init__(hostname=host, insecure=insecure, auth_backend="basic")
        self.timeout, self.busy_wait = timeout, busy_wait
        self.credentials = credentials
        # Credentials the settings bind to this host but keep off plain HTTP, which Git asked for.
        self.withheld = withheld
        own = transport.origin(f"{self.prefix}://{host}")
        self._origin = own.netloc if own is not None else host.lower()
        self._host_name = own.host if own is not None else host.lower()
        transport.mount(self.session, timeout, busy_wait)  # no ~/.netrc credentials, whatever the host
        self._basic = ("Basic " + oras.auth.utils.get_basic_auth(credentials.username, credentials.password)
                       if credentials else None)
        self._basic_works = False  # Basic credentials were accepted: sent up front from then on
        self.tokens = TokenCache()  # bearer tokens per repository scope, until they expire
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
        if not self._lock.acquire(timeout=self.busy_wait):
            raise SourceBusy(f"Registry {self.hostname} is busy: another command is still waiting for "
                             "its answer. Try again in a moment.")
        try:
            failed_at, error = self._last_failure
            if error is not None and failed_at >= asked:
                raise RegistryUnavailable(str(error), outage=True)
            try:
                yield self
            except RegistryUnavailable as e:
                if e.outage:
                    self._last_failure = (time.monotonic(), e)
                raise
        finally:
            self._lock.release()

    # oras calls this for every HTTP request; the original is wrapped in @retry.
    @observed_request
    def do_request(self, url: str, method: str = "GET", data=None, headers: Optional[dict] = None,
                   json=None, stream: bool = False) -> requests.Response:
        headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        same_host = self._is_own(url)
        scope = scope_of(url)
        known = (self._basic if self._basic_works else self.tokens.get(scope)) if same_host else None
        if known:
            headers["Authorization"] = known
        try:
            response = self._send(method, url, data, json, headers, stream)
            if response.status_code not in (401, 403) or not same_host:
                return response
            answer = self._authenticate(response, headers.get("Authorization"))
            if answer is None:
                return response
            authorization, expires_in = answer
            response = self._send(method, url, data, json, {**headers, "Authorization": authorization},
                                  stream)
            if response.status_code not in (401, 403):
                if expires_in is None:
                    self._basic_works = True
                else:
                    self.tokens.put(scope, authorization, expires_in)
            return response
        except requests.RequestException as e:
            raise self.unreachable(e) from e

    def _send(self, method, url, data, json_body, headers, stream) -> requests.Response:
        # Blob downloads are redirected to storage elsewhere (ghcr.io, S3): requests drops the
        # Authorization header when a redirect changes host, and trust_env=False keeps netrc out.
        return transport.send(self.session, method, url, data=data, json=json_body, headers=headers,
                              stream=stream, verify=self._tls_verify, timeout=self.timeout,
                              allow_redirects=method in ("GET", "HEAD"))

    def _authenticate(self, response: requests.Response, sent: Optional[str]) -> Optional[tuple]:
        """(Authorization header, seconds it lasts or None for Basic) for one retry that answers
        the registry's challenge, or None."""
        challenge = response.headers.get("Www-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self._basic is None or sent == self._basic:
                return None  # nothing to offer, or these very credentials were just refused
            return self._basic, None
        if scheme == "bearer":
            parsed = oras.auth.utils.parse_auth_header(challenge)
            if not parsed.realm:
                return None
            token = self._token(parsed.realm, parsed.service, parsed.scope)
            return (f"Bearer {token[0]}", token[1]) if token else None
        return None

    def _is_own(self, url: str) -> bool:
        where = transport.origin(url)
        return where is not None and not where.userinfo and where.netloc == self._origin

    def may_receive_credentials(self, realm: str) -> bool:
        """A token realm gets this host's credentials only on the same host name or on a host the
        settings allow for it (``token_hosts``), as the connection reads the URL, never when it
        names a user; over HTTPS, or HTTP when the settings say the host is plain HTTP."""
        if self.credentials is None:
            return False
        where = transport.origin(realm)
        if where is None or where.userinfo:
            return False
        if where.scheme != "https" and not (where.scheme == "http" and self.credentials.plain_http):
            return False
        return where.host == self._host_name or where.host in self.credentials.token_hosts

    def _token(self, realm: str, service: Optional[str], scope: Optional[str]) -> Optional[tuple]:
        """(token, seconds it lasts) from the challenge's realm (Docker's token auth): with this
        host's credentials where they may go, anonymous elsewhere; no redirects when credentials go."""
        if not realm.startswith(("http://", "https://")):
            realm = f"{self.prefix}://{realm}"
        where = transport.origin(realm)
        if where is None or where.userinfo:
            # A realm that names a user, or that no parser agrees on, is a trap: nobody asks it.
            log.warning("registry %s names a token realm Ferry does not ask (it names a user or "
                        "does not parse)", self.hostname)
            return None
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Accept": "application/json"}
        if self.may_receive_credentials(realm):
            headers["Authorization"] = self._basic
        elif self.credentials is not None and realm not in self._warned_realms:
            self._warned_realms.add(realm)
            log.warning("registry %s names the token realm %s, which is not its host nor in its "
                        "token_hosts: Ferry asks it for an anonymous token only", self.hostname,
                        where.netloc)
        response = transport.send(self.session, "GET", realm, params=params, headers=headers,
                                  verify=self._tls_verify, timeout=self.timeout,
                                  allow_redirects="Authorization" not in headers)
        if response.status_code != 200:
            return None
        try:
            body = load_json(response.content, "The token")
        except UnreadableDocument:
            return None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        return (token, lifetime(body)) if isinstance(token, str) and token else None

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
            if not self._is_own(url):
                # Our credentials go to this host only.
                raise RegistryUnavailable(f"Registry {self.hostname} sent a next-page link to another host.")
        raise RegistryUnavailable(f"Registry {self.hostname} kept sending next-page links: gave up.")

    def _check_200_response(self, response: requests.Response):
        if response.status_code in (200, 201, 202):
            return
        if response.status_code == 404:
            raise NotFound(response.request.url if response.request else "")
        raise self.refused(response.status_code)

    def refused(self, status: int) -> Exception:
        """The typed error of a refusal or an error status (401/403 naming what to set, 5xx an outage)."""
        host = self.hostname
        if status in (401, 403):
            if self.credentials is not None:
                return RegistryUnauthorized(
                    f"Registry {host} refused Ferry's credentials ({status}): "
                    f"check {self.credentials.variables} and what they may read.")
            if self.withheld is not None:
                return RegistryUnauthorized(
                    f"Registry {host} wants credentials ({status}), and Git asks for it over plain "
                    f"HTTP (`insecure: true` or an http:// URL): Ferry sends "
                    f"{self.withheld.variables} over HTTPS only, unless its `registry_credentials` "
                    "entry says `plain_http: true`.")
            return RegistryUnauthorized(
                f"Registry {host} wants credentials ({status}): "
                f"give {host} its own in the settings' `registry_credentials`.")
        try:
            phrase = f" ({HTTPStatus(status).phrase})"
        except ValueError:
            phrase = ""
        return RegistryUnavailable(f"Registry {host} answered {status}{phrase}.", outage=status >= 500)

    def unreachable(self, error: requests.RequestException) -> RegistryUnavailable:
        """The typed error of a request that got no (whole) answer: also for a streamed body whose
        reading fails after ``blob`` returned."""
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

    def blob(self, container: oras.container.Container, digest: str) -> requests.Response:
        """A blob's streamed response, its status checked (404: ``NotFound``; else a typed refusal).
        The caller reads it within its own bounds (a failed read: ``unreachable``) and closes it."""
        response = self.do_request(f"{self.prefix}://{container.get_blob_url(digest)}", "GET", stream=True)
        try:
            self._check_200_response(response)
        except BaseException:
            response.close()
            raise
        return response

    def blob_json(self, container: oras.container.Container, digest: str) -> dict:
        response = self.get_blob(container, digest)
        self._check_200_response(response)
        return self._json(response, "config blob")

    def _json(self, response: requests.Response, what: str) -> dict:
        try:
            value = load_json(response.content, f"The {what}")
        except UnreadableDocument:
            value = None
        if not isinstance(value, dict):
            raise RegistryUnavailable(f"Registry {self.hostname} answered with a {what} Ferry cannot read.")
        return value


def container_of(location: ChartLocation) -> oras.container.Container:
    """The oras container for a location, built field by field: oras's name regex would take a
    first path segment holding a dot (``my.org/charts/x``) for the registry host."""
    namespace, _, name = location.repository.strip("/").rpartition("/")
    container = oras.container.Container(name, registry=location.host)
    container.namespace = namespace or None
    return container
