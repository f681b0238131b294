"""The GitLab forge client against a local GitLab speaking REST API v4 as documented
(tests/gitlab_server.py) over a real bare Git remote: merge requests opened once per branch, read
conditionally, updated, closed with a note, merged for real, and the webhook of that merge read
back; every refusal, outage and rate limit as one line, the token only ever sent to its origin
and never shown."""
import json
import time

import pytest

from gitops.errors import (BadSignature, EventRefused, EventTooLarge, FeedbackNotConfigured,
                           ForgeRateLimited, ForgeRefused, ForgeUnavailable, MalformedEvent,
                           ReplayedEvent, Unsigned)
from gitops.forges import CLOSED, MERGED, OPEN, PullRequestDraft
from gitops.forges.gitlab import GitLab
from tests.fixtures_git import git, remote_log, remote_path, remote_tip
from tests.gitlab_git import HookReceiver, branches, push_branch
from tests.gitlab_server import DEVELOPER, GitLabServer

TOKEN = "glpat-ferry-0123456789abcdef"
SECRET = "hook-secret-4711"
BRANCH = "ferry/dev/podinfo-6.6.1-a1b2c3"


@pytest.fixture
def remote(bare_remote):
    url = bare_remote({"apps/dev/podinfo.yaml": "version: 6.6.0\n"})
    push_branch(url, BRANCH, {"apps/dev/podinfo.yaml": "version: 6.6.1\n"})
    return url


@pytest.fixture
def gitlab(remote):
    server = GitLabServer(remote, tokens={TOKEN: ("ferry-bot", {"api"}, DEVELOPER)}).start()
    receiver = HookReceiver().start()
    server.add_hook(receiver.url, SECRET)
    server.receiver = receiver
    yield server
    server.stop()
    receiver.stop()


def client(server, **kwargs) -> GitLab:
    options = {"webhook_secret": SECRET, "timeout": 2.0, "token_variable": "GITOPS_FORGE_GITLAB_TOKEN"}
    return GitLab(server.url, kwargs.pop("project", server.project), kwargs.pop("token", TOKEN),
                  **{**options, **kwargs})


def draft(**fields) -> PullRequestDraft:
    return PullRequestDraft(**{"branch": BRANCH, "base": "main", "title": "dev: podinfo 6.6.0 → 6.6.1",
                               "body": "Asked by alice in #deploys.", **fields})


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and TOKEN not in text and text.strip(), text
    return text


# ---- merge requests -----------------------------------------------------------------------------

def test_open_makes_one_merge_request_per_branch_with_labels_and_reviewers(gitlab, remote):
    forge = client(gitlab)
    opened = forge.open(draft(labels=("ferry", "dev"), reviewers=("alice", "Bob")))
    assert (opened.number, opened.state, opened.branch, opened.base) == (1, OPEN, BRANCH, "main")
    assert opened.url == f"{gitlab.web}/{gitlab.project}/-/merge_requests/1"
    assert opened.head_sha == remote_tip(remote, BRANCH) and opened.merge_commit is None
    kept = gitlab.merge_requests[1]
    assert kept["labels"] == ["ferry", "dev"] and kept["force_remove_source_branch"] is True
    assert [r["username"] for r in kept["reviewers"]] == ["alice", "bob"]
    assert kept["description"] == "Asked by alice in #deploys."
    again = forge.open(draft(title="asked again"))
    assert again.number == 1 and list(gitlab.merge_requests) == [1]
    assert gitlab.merge_requests[1]["title"] == "dev: podinfo 6.6.0 → 6.6.1"
    project_paths = {path.split("?")[0] for _, path, _ in gitlab.received if "/projects/" in path}
    assert project_paths <= {"/api/v4/projects/platform%2Fdeploy%2Ffleet/merge_requests"}


def test_an_unknown_reviewer_refuses_before_anything_is_made(gitlab):
    with pytest.raises(ForgeRefused) as refused:
        client(gitlab).open(draft(reviewers=("alice", "mallory")))
    assert "no user `mallory`" in one_line(refused.value)
    assert gitlab.merge_requests == {}


def test_a_forks_branch_of_the_same_name_is_not_ferrys(gitlab):
    fork = gitlab.add_fork_merge_request(BRANCH)
    forge = client(gitlab)
    assert forge.find_open(BRANCH) is None
    opened = forge.open(draft())
    assert opened.number != fork["iid"] and gitlab.merge_requests[opened.number]["source_project_id"] == 7


@pytest.mark.parametrize("links", [True, False])
def test_find_open_follows_the_pages(gitlab, links):
    gitlab.links = links  # Link: rel="next", or X-Next-Page alone
    mine = client(gitlab).open(draft())
    for _ in range(130):  # forks' merge requests of the same branch name come first (newest first)
        gitlab.add_fork_merge_request(BRANCH)
    assert client(gitlab).find_open(BRANCH).number == mine.number
    lists = [path for method, path, _ in gitlab.received if method == "GET" and "state=opened" in path]
    assert any("page=2" in path for path in lists)


def test_a_second_ferry_racing_to_open_gets_the_first_ones(gitlab):
    first = client(gitlab).open(draft())
    gitlab.fail_next(200, [], {"X-Next-Page": "", "X-Total": "0"})  # its list came before the first's
    second = client(gitlab).open(draft())
    assert second.number == first.number and len(gitlab.merge_requests) == 1


def test_get_reads_conditionally_and_sees_approvals(gitlab):
    forge = client(gitlab)
    opened = forge.open(draft())
    now = forge.get(opened.number)
    assert now.state == OPEN and now.approved is False and now.etag
    assert forge.get(opened.number, now.etag) is None  # 304 twice
    conditional = [h for m, p, h in gitlab.received[-2:]]
    assert all(h.get("If-None-Match") for h in conditional)
    gitlab.approve(opened.number, "alice")  # approving leaves the merge request's ETag as it was
    approved = forge.get(opened.number, now.etag)
    assert approved is not None and approved.approved is True
    forge.update(opened.number, "dev: podinfo 6.6.0 → 6.6.2", "Asked again.")
    changed = forge.get(opened.number, approved.etag)
    assert changed is not None and gitlab.merge_requests[1]["title"] == "dev: podinfo 6.6.0 → 6.6.2"
    assert forge.get(opened.number, changed.etag) is None


def test_find_update_and_close_with_a_note(gitlab, remote):
    forge = client(gitlab)
    assert forge.find_open(BRANCH) is None
    opened = forge.open(draft())
    assert forge.find_open(BRANCH).number == opened.number
    updated = forge.update(opened.number, "new title", "new body")
    assert updated.state == OPEN and gitlab.merge_requests[1]["description"] == "new body"
    before = branches(remote)
    closed = forge.close(opened.number, "Superseded by !2.")
    assert closed.state == CLOSED and gitlab.notes[1] == ["Superseded by !2."]
    assert forge.find_open(BRANCH) is None
    assert forge.close(opened.number, "again").state == CLOSED and gitlab.notes[1] == ["Superseded by !2."]
    assert branches(remote) == before  # closing leaves Git as it was


def test_a_merge_for_real_read_by_get_and_by_the_webhook(gitlab, remote):
    forge = client(gitlab)
    main_before, head = remote_tip(remote), remote_tip(remote, BRANCH)
    opened = forge.open(draft())
    sha = gitlab.merge(opened.number, "alice")
    assert remote_tip(remote) == sha and sha not in (main_before, head)
    parents = git("--git-dir", str(remote_path(remote)), "show", "-s", "--format=%P", sha).split()
    assert parents == [main_before, head]
    assert remote_log(remote, fmt="%s")[0] == f"Merge branch '{BRANCH}' into 'main'"
    assert f"refs/heads/{BRANCH}" not in branches(remote)  # remove_source_branch
    merged = forge.get(opened.number)
    assert (merged.state, merged.merge_commit, merged.merged_by, merged.head_sha) == \
        (MERGED, sha, "alice", head)
    headers, body = gitlab.receiver.received[-1]
    assert headers["X-Gitlab-Event"] == "Merge Request Hook"
    event = forge.webhook(headers, body)
    assert (event.action, event.actor, event.delivery) == ("merged", "alice", headers["Idempotency-Key"])
    assert (event.pull_request.state, event.pull_request.merge_commit, event.pull_request.merged_by,
            event.pull_request.number, event.pull_request.branch) == (MERGED, sha, "alice", 1, BRANCH)
    opened_hook = forge.webhook(*gitlab.receiver.received[0])
    assert (opened_hook.action, opened_hook.pull_request.state, opened_hook.actor) == \
        ("opened", OPEN, "ferry-bot")


def test_states_and_the_commit_a_merge_left(gitlab):
    forge = client(gitlab)
    opened = forge.open(draft())
    gitlab.merge_requests[1]["state"] = "locked"  # GitLab is merging it
    assert forge.get(opened.number).state == OPEN
    gitlab.merge_requests[1]["state"] = "opened"
    sha = gitlab.merge(opened.number, "alice")
    mr = gitlab.merge_requests[1]
    mr.update(merge_commit_sha=None, squash_commit_sha=sha)  # squashed, fast-forwarded
    assert forge.get(opened.number).merge_commit == sha
    mr.update(squash_commit_sha=None)  # fast-forwarded: the head is what the target has
    assert forge.get(opened.number).merge_commit == mr["sha"]


def test_auto_merge_waits_for_the_approval_then_merges(gitlab, remote):
    gitlab.merge_role = DEVELOPER  # the token's role may merge into main
    forge = client(gitlab)
    opened = forge.open(draft(auto_merge=True))
    assert gitlab.merge_requests[1]["merge_when_pipeline_succeeds"] is True
    assert forge.get(opened.number).state == OPEN
    gitlab.approve(opened.number, "bob")
    merged = forge.get(opened.number)
    assert merged.state == MERGED and merged.approved and remote_tip(remote) == merged.merge_commit
    actions = [json.loads(body)["object_attributes"]["action"] for _, body in gitlab.receiver.received]
    assert actions == ["open", "approved", "merge"]
    approved = forge.webhook(*gitlab.receiver.received[1])
    assert (approved.action, approved.pull_request.approved, approved.actor) == ("approved", True, "bob")


def test_auto_merge_refused_leaves_the_merge_request_open_with_a_note(gitlab, remote, caplog):
    main_before = remote_tip(remote)
    opened = client(gitlab).open(draft(auto_merge=True))  # a Developer may not merge into main
    assert opened.state == OPEN and gitlab.merge_requests[1]["merge_when_pipeline_succeeds"] is False
    assert gitlab.notes[1] == ["Ferry could not set auto-merge: the token's role may not merge into "
                               "`main`. Merge it by hand once it is reviewed."]
    assert remote_tip(remote) == main_before and TOKEN not in caplog.text


# ---- refusals, outages and rate limits ----------------------------------------------------------

@pytest.mark.parametrize("tokens, token, project, fields, said", [
    ({TOKEN: ("ferry-bot", {"read_api"}, DEVELOPER)}, TOKEN, None, {}, "lacks the `api` scope"),
    ({TOKEN: ("ferry-bot", {"api"}, 20)}, TOKEN, None, {}, "Developer role"),
    ({TOKEN: ("ferry-bot", {"api"}, DEVELOPER)}, "glpat-revoked", None, {}, "HTTP 401"),
    ({TOKEN: ("ferry-bot", {"api"}, DEVELOPER)}, TOKEN, "platform/elsewhere", {}, "no such project"),
    ({TOKEN: ("ferry-bot", {"api"}, DEVELOPER)}, TOKEN, None, {"base": BRANCH}, "HTTP 422"),
])
def test_each_refusal_is_one_line_and_leaves_nothing(gitlab, remote, caplog, tokens, token, project,
                                                     fields, said):
    gitlab.tokens = tokens
    before = branches(remote)
    with pytest.raises(ForgeRefused) as refused:
        client(gitlab, token=token, project=project or gitlab.project).open(draft(**fields))
    assert said in one_line(refused.value)
    assert gitlab.merge_requests == {} and branches(remote) == before
    assert TOKEN not in caplog.text and "glpat-revoked" not in caplog.text


def test_a_missing_scope_names_the_variable_to_fix(gitlab):
    gitlab.tokens = {TOKEN: ("ferry-bot", {"read_api"}, DEVELOPER)}
    with pytest.raises(ForgeRefused) as refused:
        client(gitlab).open(draft())
    assert "GITOPS_FORGE_GITLAB_TOKEN" in one_line(refused.value)


def test_server_errors_timeouts_and_no_answer_are_unavailable(gitlab, caplog):
    forge = client(gitlab, timeout=0.5)
    gitlab.fail_next(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
    with pytest.raises(ForgeUnavailable) as failed:
        forge.find_open(BRANCH)
    assert "HTTP 502" in one_line(failed.value) and not isinstance(failed.value, ForgeRateLimited)
    gitlab.fail_next(500, {"message": f"500 Internal Server Error ({TOKEN})"})  # a proxy echoing it
    with pytest.raises(ForgeUnavailable) as echoed:
        forge.open(draft())
    assert "***" in one_line(echoed.value)
    gitlab.fail_next(200, [], delay=1.5)
    with pytest.raises(ForgeUnavailable) as slow:
        forge.find_open(BRANCH)
    assert "did not answer within 0.5 s" in one_line(slow.value)
    assert gitlab.merge_requests == {}
    gitlab.stop()
    with pytest.raises(ForgeUnavailable) as down:
        forge.find_open(BRANCH)
    assert "Cannot reach GitLab" in one_line(down.value)
    assert TOKEN not in caplog.text


def test_429_is_rate_limited_until_gitlabs_reset(gitlab):
    forge = client(gitlab)
    gitlab.fail_next(429, b"Retry later\n", {"Retry-After": "30", "Content-Type": "text/plain"})
    with pytest.raises(ForgeRateLimited) as limited:
        forge.find_open(BRANCH)
    assert abs(limited.value.reset - (time.time() + 30)) < 5 and "refills in" in one_line(limited.value)
    reset = int(time.time()) + 90
    gitlab.fail_next(429, {"message": {"error": "This endpoint has been requested too many times."}},
                     {"RateLimit-Reset": str(reset), "RateLimit-Remaining": "0"})
    with pytest.raises(ForgeRateLimited) as by_header:
        client(gitlab).open(draft())
    assert by_header.value.reset == reset and gitlab.merge_requests == {}


def test_a_spent_limit_holds_requests_until_it_refills(gitlab):
    gitlab.limit = 2
    forge = client(gitlab)
    forge.find_open(BRANCH)
    forge.find_open(BRANCH)  # RateLimit-Remaining: 0
    sent = len(gitlab.received)
    with pytest.raises(ForgeRateLimited) as held:
        forge.find_open(BRANCH)
    assert len(gitlab.received) == sent  # not asked: the headers said so
    assert held.value.reset == pytest.approx(gitlab.window + 60, abs=1)


def test_the_token_goes_only_to_the_api_origin(gitlab, remote):
    elsewhere = GitLabServer(remote, project=gitlab.project).start()
    try:
        forge = client(gitlab)
        gitlab.redirect_next(f"{elsewhere.url}/projects/7/merge_requests?state=opened")
        with pytest.raises(ForgeRefused) as unknown:  # the other host never saw the token: 401
            forge.find_open(BRANCH)
        assert f"on to 127.0.0.1:{elsewhere.port}, which answered HTTP 401" in one_line(unknown.value)
        assert gitlab.received[-1][2].get("PRIVATE-TOKEN") == TOKEN
        assert elsewhere.received and all("PRIVATE-TOKEN" not in h and "Authorization" not in h
                                          for _, _, h in elsewhere.received)
        opened = forge.open(draft())
        gitlab.redirect_next(f"{elsewhere.url}/projects/7/merge_requests/1", status=307)
        with pytest.raises(ForgeRefused) as moved:  # a write is not sent anywhere else
            forge.update(opened.number, "title", "body")
        assert "redirect" in one_line(moved.value) and "api_url" in moved.value.message
        assert all(method == "GET" for method, _, _ in elsewhere.received)
    finally:
        elsewhere.stop()


def test_an_oauth_token_is_sent_as_bearer(gitlab):
    client(gitlab, auth="bearer").find_open(BRANCH)
    headers = gitlab.received[-1][2]
    assert headers.get("Authorization") == f"Bearer {TOKEN}" and "PRIVATE-TOKEN" not in headers


# ---- the webhook --------------------------------------------------------------------------------

def test_webhook_refusals(gitlab):
    forge = client(gitlab)
    forge.open(draft())
    headers, body = gitlab.receiver.received[0]
    without = {k: v for k, v in headers.items() if k != "X-Gitlab-Token"}
    cases = [
        (client(gitlab, webhook_secret=""), headers, body, FeedbackNotConfigured, 403),
        (forge, without, body, Unsigned, 401),
        (forge, {**headers, "X-Gitlab-Token": "guess"}, body, BadSignature, 403),
        (forge, headers, b" " * (1024 * 1024 + 1), EventTooLarge, 413),
        (forge, headers, b"[" * 40 + b"]" * 40, MalformedEvent, 400),
        (forge, headers, b'{"object_kind": "merge_request", ', MalformedEvent, 400),
        (forge, headers, b'{"object_kind": "push"}', MalformedEvent, 400),
    ]
    for reader, sent_headers, sent_body, error, status in cases:
        with pytest.raises(error) as refused:
            reader.webhook(sent_headers, sent_body)
        assert isinstance(refused.value, EventRefused) and refused.value.status == status
        assert SECRET not in one_line(refused.value)
    assert forge.webhook(headers, body).action == "opened"  # none of the above was remembered


def test_a_replayed_or_resent_delivery_is_refused(gitlab):
    forge = client(gitlab)
    forge.open(draft())
    first = gitlab.deliveries[0]
    assert forge.webhook(first.headers, first.body).action == "opened"
    resent = gitlab.resend(first)  # GitLab's "Resend request": same key, new X-Gitlab-Webhook-UUID
    with pytest.raises(ReplayedEvent) as replayed:
        forge.webhook(resent.headers, resent.body)
    assert replayed.value.status == 409
    older_gitlab = {k: v for k, v in first.headers.items() if k != "Idempotency-Key"}
    with pytest.raises(ReplayedEvent):  # no key (before GitLab 17.4): the same body is refused
        forge.webhook(older_gitlab, first.body)


def test_a_client_made_again_remembers_the_deliveries(gitlab):
    client(gitlab).open(draft())
    headers, body = gitlab.receiver.received[0]
    assert client(gitlab).webhook(headers, body).action == "opened"
    with pytest.raises(ReplayedEvent):  # the flow may make a client per request
        client(gitlab).webhook(headers, body)


def test_other_events_and_other_projects_are_not_ferrys(gitlab):
    forge = client(gitlab)
    forge.open(draft())
    headers, body = gitlab.receiver.received[0]
    assert forge.webhook({**headers, "X-Gitlab-Event": "Note Hook"}, body) is None
    other = json.loads(body)
    other["project"]["path_with_namespace"] = "platform/other"
    assert forge.webhook(headers, json.dumps(other).encode()) is None
    by_number = client(gitlab, project=str(gitlab.project_id))
    assert by_number.webhook(headers, body).pull_request.number == 1


def test_a_lone_approval_is_an_update_until_the_required_ones_are_in(gitlab):
    gitlab.approvals_required = 2
    forge = client(gitlab)
    forge.open(draft())
    gitlab.approve(1, "alice")
    gitlab.approve(1, "bob")
    events = [forge.webhook(h, b) for h, b in gitlab.receiver.received[1:]]
    assert [(e.action, e.pull_request.approved, e.actor) for e in events] == \
        [("updated", False, "alice"), ("approved", True, "bob")]
