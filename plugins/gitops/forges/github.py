"""GitHub's REST API for one repository's pull requests, and its webhooks.

Plain ``requests`` through the one HTTP door (``sources.transport``: a time bound and one
attempt, no ``~/.netrc`` or proxy credentials, no link-local or metadata address, no redirects
followed), not PyGithub: Ferry needs a handful of endpoints, the ETag of each read and the
rate-limit headers of each answer, which PyGithub keeps to itself (and it retries and sleeps on
its own). The token goes only to the API's own origin: every request is built from ``api_url``,
and a pagination link elsewhere is not followed.

Auth: a token (fine-grained or classic), or a GitHub App whose installation token is minted from
a JWT signed with the App's private key (RS256, ``iat`` 60 s in the past, ``exp`` 9 minutes
ahead, ``iss`` the App's id) and kept until 5 minutes before it expires.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Mapping, Optional
from urllib.parse import quote

import requests

from . import CLOSED, MERGED, OPEN, PullRequest, PullRequestDraft, PullRequestEvent
from ..errors import (BadSignature, EventTooLarge, FeedbackNotConfigured, ForgeRateLimited, ForgeRefused,
                      ForgeUnavailable, MalformedEvent, RegistryUnavailable, UnreadableDocument, Unsigned,
                      logged, shown)
from ..forge_settings import ForgeSettings
from ..safeyaml import load_json
from ..sources.transport import bounded_session, origin, send

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
MAX_WEBHOOK_BODY = 512 * 1024  # bytes: a pull_request delivery is a few dozen KiB (GitHub caps at 25 MB)
MAX_PAGES = 10  # of 100 items: reviews or open pull requests of one head branch
TOKEN_MARGIN = 300.0  # seconds before an installation token expires that a new one is minted
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHub:
    """One repository on GitHub (or GitHub Enterprise: ``api_url`` https://HOST/api/v3)."""

    name = "GitHub"

    def __init__(self, settings: ForgeSettings, timeout: Optional[float] = None,
                 clock: Callable[[], float] = time.time):
        self.settings, self.timeout, self.clock = settings, timeout or settings.timeout, clock
        self.api = settings.api_url.rstrip("/")
        self.origin = origin(self.api)
        self.repo_path = "/repos/" + "/".join(quote(p, safe="") for p in settings.repository.split("/"))
        self.owner = settings.repository.split("/")[0]
        # GraphQL: https://api.github.com/graphql; GitHub Enterprise: https://HOST/api/graphql
        self.graphql = (self.api[:-len("/v3")] if self.api.endswith("/api/v3") else self.api) + "/graphql"
        self._session = bounded_session(self.timeout)
        self._lock = threading.Lock()
        self._installation: tuple = ("", 0.0)  # (token, epoch seconds it expires)
        self._spent_until = 0.0  # the rate limit is spent until then (X-RateLimit-Reset)

    def __repr__(self) -> str:
        return f"GitHub({self.api}, {self.settings.repository})"

    # ---- the contract ------------------------------------------------------------------------

    def open(self, draft: PullRequestDraft) -> PullRequest:
        found = self.find_open(draft.branch)
        if found is None:
            answer = self._call("POST", f"{self.repo_path}/pulls", "open a pull request", json={
                "title": draft.title, "body": draft.body, "head": draft.branch, "base": draft.base,
                "maintainer_can_modify": False}, ok=(201,))
            found = _pull_request(answer.json())
        # The pull request stands from here: a label, a reviewer or auto-merge GitHub refuses
        # (a reviewer who is no collaborator: 422) is logged, and a person adds it.
        extras = [("label the pull request", "POST", f"{self.repo_path}/issues/{found.number}/labels",
                   {"labels": list(draft.labels)}, draft.labels),
                  ("request reviewers", "POST", f"{self.repo_path}/pulls/{found.number}/requested_reviewers",
                   {"reviewers": list(draft.reviewers)}, draft.reviewers)]
        for what, method, path, body, wanted in extras:
            if wanted:
                try:
                    self._call(method, path, what, json=body, ok=(200, 201))
                except (ForgeRefused, ForgeUnavailable) as e:
                    log.warning("pull request #%d opened, but could not %s: %s", found.number, what, logged(e))
        if draft.auto_merge:
            try:
                self._auto_merge(found)
            except (ForgeRefused, ForgeUnavailable) as e:
                log.warning("pull request #%d opened, but could not enable auto-merge: %s", found.number, logged(e))
        return found

    def _auto_merge(self, pr: PullRequest) -> None:
        """GitHub's auto-merge (GraphQL only: ``enablePullRequestAutoMerge``): merged once its
        required reviews and checks pass. A repository that does not allow it keeps the pull
        request open for a person to merge: logged, not a failure."""
        node = self._call("GET", f"{self.repo_path}/pulls/{pr.number}", "read the pull request").json().get("node_id")
        answer = self._call("POST", self.graphql, "enable auto-merge", absolute=True, json={
            "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: {pullRequestId: $id}) "
                     "{ pullRequest { number } } }", "variables": {"id": node}})
        errors = answer.json().get("errors") if isinstance(answer.json(), dict) else None
        if errors:
            log.warning("auto-merge of %s #%d not enabled: %s", self, pr.number,
                        logged(str((errors[0] or {}).get("message", ""))))

    def get(self, number: int, etag: Optional[str] = None) -> Optional[PullRequest]:
        answer = self._call("GET", f"{self.repo_path}/pulls/{int(number)}", "read the pull request",
                            etag=etag, ok=(200, 304))
        if answer.status_code == 304:
            return None
        found = _pull_request(answer.json(), etag=answer.headers.get("ETag"))
        if found.state == OPEN:
            found = _with(found, approved=self.approved(found.number))
        return found

    def find_open(self, branch: str) -> Optional[PullRequest]:
        for item in self._pages(f"{self.repo_path}/pulls", "list open pull requests",
                                {"state": "open", "head": f"{self.owner}:{branch}"}):
            found = _pull_request(item)
            if found.branch == branch:
                return found
        return None

    def update(self, number: int, title: str, body: str) -> PullRequest:
        answer = self._call("PATCH", f"{self.repo_path}/pulls/{int(number)}", "update the pull request",
                            json={"title": title, "body": body})
        return _pull_request(answer.json())

    def close(self, number: int, comment: str) -> PullRequest:
        self._call("POST", f"{self.repo_path}/issues/{int(number)}/comments", "comment on the pull request",
                   json={"body": comment}, ok=(201,))
        answer = self._call("PATCH", f"{self.repo_path}/pulls/{int(number)}", "close the pull request",
                            json={"state": "closed"})
        return _pull_request(answer.json())

    def approved(self, number: int) -> bool:
        """Someone approved and nobody's latest review asks for changes (each reviewer's last
        word counts, as GitHub's required reviews count it)."""
        last = {}
        for review in self._pages(f"{self.repo_path}/pulls/{int(number)}/reviews", "read the reviews", {}):
            state = str(review.get("state") or "").upper()
            if state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                last[(review.get("user") or {}).get("login")] = state
        return "APPROVED" in last.values() and "CHANGES_REQUESTED" not in last.values()

    def webhook(self, headers: Mapping[str, str], body: bytes) -> Optional[PullRequestEvent]:
        """A delivery checked as GitHub signs it (``X-Hub-Signature-256``: HMAC-SHA256 of the body
        with the webhook's secret), then read; None for events about no pull request."""
        headers = {k.lower(): v for k, v in headers.items()}
        secret = self.settings.webhook_secret
        if not secret:
            raise FeedbackNotConfigured(f"No webhook secret is set for GitHub ({self.settings.webhook_secret_variable}): "
                                        "no delivery is accepted.")
        if len(body) > MAX_WEBHOOK_BODY:
            raise EventTooLarge(f"The body has {len(body)} bytes; at most {MAX_WEBHOOK_BODY} are accepted.")
        signature = headers.get("x-hub-signature-256") or ""
        if not signature:
            raise Unsigned("No X-Hub-Signature-256 header: set the webhook's secret on GitHub.")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            raise BadSignature("X-Hub-Signature-256 does not match the body: wrong secret, or altered.")
        delivery = headers.get("x-github-delivery") or ""
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", delivery):
            raise MalformedEvent("X-GitHub-Delivery is missing or not a delivery id.")
        try:
            payload = load_json(body, "The delivery")
        except UnreadableDocument as e:
            raise MalformedEvent(str(e)) from None
        if not isinstance(payload, dict):
            raise MalformedEvent("The delivery is not a JSON object.")
        kind, action = headers.get("x-github-event", ""), payload.get("action")
        if kind not in ("pull_request", "pull_request_review") or not isinstance(payload.get("pull_request"), dict):
            return None
        try:
            found = _pull_request(payload["pull_request"])
        except (KeyError, TypeError, ValueError):
            raise MalformedEvent("The delivery's pull_request lacks its number, state or branches.") from None
        actor = str((payload.get("sender") or {}).get("login") or "") or None
        if kind == "pull_request_review":
            review = payload.get("review") or {}
            if action != "submitted" or str(review.get("state", "")).lower() != "approved":
                return None
            actor = str((review.get("user") or {}).get("login") or actor or "") or None
            return PullRequestEvent(delivery, "approved", _with(found, approved=True), actor)
        named = {"opened": "opened", "reopened": "opened", "synchronize": "updated", "closed": found.state}
        if action not in named:
            return None
        return PullRequestEvent(delivery, named[action], found, found.merged_by or actor
                                if named[action] == MERGED else actor)

    # ---- HTTP ----------------------------------------------------------------------------------

    def _pages(self, path: str, what: str, params: dict):
        url, params = f"{self.api}{path}", {**params, "per_page": 100}
        for _ in range(MAX_PAGES):
            answer = self._call("GET", url, what, params=params, absolute=True)
            items = answer.json()
            if not isinstance(items, list):
                raise ForgeUnavailable(f"GitHub answered {what} with something other than a list.")
            yield from (i for i in items if isinstance(i, dict))
            found = _NEXT.search(answer.headers.get("Link", ""))
            if not found or origin(found.group(1)) != self.origin:  # the token stays at the API
                return
            url, params = found.group(1), None

    def _call(self, method: str, path: str, what: str, *, json=None, params=None, etag=None,
              ok=(200,), absolute: bool = False) -> requests.Response:
        url = path if absolute else f"{self.api}{path}"
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "Ferry", "Authorization": f"Bearer {self._token()}"}
        if etag:
            headers["If-None-Match"] = etag
        answer = self._send(method, url, what, headers, json=json, params=params)
        if answer.status_code not in ok:
            raise self._refusal(answer, what)
        return answer

    def _send(self, method, url, what, headers, **kwargs) -> requests.Response:
        now = self.clock()
        if now < self._spent_until:  # GitHub said so: no request until the limit refills
            raise ForgeRateLimited(f"GitHub's rate limit is spent until {_clock(self._spent_until)}: "
                                   f"could not {what}. Try again then.", self._spent_until)
        try:
            answer = send(self._session, method, url, timeout=self.timeout, headers=headers, **kwargs)
        except (requests.RequestException, RegistryUnavailable, OSError) as e:
            log.warning("GitHub %s %s: %s", method, self.api, logged(type(e).__name__))
            raise ForgeUnavailable(f"GitHub ({self.origin.netloc if self.origin else self.api}) did not answer: "
                                   f"could not {what}. Try again later.") from None
        if answer.headers.get("X-RateLimit-Remaining") == "0":
            self._spent_until = _number(answer.headers.get("X-RateLimit-Reset"), now + 60)
        return answer

    def _refusal(self, answer: requests.Response, what: str) -> Exception:
        status, headers = answer.status_code, answer.headers
        try:
            message = shown(str(answer.json().get("message") or ""), 160)
        except (ValueError, AttributeError):
            message = ""
        limited = status == 429 or (status == 403 and (headers.get("Retry-After")
                                                       or headers.get("X-RateLimit-Remaining") == "0"))
        if limited:
            reset = (self.clock() + _number(headers.get("Retry-After"), 60)) if headers.get("Retry-After") \
                else _number(headers.get("X-RateLimit-Reset"), self.clock() + 60)
            self._spent_until = max(self._spent_until, reset)
            return ForgeRateLimited(f"GitHub's rate limit is spent until {_clock(reset)}: could not {what}. "
                                    "Try again then.", reset)
        if status >= 500:
            return ForgeUnavailable(f"GitHub failed ({status}): could not {what}. Try again later.")
        log.warning("GitHub refused to %s for %s: %s %s", what, self.settings.repository, status, logged(message))
        hint = {401: f"the token ({self._where_token()}) is not valid, or expired",
                403: f"the token ({self._where_token()}) lacks the permission (contents and pull "
                     "requests: read and write)",
                404: f"no repository {self.settings.repository} or pull request there for this token",
                422: message or "the request is not valid"}.get(status, message or "refused")
        return ForgeRefused(f"GitHub refused to {what} ({status}): {hint}.")

    def _where_token(self) -> str:
        return f"GitHub App {self.settings.app.app_id}" if self.settings.app else self.settings.token_variable

    # ---- auth -----------------------------------------------------------------------------------

    def _token(self) -> str:
        app = self.settings.app
        if app is None:
            return self.settings.token
        with self._lock:
            token, expires = self._installation
            now = self.clock()
            if token and now < expires - TOKEN_MARGIN:
                return token
            import jwt  # PyJWT with cryptography: only a GitHub App needs it
            assertion = jwt.encode({"iat": int(now) - 60, "exp": int(now) + 540, "iss": app.app_id},
                                   app.private_key, algorithm="RS256")
            url = f"{self.api}/app/installations/{quote(app.installation_id)}/access_tokens"
            answer = self._send("POST", url, "get the GitHub App's installation token",
                                {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                                 "User-Agent": "Ferry", "Authorization": f"Bearer {assertion}"})
            if answer.status_code != 201:
                raise self._refusal(answer, "get the GitHub App's installation token")
            try:
                data = answer.json()
                token = str(data["token"])
                expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError, TypeError):
                raise ForgeUnavailable("GitHub's installation token answer has no token or expiry.") from None
            self._installation = (token, expires)
            return token


def _pull_request(data: dict, etag: Optional[str] = None) -> PullRequest:
    """GitHub's pull request object (REST or webhook) as the contract's ``PullRequest``."""
    merged = bool(data.get("merged") or data.get("merged_at"))
    state = MERGED if merged else (OPEN if data["state"] == "open" else CLOSED)
    return PullRequest(int(data["number"]), str(data.get("html_url") or ""), state,
                       str(data["head"]["ref"]), str(data["base"]["ref"]), str(data["head"]["sha"]),
                       merge_commit=str(data.get("merge_commit_sha") or "") or None if merged else None,
                       merged_by=str((data.get("merged_by") or {}).get("login") or "") or None,
                       etag=etag)


def _with(pr: PullRequest, **changes) -> PullRequest:
    return replace(pr, **changes)


def _number(text, default: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
