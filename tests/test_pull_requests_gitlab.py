"""The same pull-request flow on GitLab: a real Errbot, the bare remote, and the local GitLab
(tests/gitlab_server.py) opening the merge request, merging it for real and posting its Merge
Request Hook to Ferry's `/forge/gitlab`."""
import pytest

from tests.fixtures_git import remote_tip
from tests.gitlab_server import DEVELOPER, GitLabServer
from tests.test_pull_requests import THREAD, deploy, ferry_branches, fleet_url, github, in_thread, start  # noqa: F401

TOKEN = "glpat-ferry-e2e-token"
SECRET = "gitlab-hook-secret-9a"


@pytest.fixture
def gitlab(fleet_url):  # noqa: F811
    server = GitLabServer(fleet_url, tokens={TOKEN: ("ferry-bot", {"api"}, DEVELOPER)}).start()
    yield server
    server.stop()


def test_a_deploy_into_a_gitlab_environment_opens_a_merge_request_and_its_merge_is_answered(
        start, gitlab, fleet_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GITOPS_FORGE_GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("GITOPS_FORGE_GITLAB_WEBHOOK_SECRET", SECRET)
    ferry = start(gitlab={"kind": "gitlab", "api_url": gitlab.url, "project": gitlab.project})
    gitlab.add_hook(f"http://127.0.0.1:{ferry.port}/forge/gitlab", SECRET)
    main = remote_tip(fleet_url)
    result = deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    assert result.startswith("Opened merge request !1 to deploy podinfo 6.5.2 → 6.5.3 in qa: ")
    (branch,) = ferry_branches(fleet_url)
    (mr,) = gitlab.merge_requests.values()
    assert (mr["source_branch"], mr["target_branch"]) == (branch, "main") and remote_tip(fleet_url) == main
    assert mr["title"] == "deploy podinfo 6.5.2 → 6.5.3 to qa"
    merge = gitlab.merge(1, "bob")
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: merge request !1 merged by bob as {merge[:10]}."
    assert remote_tip(fleet_url) == merge
