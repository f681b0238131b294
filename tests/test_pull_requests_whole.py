"""A whole-app promotion (chart and image tags) landing as one pull request, end to end: a real
Errbot, the bare remote, the real registry holding the images, and the local GitHub merging for
real."""
import pytest

from tests import image_fleet
from tests.fixtures_git import git, remote_file, remote_path, remote_tip
from tests.test_pull_requests import deploy, ferry_branches, github, in_thread, start  # noqa: F401

WEB = "apps/qa/web.yaml"


@pytest.fixture
def fleet_url(registry, charts, images, bare_remote):
    return bare_remote(image_fleet.files(registry.host, registry.url))


def pull_request_settings(fleet_url: str) -> dict:
    raw = image_fleet.settings(fleet_url)
    raw["environments"][1]["write"] = "pull-request"
    return raw


def test_a_whole_app_promotion_is_one_branch_one_commit_one_pull_request(start, github, fleet_url):  # noqa: F811
    ferry, main = start(raw=pull_request_settings(fleet_url)), remote_tip(fleet_url)
    result = deploy(ferry, "!promote web to qa")
    assert result.startswith("Opened pull request #1 to promote web 6.5.0 → 6.5.1 in qa: "), result
    assert "Moves 2 part(s) in one commit: chart 6.5.0 → 6.5.1, image 1.0.0 → 1.1.0." in result
    assert remote_tip(fleet_url) == main
    (branch,) = ferry_branches(fleet_url)
    bare = str(remote_path(fleet_url))
    assert git("--git-dir", bare, "rev-list", "--count", f"{main}..refs/heads/{branch}") == "1"
    assert git("--git-dir", bare, "diff", "--numstat", main, f"refs/heads/{branch}") == f"2\t2\t{WEB}"
    (pr,) = github.open_pulls()
    assert pr["title"] == "promote web chart 6.5.0 → 6.5.1, image 1.0.0 → 1.1.0 from dev to qa"
    assert "Also moves: image 1.0.0 → 1.1.0." in pr["body"]
    assert "+      tag: 1.1.0" in pr["body"] and "+      version: 6.5.1" in pr["body"]

    again = deploy(ferry, "!promote web to qa")  # asked again: the same one, nothing new on it
    assert again.startswith("Updated pull request #1 to promote web"), again
    assert ferry_branches(fleet_url) == [branch] and len(github.pulls) == 1
    assert git("--git-dir", bare, "rev-list", "--count", f"{main}..refs/heads/{branch}") == "1"

    merge = github.merge(1, by="carol")
    assert in_thread(ferry) == (f"web chart 6.5.1, image 1.1.0 in qa: pull request #1 merged by carol "
                                f"as {merge[:10]}.")
    text = remote_file(fleet_url, WEB)
    assert "version: 6.5.1" in text and "tag: 1.1.0" in text

    # the rollback of the app restores both parts, again as one pull request
    result = deploy(ferry, "!rollback web on qa")
    assert result.startswith("Opened pull request #2 to rollback web 6.5.1 → 6.5.0 in qa"), result
    assert "Moves 2 part(s) in one commit: chart 6.5.1 → 6.5.0, image 1.1.0 → 1.0.0." in result
    assert git("--git-dir", bare, "diff", "--numstat", merge, f"refs/heads/{ferry_branches(fleet_url)[0]}") == \
        f"2\t2\t{WEB}"
