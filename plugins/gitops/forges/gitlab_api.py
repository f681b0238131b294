"""GitLab's REST API (v4), one request at a time, through the project's one HTTP door.

Every request goes out once through ``sources.transport`` (a time bound, no ``~/.netrc`` or proxy
credentials, no link-local or metadata address). The token (``PRIVATE-TOKEN`` for project and
group access tokens, ``Authorization: Bearer`` for OAuth) goes only to the API base URL's origin,
as ``transport.origin`` reads it: a redirect is followed only for a read, at most
``MAX_REDIRECTS`` times, and a hop to any other origin goes without the token. A write that is
redirected is refused: the method and body would have to be sent again somewhere the settings do
not name.

GitLab's answers become typed errors with one line each: 401/403/404/405/409/422 and other 4xx a
``ForgeRefused`` (the missing scope or role said), 5xx and no answer a ``ForgeUnavailable``,
429 a ``ForgeRateLimited`` with the reset time from ``Retry-After`` or ``RateLimit-Reset``. A
success that reports ``RateLimit-Remaining: 0`` holds further requests until ``RateLimit-Reset``
rather than spending one to be told so. The token never reaches a message or a log: GitLab's
error bodies are shown short, printable and with the token masked, should a proxy echo it.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, Iterator, Optional
from urllib.parse import quote

import requests

from ..errors import (ForbiddenAddress, ForgeRateLimited, ForgeRefused, ForgeUnavailable,
                      SourceBusy, UnreadableDocument, logged, shown)
from ..safeyaml import Limits, load_json
from ..sources import transport

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
MAX_RESPONSE = 8 * 1024 * 1024  # bytes of one answer: a page of merge requests is a few hundred KB
MAX_PAGES = 20  # of a list: Ferry asks for one branch's open merge requests, or one user name
PER_PAGE = 100  # GitLab's largest page
RESPONSE_LIMITS = Limits(bytes=MAX_RESPONSE, depth=64)
_REDIRECTS = {301, 302, 303, 307, 308}
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Answer:
    status: int
    data: object  # the JSON body; None for 304
    etag: Optional[str]
    headers: dict


def project_id(project: str) -> str:
    """A project's path as GitLab's ``:id`` in a URL (``group%2Fsub%2Fproject``), or its number."""
    return quote(project.strip("/"), safe="")


class GitLabApi:
    """The API at ``api_url`` (``https://gitlab.com/api/v4``, a self-managed instance's
    ``https://gitlab.example.com/api/v4``) with one token."""

    def __init__(self, api_url: str, token: str, *, auth: str = "private-token",
                 timeout: float = 10.0, token_variable: str = "the forge token",
                 session: Optional[requests.Session] = None, clock: Callable[[], float] = time.time):
        self.base = api_url.rstrip("/")
        self.origin = transport.origin(self.base)
        if self.origin is None or self.origin.scheme not in ("http", "https") or self.origin.userinfo:
            raise ValueError(f"not an http(s) API URL without a user name: {api_url!r}")
        self.host = self.origin.netloc
        self._token, self._auth = token, auth
        self.timeout, self.token_variable, self.clock = timeout, token_variable, clock
        self.session = session or transport.bounded_session(timeout)
        self._lock = threading.Lock()
        self._held_until = 0.0  # RateLimit-Remaining reached 0: nothing is sent before this

    # ---- one request --------------------------------------------------------------------------

    def call(self, method: str, path: str, what: str, *, params: Optional[dict] = None,
             json: Optional[dict] = None, etag: Optional[str] = None) -> Answer:
        """``method`` ``path`` (under the base URL), or a typed error saying ``what`` failed."""
        return self._call(method, self.base + path, what, params=params, json=json, etag=etag)

    def _call(self, method, url, what, *, params=None, json=None, etag=None) -> Answer:
        with self._lock:
            held = self._held_until
        if self.clock() < held:
            raise ForgeRateLimited(self._limited_line(what, held), held)
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept": "application/json", "User-Agent": "Ferry"}
            if etag:
                headers["If-None-Match"] = etag
            if transport.origin(url) == self.origin:
                headers.update(self._credentials())
            response = self._send(method, url, what, headers, params, json)
            elsewhere = transport.origin(url)
            if elsewhere != self.origin and response.status_code >= 400:
                response.close()  # the token stayed home: a refusal there is about the redirect
                raise ForgeRefused(f"GitLab at {self.host} sent the request to {what} on to "
                                   f"{elsewhere.netloc if elsewhere else '?'}, which answered HTTP "
                                   f"{response.status_code}: set the forge's `api_url` to the "
                                   "address GitLab's API answers at.")
            if response.status_code not in _REDIRECTS:
                return self._answer(response, what)
            location = response.headers.get("Location", "")
            response.close()
            if method != "GET" or not location:
                raise ForgeRefused(f"GitLab at {self.host} answered the request to {what} with a "
                                   f"redirect{' to ' + shown(location, 80) if location else ''}: set "
                                   "the forge's `api_url` to the address GitLab's API answers at.")
            url, params = requests.compat.urljoin(url, location), None
        raise ForgeUnavailable(f"GitLab at {self.host} redirected more than {MAX_REDIRECTS} times "
                               f"when Ferry tried to {what}.")

    def _credentials(self) -> dict:
        if self._auth == "bearer":
            return {"Authorization": f"Bearer {self._token}"}
        return {"PRIVATE-TOKEN": self._token}

    def _send(self, method, url, what, headers, params, json) -> requests.Response:
        try:
            return transport.send(self.session, method, url, timeout=self.timeout, headers=headers,
                                  params=params, json=json, stream=True)
        except ForbiddenAddress:
            raise ForgeRefused(f"Ferry does not connect to {self.host}'s address (link-local, where "
                               "cloud metadata services answer): set the forge's `api_url` to "
                               "GitLab's real address.") from None
        except SourceBusy:
            raise ForgeUnavailable(f"GitLab at {self.host} is busy with Ferry's other requests: "
                                   f"could not {what}. Try again in a moment.") from None
        except requests.Timeout:
            raise ForgeUnavailable(f"GitLab at {self.host} did not answer within {self.timeout:g} s: "
                                   f"could not {what}. Try again in a moment.") from None
        except requests.RequestException as e:
            log.warning("GitLab at %s: %s: %s", self.host, what, logged(self._masked(str(e))))
            raise ForgeUnavailable(f"Cannot reach GitLab at {self.host}: could not {what}. "
                                   "Try again in a moment.") from None

    # ---- the answer ---------------------------------------------------------------------------

    def _answer(self, response: requests.Response, what: str) -> Answer:
        status, headers = response.status_code, dict(response.headers)
        self._note_limit(headers)
        try:
            body = self._read(response, what)
        finally:
            response.close()
        if status == 304:
            return Answer(304, None, response.headers.get("ETag"), headers)
        if 200 <= status < 300:
            try:
                data = load_json(body, f"GitLab's answer to {what}", RESPONSE_LIMITS) if body else None
            except UnreadableDocument as e:
                raise ForgeUnavailable(e.message) from None
            return Answer(status, data, response.headers.get("ETag"), headers)
        message = self._message(body, response.headers.get("Content-Type", ""))
        log.warning("GitLab at %s answered %d to %s: %s", self.host, status, logged(what),
                    logged(message))
        refusal = self._refusal(status, message, what, response.headers)
        refusal.status = status  # for the client's own reading of one answer (409: it exists)
        raise refusal

    def _read(self, response: requests.Response, what: str) -> bytes:
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise ForgeUnavailable(f"GitLab at {self.host} answered the request to {what} "
                                           f"with more than {MAX_RESPONSE // (1024 * 1024)} MiB.")
                chunks.append(chunk)
        except requests.RequestException:
            raise ForgeUnavailable(f"GitLab at {self.host} stopped answering: could not {what}. "
                                   "Try again in a moment.") from None
        return b"".join(chunks)

    def _message(self, body: bytes, content_type: str) -> str:
        """GitLab's own words: ``{"message": ...}`` (a string, a list, or fields to lists),
        ``{"error": ..., "error_description": ...}``, or the text of a proxy's page."""
        text = ""
        if "json" in content_type:
            try:
                data = load_json(body, "GitLab's error", RESPONSE_LIMITS)
            except UnreadableDocument:
                data = None
            if isinstance(data, dict):
                text = _flatten(data.get("message")) or " ".join(
                    filter(None, (_flatten(data.get("error")), _flatten(data.get("error_description")))))
        if not text:
            text = body[:300].decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else ""
        return shown(self._masked(text), 200)

    def _masked(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _refusal(self, status: int, message: str, what: str, headers) -> Exception:
        said = f": {message}" if message else ""
        if status == 429:
            reset = self._reset(headers)
            return ForgeRateLimited(self._limited_line(what, reset), reset)
        if status >= 500:
            return ForgeUnavailable(f"GitLab at {self.host} failed (HTTP {status}{said}): could not "
                                    f"{what}. Try again in a moment.")
        if status == 401:
            return ForgeRefused(f"GitLab at {self.host} refused Ferry's token (HTTP 401{said}): it is "
                                f"wrong, expired or revoked. Set a project access token with the `api` "
                                f"scope in {self.token_variable}.")
        if status == 403 and "insufficient_scope" in message:
            return ForgeRefused(f"GitLab at {self.host} refused to {what}: the token lacks the `api` "
                                f"scope (HTTP 403). Give the token in {self.token_variable} the `api` "
                                "scope.")
        if status == 403:
            return ForgeRefused(f"GitLab at {self.host} refused to {what} (HTTP 403{said}): the token's "
                                "role may not. Opening and updating merge requests needs at least the "
                                "Developer role; merging into a protected branch needs a role allowed "
                                "to merge there.")
        if status == 404 and "project" in message.lower():
            return ForgeRefused(f"GitLab at {self.host} has no such project for this token (HTTP "
                                f"404{said}): check the forge's `project` path, and that the token in "
                                f"{self.token_variable} is the project's or its group's.")
        return ForgeRefused(f"GitLab at {self.host} refused to {what} (HTTP {status}{said}).")

    # ---- rate limits --------------------------------------------------------------------------

    def _note_limit(self, headers: dict) -> None:
        remaining = _number(_header(headers, "RateLimit-Remaining"))
        if remaining is not None and remaining <= 0:
            with self._lock:
                self._held_until = max(self._held_until, self._reset(headers))

    def _reset(self, headers) -> float:
        """When the limit refills (epoch seconds): ``Retry-After`` (seconds, or an HTTP date), else
        ``RateLimit-Reset`` (epoch seconds), else a minute from now (GitLab's window)."""
        now = self.clock()
        after = _header(headers, "Retry-After")
        if after:
            seconds = _number(after)
            if seconds is not None:
                return now + max(0.0, seconds)
            try:
                return parsedate_to_datetime(after).timestamp()
            except (TypeError, ValueError):
                pass
        reset = _number(_header(headers, "RateLimit-Reset"))
        return reset if reset is not None and reset > now else now + 60.0

    def _limited_line(self, what: str, reset: float) -> str:
        wait = max(1, int(round(reset - self.clock())))
        return (f"GitLab at {self.host} says Ferry's rate limit is spent: could not {what}. It "
                f"refills in {wait} s ({time.strftime('%H:%M:%S', time.gmtime(reset))} UTC).")

    # ---- lists --------------------------------------------------------------------------------

    def pages(self, path: str, what: str, params: dict) -> Iterator[object]:
        """Every item of a list, page by page (``Link: rel="next"`` on this API's origin, else
        ``X-Next-Page``), at most ``MAX_PAGES`` pages."""
        first = {**params, "per_page": PER_PAGE}
        url, params = self.base + path, first
        for _ in range(MAX_PAGES):
            answer = self._call("GET", url, what, params=params)
            if not isinstance(answer.data, list):
                raise ForgeUnavailable(f"GitLab at {self.host} answered the request to {what} "
                                       "with something other than a list.")
            yield from answer.data
            link = _LINK_NEXT.search(_header(answer.headers, "Link") or "")
            following = (_header(answer.headers, "X-Next-Page") or "").strip()
            if link and transport.origin(link.group(1)) == self.origin and \
                    link.group(1).startswith(self.base + "/"):
                url, params = link.group(1), None
            elif following.isdigit():  # no Link (or one elsewhere): the page number alone
                url, params = self.base + path, {**first, "page": following}
            else:
                return


def _header(headers, name: str) -> Optional[str]:
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def _flatten(value) -> str:
    """GitLab's ``message``: a string, a list of them, or a field → list mapping, as one line."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value if _flatten(v))
    if isinstance(value, dict):
        return "; ".join(f"{k} {_flatten(v)}" for k, v in value.items() if _flatten(v))
    return ""
