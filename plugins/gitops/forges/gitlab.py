"""GitLab's merge requests as the forge contract's pull requests (GitLab.com or self-managed).

One project (``group/sub/project``, or its number) through its REST API (``gitlab_api``), with a
project or group access token: the ``api`` scope and at least the Developer role open, update and
close merge requests; auto-merge needs a role allowed to merge into the target branch.

- ``open``: an open merge request from the same branch (of this project, not a fork's branch of
  the same name) is returned as it is; else reviewers are looked up by user name first (an
  unknown name refuses before anything is made), then the merge request is made with
  ``remove_source_branch``. Two Ferry processes racing get GitLab's 409 for the second, which
  then returns the first one's. Auto-merge is asked after (``auto_merge``, and the older
  ``merge_when_pipeline_succeeds`` for GitLab before 17.11), guarded by the head commit; if
  GitLab refuses it, the merge request stays open with a note saying so, and the refusal is
  logged: a person merges it.
- ``get``: GitLab keeps approvals apart from the merge request (``…/approvals``), and approving
  does not change the merge request's ETag; so ``get`` reads both, each conditionally, and the
  ``etag`` it hands back holds both ETags. Nothing changed (304 twice): None.
  Only ``get`` reads approvals: ``open``, ``find_open`` and ``update`` say ``approved=False``.
- ``close``: a merge request already merged or closed is left as it is (no comment on it).
- ``webhook``: ``gitlab_hooks.read_hook``; the deliveries accepted are remembered per API URL and
  project in this process (a client made per request forgets none), unless ``deliveries`` is given.
- States: ``opened`` and ``locked`` (being merged) are open, ``merged`` and ``closed`` as said.
  The commit on the target branch is ``merge_commit_sha``, else ``squash_commit_sha``, else (a
  fast-forward merge) the head ``sha``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping, Optional

from ..errors import ForgeRefused, ForgeUnavailable, FerryError, logged, shown
from ..forge_settings import GITLAB_COM, parse_gitlab_forge  # noqa: F401 (its settings live there)
from . import MERGED, OPEN, PullRequest, PullRequestDraft, PullRequestEvent
from .gitlab_api import GitLabApi, project_id
from .gitlab_hooks import STATES, Deliveries, read_hook

log = logging.getLogger(__name__)

_ETAG_JOIN = " ; "  # between the merge request's ETag and its approvals' (neither contains it)


class GitLab:
    """One GitLab project's merge requests (the ``Forge`` contract)."""

    def __init__(self, api_url: str, project: str, token: str, *, webhook_secret: str = "",
                 auth: str = "private-token", timeout: float = 10.0,
                 token_variable: str = "the forge token", deliveries: Optional[Deliveries] = None,
                 clock: Callable[[], float] = time.time, session=None):
        self.project = project.strip("/")
        self.api = GitLabApi(api_url, token, auth=auth, timeout=timeout,
                             token_variable=token_variable, session=session, clock=clock)
        self._path = f"/projects/{project_id(self.project)}/merge_requests"
        self._secret, self.clock = webhook_secret, clock
        self.deliveries = deliveries or _shared_deliveries(self.api.base, self.project)

    def __repr__(self) -> str:
        return f"GitLab({self.api.base!r}, {self.project!r})"

    # ---- the contract -------------------------------------------------------------------------

    def open(self, draft: PullRequestDraft) -> PullRequest:
        found = self.find_open(draft.branch)
        if found is not None:
            if found.base != draft.base:
                raise ForgeRefused(f"Merge request !{found.number} from `{shown(draft.branch, 80)}` "
                                   f"is open into `{shown(found.base, 80)}`, not "
                                   f"`{shown(draft.base, 80)}`: close it in GitLab ({found.url}).")
            return found
        reviewer_ids = [self._user_id(name) for name in draft.reviewers]
        fields = {"source_branch": draft.branch, "target_branch": draft.base, "title": draft.title,
                  "description": draft.body, "remove_source_branch": True}
        if draft.labels:
            fields["labels"] = ",".join(draft.labels)
        if reviewer_ids:
            fields["reviewer_ids"] = reviewer_ids
        what = f"open a merge request from {shown(draft.branch, 80)}"
        try:
            answer = self.api.call("POST", self._path, what, json=fields)
        except ForgeRefused as e:
            # 409: another open merge request from this branch (a second Ferry got there first).
            again = self.find_open(draft.branch) if getattr(e, "status", 0) == 409 else None
            if again is None:
                raise
            return again
        opened = self._pull_request(answer.data, what)
        if draft.auto_merge:
            self._auto_merge(opened)
        return opened

    def get(self, number: int, etag: Optional[str] = None) -> Optional[PullRequest]:
        mr_etag, _, approvals_etag = (etag or "").partition(_ETAG_JOIN)
        what = f"read merge request !{number}"
        answer = self.api.call("GET", f"{self._path}/{number}", what, etag=mr_etag or None)
        approvals = self.api.call("GET", f"{self._path}/{number}/approvals",
                                  f"read the approvals of merge request !{number}",
                                  etag=approvals_etag or None)
        if answer.status == 304 and approvals.status == 304:
            return None
        if answer.status == 304:  # only the approvals changed: the merge request is read again
            answer = self.api.call("GET", f"{self._path}/{number}", what)
        if approvals.status == 304:
            approvals = self.api.call("GET", f"{self._path}/{number}/approvals",
                                      f"read the approvals of merge request !{number}")
        approved = isinstance(approvals.data, dict) and approvals.data.get("approved") is True
        both = f"{answer.etag}{_ETAG_JOIN}{approvals.etag}" if answer.etag and approvals.etag else None
        return self._pull_request(answer.data, what, approved=approved, etag=both)

    def find_open(self, branch: str) -> Optional[PullRequest]:
        what = f"list the open merge requests from {shown(branch, 80)}"
        for item in self.api.pages(self._path, what, {"source_branch": branch, "state": "opened"}):
            if isinstance(item, dict) and item.get("source_branch") == branch and \
                    item.get("source_project_id") == item.get("target_project_id"):
                return self._pull_request(item, what)
        return None

    def update(self, number: int, title: str, body: str) -> PullRequest:
        what = f"update merge request !{number}"
        answer = self.api.call("PUT", f"{self._path}/{number}", what,
                               json={"title": title, "description": body})
        return self._pull_request(answer.data, what)

    def close(self, number: int, comment: str) -> PullRequest:
        now = self._pull_request(self.api.call("GET", f"{self._path}/{number}",
                                               f"read merge request !{number}").data,
                                 f"read merge request !{number}")
        if now.state != OPEN:
            return now
        self._note(number, comment)
        what = f"close merge request !{number}"
        answer = self.api.call("PUT", f"{self._path}/{number}", what, json={"state_event": "close"})
        return self._pull_request(answer.data, what)

    def webhook(self, headers: Mapping[str, str], body: bytes) -> Optional[PullRequestEvent]:
        return read_hook(headers, body, secret=self._secret, project=self.project,
                         deliveries=self.deliveries, now=self.clock())

    # ---- parts --------------------------------------------------------------------------------

    def _user_id(self, username: str) -> int:
        what = f"look up the GitLab user {shown(username, 60)}"
        for user in self.api.pages("/users", what, {"username": username}):
            if isinstance(user, dict) and str(user.get("username", "")).lower() == username.lower() \
                    and isinstance(user.get("id"), int):
                return user["id"]
        raise ForgeRefused(f"GitLab at {self.api.host} has no user `{shown(username, 60)}` (a reviewer "
                           "in the forge settings): name reviewers by their GitLab user name.")

    def _note(self, number: int, comment: str) -> None:
        self.api.call("POST", f"{self._path}/{number}/notes", f"comment on merge request !{number}",
                      json={"body": comment})

    def _auto_merge(self, opened: PullRequest) -> None:
        """Ask GitLab to merge once its checks pass; a refusal is said on the merge request."""
        try:
            self.api.call("PUT", f"{self._path}/{opened.number}/merge",
                          f"set auto-merge on merge request !{opened.number}",
                          json={"auto_merge": True, "merge_when_pipeline_succeeds": True,
                                "sha": opened.head_sha, "should_remove_source_branch": True})
        except FerryError as e:
            # GitLab answers 401 to a merge the token's role may not make, whatever the token.
            reason = (f"the token's role may not merge into `{opened.base}`"
                      if getattr(e, "status", 0) == 401 else str(e))
            log.warning("GitLab auto-merge of !%d not set: %s", opened.number, logged(reason))
            try:
                self._note(opened.number, f"Ferry could not set auto-merge: {reason}. Merge it by "
                                          "hand once it is reviewed.")
            except FerryError as again:
                log.warning("GitLab note on !%d not made: %s", opened.number, logged(again))

    def _pull_request(self, data, what: str, approved: bool = False,
                      etag: Optional[str] = None) -> PullRequest:
        if not isinstance(data, dict) or not isinstance(data.get("iid"), int) or \
                data.get("state") not in STATES:
            raise ForgeUnavailable(f"GitLab at {self.api.host} answered the request to {what} "
                                   "with something other than a merge request.")
        state = STATES[data["state"]]
        merger = data.get("merge_user") or data.get("merged_by")  # merged_by: before GitLab 14.7
        merged_by = _text(merger.get("username")) if isinstance(merger, dict) and state == MERGED else ""
        head = _text(data.get("sha"))
        merge_commit = _text(data.get("merge_commit_sha")) or _text(data.get("squash_commit_sha")) \
            or (head if state == MERGED else "")
        return PullRequest(
            number=data["iid"], url=_text(data.get("web_url")), state=state,
            branch=_text(data.get("source_branch")), base=_text(data.get("target_branch")),
            head_sha=head, merge_commit=merge_commit or None,
            merged_by=merged_by or None, approved=approved, etag=etag)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


_DELIVERIES: dict = {}  # (API URL, project) -> Deliveries: a client made per request forgets nothing
_DELIVERIES_LOCK = threading.Lock()


def _shared_deliveries(api_url: str, project: str) -> Deliveries:
    with _DELIVERIES_LOCK:
        return _DELIVERIES.setdefault((api_url, project.lower()), Deliveries())
