"""The GitHub client against the local GitHub (tests/github_server.py) over a real bare remote:
the GitHub App's token exchange, pagination, conditional reads, refusals and rate limits as
GitHub answers them, and the settings of a forge."""
import time

import pytest

from gitops.check import connection_findings
from gitops.errors import ForgeRateLimited, ForgeRefused, SettingsError
from gitops.forge_settings import ForgeSettings, GitHubApp, parse_forge
from gitops.forges import PullRequestDraft
from gitops.forges.github import GitHub
from gitops.settings import parse_settings
from tests.fixtures_git import git, remote_path, remote_tip
from tests.github_server import LocalGitHub, app_key
from tests.serving import serving

TOKEN = "github_pat_11UNITTOKEN"


@pytest.fixture
def remote(bare_remote):
    return bare_remote({"apps/qa/values.yaml": "version: 1.0.0\n"})


def branch(url: str, name: str) -> str:
    """A branch on the remote, one commit ahead of main."""
    bare = str(remote_path(url))
    tree = git("--git-dir", bare, "rev-parse", "main^{tree}")
    sha = git("--git-dir", bare, "commit-tree", tree, "-p", remote_tip(url), "-m", name)
    git("--git-dir", bare, "update-ref", f"refs/heads/{name}", sha)
    return sha


def client(server, clock=None, **settings) -> GitHub:
    repository = settings.pop("repository", "acme/fleet")
    forge = ForgeSettings("github", server.url, repository, **{"token": TOKEN, **settings})
    return GitHub(forge, clock=clock) if clock else GitHub(forge)


def test_a_github_app_mints_installation_tokens_signed_with_its_key_and_keeps_them_until_near_expiry(remote):
    private, public = app_key()
    now = [time.time()]
    with serving(LocalGitHub(remote, tokens=(), app=("123456", "987", public))) as server:
        github = client(server, clock=lambda: now[0], token="", app=GitHubApp("123456", "987", private))
        branch(remote, "ferry/qa/a")
        # the server checks the JWT's signature with the App's public key, its issuer and its span
        opened = github.open(PullRequestDraft("ferry/qa/a", "main", "deploy a", "body"))
        assert opened.number == 1 and server.minted == 1
        github.get(1)
        assert server.minted == 1  # kept: GitHub's token lives an hour
        exchange = [r for r in server.requests if r[1] == "/app/installations/987/access_tokens"]
        assert len(exchange) == 1 and exchange[0][2].startswith("Bearer ey")
        used = {auth for method, path, auth in server.requests if path.startswith("/repos/")}
        assert len(used) == 1 and next(iter(used)).startswith("Bearer ghs_")
        # within five minutes of its expiry (as if 55 minutes had passed), a new one is minted
        github._installation = (github._installation[0], now[0] + 200)
        github.get(1)
        assert server.minted == 2


def test_an_app_key_github_does_not_know_is_one_line(remote):
    private, _ = app_key()
    _, other_public = app_key()
    with serving(LocalGitHub(remote, tokens=(), app=("1", "2", other_public))) as server:
        github = client(server, token="", app=GitHubApp("1", "2", private))
        with pytest.raises(ForgeRefused) as refused:
            github.find_open("ferry/x")
    assert refused.value.message == ("GitHub refused to get the GitHub App's installation token (401): the token "
                                     "(GitHub App 1) is not valid, or expired.")


def test_open_is_idempotent_per_branch_and_lists_follow_link_pagination_on_the_api_only(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        github = client(server)
        server.max_per_page = 2
        for n in range(1, 6):
            branch(remote, f"b{n}")
            github.open(PullRequestDraft(f"b{n}", "main", f"change {n}", ""))
        again = github.open(PullRequestDraft("b5", "main", "change 5", ""))
        assert again.number == 5 and len(server.pulls) == 5
        listed = list(github._pages(f"{github.repo_path}/pulls", "list", {"state": "open"}))
        assert [p["number"] for p in listed] == [1, 2, 3, 4, 5]  # three pages, by their Link
        server.url_override = "http://127.0.0.2:9"  # a next link to another origin: not followed
        assert len(list(github._pages(f"{github.repo_path}/pulls", "list", {"state": "open"}))) == 2


@pytest.mark.parametrize("allowed", [True, False])
def test_auto_merge_is_asked_by_graphql_and_a_repository_without_it_keeps_the_pull_request(remote, allowed):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        server.allow_auto_merge = allowed
        branch(remote, "ferry/qa/a")
        opened = client(server).open(PullRequestDraft("ferry/qa/a", "main", "t", "b", auto_merge=True))
        assert opened.number == 1 and server.pulls[1]["state"] == "open"
        assert (server.pulls[1]["auto_merge"] is not None) == allowed
        assert ("POST", "/graphql", f"Bearer {TOKEN}") in server.requests


def test_a_reviewer_github_refuses_leaves_the_pull_request_open_with_its_labels(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        branch(remote, "ferry/qa/a")
        opened = client(server).open(PullRequestDraft("ferry/qa/a", "main", "t", "b", labels=("ferry",),
                                                      reviewers=("mallory",)))
        assert opened.number == 1 and server.pulls[1]["state"] == "open"
        assert [l["name"] for l in server.pulls[1]["labels"]] == ["ferry"]
        assert server.pulls[1]["requested_reviewers"] == []


def test_conditional_reads_answer_nothing_changed(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        github = client(server)
        branch(remote, "ferry/qa/a")
        github.open(PullRequestDraft("ferry/qa/a", "main", "t", "b"))
        first = github.get(1)
        assert first.etag and github.get(1, first.etag) is None and server.not_modified == 1
        server.review(1, by="dave")
        after = github.get(1, first.etag)
        assert after is not None and after.approved


def test_refusals_are_one_line_with_what_to_do(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        with pytest.raises(ForgeRefused) as missing:
            client(server, repository="acme/nothing").find_open("b")
        assert missing.value.message == ("GitHub refused to list open pull requests (404): no repository "
                                         "acme/nothing or pull request there for this token.")
        with pytest.raises(ForgeRefused) as invalid:
            client(server).open(PullRequestDraft("no-such-branch", "main", "t", "b"))
        assert invalid.value.message == "GitHub refused to open a pull request (422): Validation Failed."
        with pytest.raises(ForgeRefused) as bad_token:
            client(server, token="github_pat_wrong").find_open("b")
        assert "GITOPS_FORGE_GITHUB_TOKEN" in bad_token.value.message and "github_pat_wrong" not in bad_token.value.message


def test_a_spent_rate_limit_stops_requests_until_its_reset(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        github = client(server)
        server.remaining = 1
        github.find_open("b")  # the last one: X-RateLimit-Remaining 0
        sent = len(server.requests)
        with pytest.raises(ForgeRateLimited) as limited:
            github.find_open("b")
        assert len(server.requests) == sent  # not even asked: GitHub said when it refills
        assert limited.value.reset > 0 and limited.value.message.startswith("GitHub's rate limit is spent until ")


def test_a_secondary_rate_limit_waits_as_long_as_retry_after_says(remote):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        now = [time.time()]
        github = client(server, clock=lambda: now[0])
        server.retry_after = 120
        with pytest.raises(ForgeRateLimited) as limited:
            github.find_open("b")
        assert limited.value.reset == now[0] + 120
        server.retry_after, sent = 0, len(server.requests)
        with pytest.raises(ForgeRateLimited):
            github.find_open("b")  # still within the wait: GitHub is not asked
        assert len(server.requests) == sent
        now[0] += 121
        assert github.find_open("b") is None and len(server.requests) == sent + 1


@pytest.mark.parametrize("forge, problem", [
    ({"kind": "bitbucket", "repository": "a/b"}, "must be `github` or `gitlab`"),
    ({"kind": "github", "repository": "just-a-name"}, "must be the repository's `owner/name`"),
    ({"kind": "github", "repository": "a/b", "api_url": "http://github.example/api/v3"},
     "is plain HTTP to github.example"),
    ({"kind": "github", "repository": "a/b", "token": "x"}, "unknown key `token`"),
    ({"kind": "github", "repository": "a/b", "env": "NOPE"}, "needs GitHub's token in GITOPS_FORGE_NOPE_TOKEN"),
    ({"kind": "gitlab", "project": "g/p", "poll_interval": 0}, "`repo.forge.poll_interval` must be a number"),
])
def test_bad_forge_settings_are_one_line(forge, problem, tmp_path):
    with pytest.raises(SettingsError) as refused:
        parse_forge(forge, "repo.forge", {"GITOPS_FORGE_GITHUB_TOKEN": "t", "GITOPS_FORGE_GITLAB_TOKEN": "t"}, tmp_path)
    assert problem in refused.value.message and "\n" not in refused.value.message


@pytest.mark.parametrize("env, problem", [
    ({"write": "pull-request"}, "`environments[0].write: pull-request` needs the repository's `forge`"),
    ({"write": "merge"}, "`environments[0].write` must be `push` (the default"),
    ({"policy": {"approval": "pull-request"}}, "needs `environments[0].write: pull-request`"),
])
def test_write_and_approval_settings_say_what_they_need(env, problem):
    raw = {"repo": "https://git.example/fleet.git", "environments": [{"name": "qa", "path": "qa", **env}]}
    with pytest.raises(SettingsError) as refused:
        parse_settings(raw, {})
    assert problem in refused.value.message


def test_forge_settings_read_the_token_from_a_file_and_never_show_it(tmp_path):
    (tmp_path / "token").write_text("github_pat_from_file\n")
    raw = {"repo": {"url": "https://git.example/fleet.git",
                    "forge": {"kind": "github", "repository": "acme/fleet", "api_url": "https://ghe.example/api/v3/"}},
           "environments": [{"name": "prod", "path": "prod", "write": "pull-request",
                             "policy": {"approval": "pull-request"}}]}
    settings = parse_settings(raw, {"GITOPS_FORGE_GITHUB_TOKEN_FILE": str(tmp_path / "token")})
    forge, env = settings.repo.forge, settings.environments[0]
    assert (forge.api_url, forge.token, env.write) == ("https://ghe.example/api/v3", "github_pat_from_file", "pull-request")
    assert env.policy.review and not env.policy.approval and env.repo.forge == forge
    assert "github_pat_from_file" not in repr(settings)
    assert GitHub(forge).graphql == "https://ghe.example/api/graphql"  # Enterprise's GraphQL is not under v3


def test_ferry_check_asks_each_forge_once_with_its_token(remote, tmp_path):
    with serving(LocalGitHub(remote, tokens=(TOKEN,))) as server:
        raw = {"repo": {"url": remote, "forge": {"kind": "github", "repository": "acme/fleet", "api_url": server.url}},
               "environments": [{"name": "qa", "path": "apps/qa", "write": "pull-request"}], "data_dir": str(tmp_path)}
        good = {f.item: f for f in connection_findings(parse_settings(raw, {"GITOPS_FORGE_GITHUB_TOKEN": TOKEN}))}
        bad = {f.item: f for f in connection_findings(parse_settings(raw, {"GITOPS_FORGE_GITHUB_TOKEN": "wrong"}))}
    assert good["forge github acme/fleet"].detail == (
        f"answers at {server.url}; pull requests followed by polling every 60 s (no GITOPS_FORGE_GITHUB_WEBHOOK_SECRET)")
    assert bad["forge github acme/fleet"].problem == ("GitHub refused to list open pull requests (401): the token "
                                                     "(GITOPS_FORGE_GITHUB_TOKEN) is not valid, or expired.")
