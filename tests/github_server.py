"""A local GitHub for the tests: the REST endpoints Ferry uses, as GitHub's REST API reference
documents them (docs.github.com/rest, API version 2022-11-28), over a real bare remote, and its
webhooks signed as GitHub signs them.

- ``POST /repos/{o}/{r}/pulls`` 201 (422 "Validation Failed" when the head branch is missing or
  a pull request for it is open); ``GET …/pulls`` (``state``, ``head=owner:branch``, ``per_page``,
  ``page``, ``Link`` rel="next"); ``GET …/pulls/{n}`` with an ``ETag`` (``If-None-Match`` → 304);
  ``PATCH …/pulls/{n}`` (title, body, state); ``POST …/issues/{n}/comments`` 201; ``POST
  …/issues/{n}/labels`` 200; ``POST …/pulls/{n}/requested_reviewers`` 201; ``GET
  …/pulls/{n}/reviews``.
- Errors as GitHub's: ``{"message": …, "documentation_url": …}``; 401 "Bad credentials", 404
  "Not Found"; the rate limit's ``X-RateLimit-Limit/Remaining/Used/Reset/Resource`` on every
  answer, 403 "API rate limit exceeded…" once spent.
- A GitHub App: ``POST /app/installations/{id}/access_tokens`` takes a JWT (RS256, checked with
  the App's public key: ``iss``, ``iat``/``exp`` at most 10 minutes apart) and answers 201 with
  ``{"token", "expires_at", "permissions", "repository_selection"}``.
- ``merge(n, by)`` merges for real in the bare repository (``git merge-tree --write-tree``, a
  merge commit, the base branch moved), ``close(n, by)``, ``review(n, by)``; each sends the
  webhook (``X-GitHub-Event``, ``X-GitHub-Delivery``, ``X-Hub-Signature-256``) to ``hook_url``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures_git import git, remote_path

DOCS = "https://docs.github.com/rest"


def app_key() -> tuple[str, str]:
    """A GitHub App's private key (PEM, as GitHub downloads it) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class LocalGitHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, remote_url: str, repository: str = "acme/fleet", tokens=("github_pat_test",),
                 app: tuple = (), hook_url: str = "", hook_secret: str = ""):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.remote, self.repository = remote_path(remote_url), repository
        self.tokens = set(tokens)  # accepted bearer tokens
        self.app = app  # (app id, installation id, public key PEM) or ()
        self.hook_url, self.hook_secret = hook_url, hook_secret
        self.pulls: dict = {}  # number -> dict in GitHub's shape
        self.requests: list = []  # (method, path, Authorization header)
        self.minted = 0  # installation tokens given out
        self.not_modified = 0  # conditional reads answered 304
        self.max_per_page = 100  # GitHub's cap on per_page (a test lowers it to see more pages)
        self.remaining, self.limit = 5000, 5000
        self.down = False  # every request answered 503
        self.retry_after = 0  # seconds: a secondary rate limit hit, 403 with Retry-After
        self.allow_auto_merge = True  # the repository's "Allow auto-merge" setting
        self.collaborators = {"dave", "carol", "erin"}  # who may be asked for a review
        # The repository's merge commit settings (GitHub's defaults: "Merge pull request #n from …",
        # then the pull request's title); PR_BODY: its description.
        self.merge_commit_title, self.merge_commit_message = "MERGE_MESSAGE", "PR_TITLE"
        self.deliveries: list = []  # (event, delivery, status of Ferry's answer)
        self.lock = threading.RLock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def links(self) -> str:
        """Where its pagination links point (another origin when a test says so)."""
        return getattr(self, "url_override", "") or self.url

    # ---- what people do on GitHub ----------------------------------------------------------

    def open_pulls(self) -> list:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    def merge(self, number: int, by: str = "carol") -> str:
        with self.lock:
            pr = self.pulls[number]
            base, head = pr["base"]["ref"], pr["head"]["ref"]
            bare = str(self.remote)
            base_sha = git("--git-dir", bare, "rev-parse", f"refs/heads/{base}")
            head_sha = git("--git-dir", bare, "rev-parse", f"refs/heads/{head}")
            tree = git("--git-dir", bare, "merge-tree", "--write-tree", base_sha, head_sha).splitlines()[0]
            title = (pr["title"] if self.merge_commit_title == "PR_TITLE" else
                     f"Merge pull request #{number} from {self.repository.split('/')[0]}/{head}")
            message = {"PR_TITLE": pr["title"], "PR_BODY": pr["body"] or "", "BLANK": ""}[self.merge_commit_message]
            sha = git("--git-dir", bare, "commit-tree", tree, "-p", base_sha, "-p", head_sha,
                      "-m", title, *(["-m", message] if message else []),
                      author=(by, f"{by}@users.noreply.github.com"))
            git("--git-dir", bare, "update-ref", f"refs/heads/{base}", sha, base_sha)
            now = _now()
            pr.update(state="closed", merged=True, merged_at=now, closed_at=now, merge_commit_sha=sha,
                      merged_by=_user(by), head=dict(pr["head"], sha=head_sha))
            self._touch(pr)
        self.send_hook("pull_request", {"action": "closed", "number": number, "pull_request": pr,
                                        "sender": _user(by)})
        return sha

    def close(self, number: int, by: str = "carol") -> None:
        with self.lock:
            pr = self.pulls[number]
            pr.update(state="closed", closed_at=_now())
            self._touch(pr)
        self.send_hook("pull_request", {"action": "closed", "number": number, "pull_request": pr,
                                        "sender": _user(by)})

    def review(self, number: int, by: str = "dave", state: str = "APPROVED") -> None:
        with self.lock:
            pr = self.pulls[number]
            review = {"id": len(pr["_reviews"]) + 1, "user": _user(by), "state": state, "body": "",
                      "submitted_at": _now(), "commit_id": pr["head"]["sha"]}
            pr["_reviews"].append(review)
            self._touch(pr)
        self.send_hook("pull_request_review", {"action": "submitted", "review": dict(review, state=state.lower()),
                                               "pull_request": pr, "sender": _user(by)})

    def pushed(self, number: int, by: str = "erin") -> None:
        """Someone pushed to the pull request's branch: GitHub follows the head, says synchronize."""
        with self.lock:
            pr = self.pulls[number]
            pr["head"]["sha"] = git("--git-dir", str(self.remote), "rev-parse", f"refs/heads/{pr['head']['ref']}")
            self._touch(pr)
        self.send_hook("pull_request", {"action": "synchronize", "number": number, "pull_request": pr,
                                        "sender": _user(by)})

    def send_hook(self, event: str, payload: dict, secret: str = "", delivery: str = "") -> requests.Response:
        body = json.dumps(_public(payload)).encode()
        delivery = delivery or str(uuid.uuid4())
        if not self.hook_url:
            return None
        answer = requests.post(self.hook_url, data=body, timeout=10, headers=signed_headers(
            body, secret or self.hook_secret, event, delivery))
        self.deliveries.append((event, delivery, answer.status_code))
        return answer

    def branches(self) -> list:
        out = git("--git-dir", str(self.remote), "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return out.splitlines()

    def _touch(self, pr: dict) -> None:
        pr["updated_at"] = _now()
        pr["_version"] += 1


def signed_headers(body: bytes, secret: str, event: str = "pull_request", delivery: str = "") -> dict:
    return {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "292430182", "X-Hub-Signature-256":
                "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str) -> dict:
    return {"login": login, "id": abs(hash(login)) % 10 ** 8, "type": "User"}


def _public(pr):
    """GitHub's object without the server's own bookkeeping (keys starting with ``_``)."""
    if isinstance(pr, dict):
        return {k: _public(v) for k, v in pr.items() if not k.startswith("_")}
    if isinstance(pr, list):
        return [_public(v) for v in pr]
    return pr


class _Handler(BaseHTTPRequestHandler):
    server: LocalGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PATCH(self):
        self._serve("PATCH")

    def _serve(self, method: str):
        gh = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        auth = self.headers.get("Authorization") or ""
        with gh.lock:
            gh.requests.append((method, parts.path, auth))
            if gh.down:
                return self._answer(503, {"message": "Service Unavailable", "documentation_url": DOCS})
            app_route = re.fullmatch(r"/app/installations/(\d+)/access_tokens", parts.path)
            if app_route and method == "POST":
                return self._installation_token(app_route.group(1), auth)
            if not auth.startswith("Bearer ") or auth[7:] not in gh.tokens:
                return self._answer(401, {"message": "Bad credentials", "documentation_url": DOCS})
            if gh.remaining <= 0:
                return self._answer(403, {"message": "API rate limit exceeded for user ID 1. If you reach out "
                                          "to GitHub Support for help, please include the request ID.",
                                          "documentation_url": DOCS + "/overview/rate-limits-for-the-rest-api"})
            if gh.retry_after:
                return self._answer(403, {"message": "You have exceeded a secondary rate limit. Please wait a few "
                                          "minutes before you try again.", "documentation_url": DOCS},
                                    {"Retry-After": str(gh.retry_after)})
            gh.remaining -= 1
            if parts.path == "/graphql" and method == "POST":
                return self._graphql(body)
            prefix = f"/repos/{gh.repository}"
            if not parts.path.startswith(prefix + "/"):
                return self._answer(404, {"message": "Not Found", "documentation_url": DOCS})
            return self._route(method, parts.path[len(prefix):], query, body)

    def _route(self, method, path, query, body):
        gh = self.server
        if path == "/pulls" and method == "POST":
            return self._create(body)
        if path == "/pulls" and method == "GET":
            found = [p for n, p in sorted(gh.pulls.items())
                     if query.get("state", "open") in (p["state"], "all")
                     and ("head" not in query or f"{gh.repository.split('/')[0]}:{p['head']['ref']}" == query["head"])]
            return self._page(found, query, "/pulls")
        number = re.fullmatch(r"/(pulls|issues)/(\d+)(/[a-z_]+)?", path)
        if not number or int(number.group(2)) not in gh.pulls:
            return self._answer(404, {"message": "Not Found", "documentation_url": DOCS})
        pr, what = gh.pulls[int(number.group(2))], (number.group(1), number.group(3) or "")
        if what == ("pulls", "") and method == "GET":
            version = f"{pr['number']}:{pr['_version']}".encode()
            etag = f'W/"{hashlib.sha256(version).hexdigest()}"'
            if self.headers.get("If-None-Match") == etag:
                gh.not_modified += 1
                return self._answer(304, None, {"ETag": etag})
            return self._answer(200, pr, {"ETag": etag})
        if what == ("pulls", "") and method == "PATCH":
            for key in ("title", "body", "state"):
                if key in body:
                    pr[key] = body[key]
            gh._touch(pr)
            return self._answer(200, pr)
        if what == ("issues", "/comments") and method == "POST":
            comment = {"id": len(pr["_comments"]) + 1, "body": body["body"], "user": _user("ferry[bot]")}
            pr["_comments"].append(comment)
            return self._answer(201, comment)
        if what == ("issues", "/labels") and method == "POST":
            pr["labels"] += [{"name": n} for n in body["labels"]]
            return self._answer(200, pr["labels"])
        if what == ("pulls", "/requested_reviewers") and method == "POST":
            if set(body["reviewers"]) - gh.collaborators:
                return self._answer(422, {"message": "Reviews may only be requested from collaborators. One or "
                                          "more of the users or teams you specified is not a collaborator of "
                                          f"the {gh.repository} repository.", "documentation_url": DOCS})
            pr["requested_reviewers"] += [_user(n) for n in body["reviewers"]]
            return self._answer(201, pr)
        if what == ("pulls", "/reviews") and method == "GET":
            return self._page(pr["_reviews"], {}, "")
        return self._answer(404, {"message": "Not Found", "documentation_url": DOCS})

    def _graphql(self, body):
        """The one mutation Ferry sends, as GitHub's GraphQL API answers it (200, errors in the body)."""
        gh = self.server
        if "enablePullRequestAutoMerge" not in body.get("query", ""):
            return self._answer(200, {"errors": [{"message": "Unknown mutation"}]})
        pr = next((p for p in gh.pulls.values() if p["node_id"] == body.get("variables", {}).get("id")), None)
        if pr is None:
            return self._answer(200, {"data": {"enablePullRequestAutoMerge": None}, "errors": [
                {"type": "NOT_FOUND", "path": ["enablePullRequestAutoMerge"],
                 "message": "Could not resolve to a node with the global id."}]})
        if not gh.allow_auto_merge:
            return self._answer(200, {"data": {"enablePullRequestAutoMerge": None}, "errors": [
                {"type": "UNPROCESSABLE", "path": ["enablePullRequestAutoMerge"],
                 "message": "Pull request Auto merge is not allowed for this repository"}]})
        pr["auto_merge"] = {"enabled_by": _user("ferry[bot]"), "merge_method": "merge"}
        return self._answer(200, {"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": pr["number"]}}}})

    def _create(self, body):
        gh = self.server
        head, base = body.get("head", ""), body.get("base", "")
        branches = gh.branches()
        invalid = [f for f, ref in (("head", head), ("base", base)) if ref not in branches]
        if invalid or not body.get("title"):
            field = invalid[0] if invalid else "title"
            return self._answer(422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": field, "code": "invalid" if invalid else "missing_field"}],
                "documentation_url": DOCS + "/pulls/pulls#create-a-pull-request", "status": "422"})
        if any(p["head"]["ref"] == head for p in gh.open_pulls()):
            return self._answer(422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {gh.repository.split('/')[0]}:{head}."}],
                "documentation_url": DOCS + "/pulls/pulls#create-a-pull-request", "status": "422"})
        number = max(gh.pulls, default=0) + 1
        sha = git("--git-dir", str(gh.remote), "rev-parse", f"refs/heads/{head}")
        pr = {"number": number, "state": "open", "title": body["title"], "body": body.get("body", ""),
              "html_url": f"https://github.example/{gh.repository}/pull/{number}",
              "url": f"{gh.url}/repos/{gh.repository}/pulls/{number}", "node_id": f"PR_{number}",
              "head": {"ref": head, "sha": sha, "label": f"{gh.repository.split('/')[0]}:{head}"},
              "base": {"ref": base, "label": f"{gh.repository.split('/')[0]}:{base}"},
              "merged": False, "merged_at": None, "merge_commit_sha": None, "merged_by": None,
              "labels": [], "requested_reviewers": [], "draft": False, "auto_merge": None, "created_at": _now(),
              "updated_at": _now(), "user": _user("ferry[bot]"),
              "_reviews": [], "_comments": [], "_version": 1}
        gh.pulls[number] = pr
        return self._answer(201, pr, {"Location": pr["url"]})

    def _page(self, items, query, path):
        per_page, page = min(self.server.max_per_page, int(query.get("per_page", 30))), int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        extra = {}
        if page * per_page < len(items):
            params = "&".join(f"{k}={v}" for k, v in {**query, "page": page + 1}.items())
            extra["Link"] = f'<{self.server.links}{urlsplit(self.path).path}?{params}>; rel="next"'
        return self._answer(200, chunk, extra)

    def _installation_token(self, installation: str, auth: str):
        gh = self.server
        if not gh.app or installation != gh.app[1]:
            return self._answer(404, {"message": "Not Found", "documentation_url": DOCS})
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), gh.app[2], algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=60)
        except jwt.PyJWTError as e:
            return self._answer(401, {"message": f"A JSON web token could not be decoded ({e})",
                                      "documentation_url": DOCS})
        if str(claims["iss"]) != gh.app[0] or claims["exp"] - claims["iat"] > 600:
            return self._answer(401, {"message": "'Expiration time' claim ('exp') is too far in the future",
                                      "documentation_url": DOCS})
        gh.minted += 1
        token = f"ghs_{uuid.uuid4().hex}"
        gh.tokens.add(token)
        expires = datetime.fromtimestamp(time.time() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._answer(201, {"token": token, "expires_at": expires, "repository_selection": "selected",
                                  "permissions": {"contents": "write", "pull_requests": "write"}})

    def _answer(self, status: int, data, headers=None):
        gh = self.server
        body = b"" if data is None else json.dumps(_public(data)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        self.send_header("X-RateLimit-Limit", str(gh.limit))
        self.send_header("X-RateLimit-Remaining", str(max(0, gh.remaining)))
        self.send_header("X-RateLimit-Used", str(gh.limit - max(0, gh.remaining)))
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 1800))
        self.send_header("X-RateLimit-Resource", "core")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
