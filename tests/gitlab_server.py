"""A local GitLab for the tests: REST API v4 merge requests on 127.0.0.1, as GitLab documents them
(doc/api/merge_requests.md, merge_request_approvals.md, notes.md, users.md, rest/_index.md for
pagination and errors, security/rate_limits.md), over a real bare Git remote.

Endpoints (``/api/v4``): ``GET /users?username=``; under ``/projects/:id`` (the number or the
URL-encoded path, ``group%2Fsub%2Fproject``): ``GET|POST /merge_requests`` (``source_branch``,
``state`` filters; ``page``/``per_page``), ``GET|PUT /merge_requests/:iid`` (``title``,
``description``, ``state_event``), ``POST …/notes``, ``GET …/approvals``, ``PUT …/merge``
(``auto_merge``/``merge_when_pipeline_succeeds``, ``sha``).

As GitLab answers: ``PRIVATE-TOKEN`` or ``Authorization: Bearer``; 401 ``{"message": "401
Unauthorized"}``; a token without the scope a request needs (writes: ``api``; reads: ``api`` or
``read_api``) 403 ``{"error": "insufficient_scope", …, "scope": "api"}``; a role too low 403
``{"message": "403 Forbidden"}``; a project the token cannot see 404 ``{"message": "404 Project
Not Found"}``; a second open merge request from one branch 409 ``{"message": ["Another open merge
request already exists for this source branch: !1"]}``; source = target 422; a missing ``title``
400 ``{"error": "title is missing"}``; merging by a role that may not 401, a merge request not open
405, a stale ``sha`` 409. Every answer has ``RateLimit-Limit/-Observed/-Remaining/-Reset/-ResetTime``
(``limit`` requests a minute); past it 429 ``Retry later`` with ``Retry-After``. Bodies get Rails'
weak ``ETag`` (``W/"<md5>"``) and a matching ``If-None-Match`` a 304. Lists: ``X-Page``,
``X-Per-Page``, ``X-Total``, ``X-Total-Pages``, ``X-Next-Page``, ``X-Prev-Page`` and ``Link``.

The Git side is real (``tests/gitlab_git.py``): a merge request's ``sha`` is its source branch's
tip in the bare remote; ``merge()`` (a person pressing Merge, or auto-merge once approved) makes
GitLab's merge commit there. Webhooks (``add_hook``) are POSTed as GitLab sends them: the
documented Merge Request Hook body (``tests/data/gitlab-merge-request-hook.json``) and headers.

Faults for the client: ``fail_next`` (status, body, headers, a delay), ``redirect_next``; every
request is recorded in ``received`` with its headers.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.gitlab_git import HookSender, MergeCommits

DEVELOPER, MAINTAINER = 30, 40


@dataclass
class Fault:
    status: int
    body: object = None  # JSON, or bytes as they are
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class GitLabServer(HookSender, MergeCommits):
    def __init__(self, remote: str, project: str = "platform/deploy/fleet", project_id: int = 7,
                 tokens: Optional[dict] = None, users: Optional[dict] = None,
                 approvals_required: int = 1, limit: int = 600, merge_role: int = MAINTAINER):
        self.remote, self.project, self.project_id = remote, project, project_id
        # token -> (username, scopes, role)
        self.tokens = tokens if tokens is not None else {"glpat-ferry": ("ferry-bot", {"api"}, DEVELOPER)}
        self.users = users if users is not None else {"ferry-bot": 5, "alice": 11, "bob": 12}
        self.approvals_required, self.limit, self.merge_role = approvals_required, limit, merge_role
        self.merge_requests: dict = {}  # iid -> the merge request as GitLab keeps it
        self.approved_by: dict = {}  # iid -> [usernames]
        self.notes: dict = {}  # iid -> [note bodies]
        self.received: list = []  # (method, path with query, headers)
        self.faults: list = []  # Fault, for the next requests in order
        self.window, self.observed = time.time(), 0
        self.links = True  # lists carry `Link`; False: only the X-* headers (keyset-less clients)
        self._ids = itertools.count(100)
        self.lock = threading.RLock()
        self._hooks_init()
        self.server = _Quiet(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.web = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.web}/api/v4"

    def start(self) -> "GitLabServer":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what the test does -------------------------------------------------------------------

    def fail_next(self, status: int, body=None, headers: Optional[dict] = None, times: int = 1,
                  delay: float = 0.0) -> None:
        self.faults.extend([Fault(status, body, dict(headers or {}), delay)] * times)

    def redirect_next(self, location: str, status: int = 302) -> None:
        self.fail_next(status, b"", {"Location": location})

    def approve(self, iid: int, username: str) -> None:
        """``username`` approves in GitLab; auto-merge, if set, merges once the approvals suffice."""
        with self.lock:
            self.approved_by.setdefault(iid, []).append(username)
            mr = self.merge_requests[iid]
            self.hook(mr, "approved" if self.approved(iid) else "approval", username)
            if mr["merge_when_pipeline_succeeds"] and self.approved(iid):
                self.merge(iid, mr["merge_user"]["username"])

    def approved(self, iid: int) -> bool:
        return len(self.approved_by.get(iid, [])) >= self.approvals_required

    def merge(self, iid: int, username: str) -> str:
        """``username`` merges the merge request: GitLab's merge commit on the target branch."""
        with self.lock:
            mr = self.merge_requests[iid]
            assert mr["state"] == "opened", mr["state"]
            mr["sha"] = self.tip(mr["source_branch"])
            sha = self.merge_commit(mr)
            if mr["force_remove_source_branch"]:
                self.delete_branch(mr["source_branch"])
            who = self.user(username)
            mr.update(state="merged", merge_commit_sha=sha, merge_user=who, merged_by=who,
                      merged_at=_now(), updated_at=_now())
            self.hook(mr, "merge", username)
            return sha

    def add_fork_merge_request(self, branch: str, target: str = "main") -> dict:
        """A merge request from a fork's branch of the same name (another source project)."""
        with self.lock:
            mr = self._new_merge_request(branch, target, "From a fork", "", "alice", [], [])
            mr.update(source_project_id=self.project_id + 1000, sha="0" * 40)
            return mr

    # ---- the API ------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple:
        """(status, JSON or bytes, extra headers) for one request, as GitLab answers it."""
        token = headers.get("PRIVATE-TOKEN") or (headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, {"message": "401 Unauthorized"}, {}
        username, scopes, role = self.tokens[token]
        write = method != "GET"
        if not (scopes & ({"api"} if write else {"api", "read_api"})):
            return 403, {"error": "insufficient_scope", "error_description": "The request requires "
                         "higher privileges than provided by the access token.", "scope": "api"}, \
                {"WWW-Authenticate": 'Bearer realm="", error="insufficient_scope", scope="api"'}
        parts = path.removeprefix("/api/v4").strip("/").split("/")
        if parts == ["users"] and method == "GET":
            name = query.get("username", [""])[0]
            found = [self._public(n) for n in self.users if n.lower() == name.lower()]
            return self._page(found, query, path)
        if len(parts) < 3 or parts[0] != "projects" or parts[2] != "merge_requests":
            return 404, {"error": "404 Not Found"}, {}
        if unquote(parts[1]) not in (self.project, str(self.project_id)):
            return 404, {"message": "404 Project Not Found"}, {}
        rest, fields = parts[3:], json.loads(body or b"{}")
        if not rest:
            if method == "GET":
                return self._list(query, path)
            if method == "POST":
                return self._create(fields, username, role)
            return 405, {"message": "405 Method Not Allowed"}, {}
        iid = int(rest[0]) if rest[0].isdigit() else -1
        mr = self.merge_requests.get(iid)
        if mr is None:
            return 404, {"message": "404 Not found"}, {}
        if write and role < DEVELOPER:
            return 403, {"message": "403 Forbidden"}, {}
        if rest[1:] == [] and method == "GET":
            return 200, self._shown(mr), {}
        if rest[1:] == [] and method == "PUT":
            return self._edit(mr, fields, username)
        if rest[1:] == ["notes"] and method == "POST":
            self.notes.setdefault(iid, []).append(fields["body"])
            return 201, {"id": next(self._ids), "type": None, "body": fields["body"],
                         "author": self._public(username), "noteable_type": "MergeRequest",
                         "noteable_iid": iid, "system": False, "created_at": _now()}, {}
        if rest[1:] == ["approvals"] and method == "GET":
            return 200, self._approvals(mr), {}
        if rest[1:] == ["merge"] and method == "PUT":
            return self._merge_put(mr, fields, username, role)
        return 404, {"error": "404 Not Found"}, {}

    def _create(self, fields: dict, username: str, role: int) -> tuple:
        for name in ("source_branch", "target_branch", "title"):
            if not fields.get(name):
                return 400, {"error": f"{name} is missing"}, {}
        if role < DEVELOPER:
            return 403, {"message": "403 Forbidden"}, {}
        source, target = fields["source_branch"], fields["target_branch"]
        if source == target:
            return 422, {"message": ["You can't use same project/branch for source and target"]}, {}
        if not self.tip(source):
            return 409, {"message": [f'Source branch "{source}" does not exist']}, {}
        clash = next((m for m in self.merge_requests.values() if m["state"] == "opened" and
                      m["source_branch"] == source and m["source_project_id"] == self.project_id), None)
        if clash:
            return 409, {"message": ["Another open merge request already exists for this source "
                                     f"branch: !{clash['iid']}"]}, {}
        reviewers = [name for name, id_ in self.users.items() if id_ in fields.get("reviewer_ids", [])]
        labels = [l for l in str(fields.get("labels", "")).split(",") if l]
        mr = self._new_merge_request(source, target, fields["title"], fields.get("description", ""),
                                     username, labels, reviewers)
        mr["force_remove_source_branch"] = bool(fields.get("remove_source_branch"))
        self.hook(mr, "open", username)
        return 201, self._shown(mr), {}

    def _new_merge_request(self, source, target, title, description, author, labels, reviewers):
        iid = max(self.merge_requests, default=0) + 1
        mr = {"id": next(self._ids), "iid": iid, "project_id": self.project_id, "title": title,
              "description": description, "state": "opened", "created_at": _now(),
              "updated_at": _now(), "merged_by": None, "merge_user": None, "merged_at": None,
              "closed_by": None, "closed_at": None, "target_branch": target, "source_branch": source,
              "author": self._public(author), "reviewers": [self._public(r) for r in reviewers],
              "source_project_id": self.project_id, "target_project_id": self.project_id,
              "labels": labels, "draft": False, "merge_when_pipeline_succeeds": False,
              "detailed_merge_status": "mergeable", "sha": None, "merge_commit_sha": None,
              "squash_commit_sha": None, "force_remove_source_branch": False,
              "web_url": f"{self.web}/{self.project}/-/merge_requests/{iid}"}
        self.merge_requests[iid] = mr
        return mr

    def _edit(self, mr: dict, fields: dict, username: str) -> tuple:
        for name in ("title", "description"):
            if name in fields:
                mr[name] = fields[name]
        event = fields.get("state_event")
        if event == "close" and mr["state"] == "opened":
            mr.update(state="closed", closed_by=self._public(username), closed_at=_now())
        elif event == "reopen" and mr["state"] == "closed":
            mr.update(state="opened", closed_by=None, closed_at=None)
        mr["updated_at"] = _now()
        self.hook(mr, {"close": "close", "reopen": "reopen"}.get(event, "update"), username)
        return 200, self._shown(mr), {}

    def _merge_put(self, mr: dict, fields: dict, username: str, role: int) -> tuple:
        if role < self.merge_role:
            return 401, {"message": "401 Unauthorized"}, {}
        if mr["state"] != "opened":
            return 405, {"message": "405 Method Not Allowed"}, {}
        head = self.tip(mr["source_branch"])
        if fields.get("sha") and fields["sha"] != head:
            return 409, {"message": f"SHA does not match HEAD of source branch: {head}"}, {}
        mr["should_remove_source_branch"] = bool(fields.get("should_remove_source_branch"))
        if (fields.get("auto_merge") or fields.get("merge_when_pipeline_succeeds")) and \
                not self.approved(mr["iid"]):
            mr.update(merge_when_pipeline_succeeds=True, merge_user=self._public(username))
            return 200, self._shown(mr), {}
        self.merge(mr["iid"], username)
        return 200, self._shown(mr), {}

    def _list(self, query: dict, path: str) -> tuple:
        state = query.get("state", ["all"])[0]
        branch = query.get("source_branch", [None])[0]
        found = [self._shown(m) for m in sorted(self.merge_requests.values(), key=lambda m: -m["iid"])
                 if state in ("all", m["state"]) and branch in (None, m["source_branch"])]
        return self._page(found, query, path)

    def _page(self, items: list, query: dict, path: str) -> tuple:
        per_page = max(1, min(100, int(query.get("per_page", ["20"])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        pages = max(1, -(-len(items) // per_page))
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        plain = {k: v[0] for k, v in query.items() if k != "page"}

        def link(n):
            return f"<{self.web}{path}?{urlencode({**plain, 'page': n})}>"
        rels = [(page + 1, "next")] if page < pages else []
        rels += [(page - 1, "prev")] if page > 1 else []
        if self.links:
            headers["Link"] = ", ".join(f'{link(n)}; rel="{rel}"' for n, rel in
                                        rels + [(1, "first"), (pages, "last")])
        return 200, items[(page - 1) * per_page: page * per_page], headers

    def _shown(self, mr: dict) -> dict:
        shown = {k: v for k, v in mr.items() if k not in ("force_remove_source_branch",)}
        if mr["state"] == "opened" and mr["source_project_id"] == self.project_id:
            shown["sha"] = self.tip(mr["source_branch"]) or mr["sha"]
        shown["force_remove_source_branch"] = mr["force_remove_source_branch"]
        return shown

    def _approvals(self, mr: dict) -> dict:
        by = self.approved_by.get(mr["iid"], [])
        return {"id": mr["id"], "iid": mr["iid"], "project_id": self.project_id, "title": mr["title"],
                "state": mr["state"], "created_at": mr["created_at"], "updated_at": mr["updated_at"],
                "merge_status": "can_be_merged", "approved": self.approved(mr["iid"]),
                "approvals_required": self.approvals_required,
                "approvals_left": max(0, self.approvals_required - len(by)),
                "approved_by": [{"user": self._public(n)} for n in by]}

    def user(self, username: str) -> dict:
        return self._public(username)

    def _public(self, username: str) -> dict:
        return {"id": self.users.get(username, 0), "username": username, "name": username.title(),
                "state": "active", "locked": False, "avatar_url": None,
                "web_url": f"{self.web}/{username}"}

    # ---- rate limits ----------------------------------------------------------------------------

    def rate_headers(self) -> tuple:
        """(over the limit, the RateLimit-* headers) for one more request in this minute."""
        now = time.time()
        if now - self.window >= 60:
            self.window, self.observed = now, 0
        self.observed += 1
        reset = int(self.window + 60)
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Observed": str(self.observed),
                   "RateLimit-Remaining": str(max(0, self.limit - self.observed)),
                   "RateLimit-Reset": str(reset), "RateLimit-ResetTime": formatdate(reset, usegmt=True)}
        return self.observed > self.limit, headers


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up on a slow answer (the timeout tests) closed its end


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _handler(gitlab: GitLabServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with gitlab.lock:
                gitlab.received.append((self.command, self.path, dict(self.headers)))
                fault = gitlab.faults.pop(0) if gitlab.faults else None
                over, limits = gitlab.rate_headers()
            if fault is not None:
                time.sleep(fault.delay)
                return self._send(fault.status, fault.body, fault.headers)
            if over:
                return self._send(429, b"Retry later\n", {**limits, "Retry-After": "60",
                                                           "Content-Type": "text/plain"})
            with gitlab.lock:
                status, data, headers = gitlab.answer(self.command, parts.path,
                                                      parse_qs(parts.query), self.headers, body)
            self._send(status, data, {**limits, **headers})

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def _send(self, status: int, data, headers: dict):
            if isinstance(data, (bytes, type(None))):
                payload = data or b""
            else:
                payload = json.dumps(data).encode()
                headers = {"Content-Type": "application/json", **headers}
            if status == 200 and payload:
                etag = f'W/"{hashlib.md5(payload).hexdigest()}"'
                headers = {**headers, "ETag": etag, "Cache-Control": "max-age=0, private, must-revalidate"}
                if self.headers.get("If-None-Match") == etag:
                    status, payload = 304, b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
