"""A webhook delivery lost is a merge still heard, end to end (a real Errbot, the bare remote, the
local GitHub merging for real): with a webhook secret set, Ferry still reads its open pull requests
again now and then (conditionally: an unchanged one is a 304), and once when it starts."""
import pytest

from gitops.errors import SettingsError
from gitops.forge_settings import parse_forge
from tests.test_pull_requests import deploy, fleet_url, github, in_thread, start  # noqa: F401

TOKENS = {"GITOPS_FORGE_GITHUB_TOKEN": "t", "GITOPS_FORGE_GITHUB_WEBHOOK_SECRET": "s"}


def reads(github, number: int = 1) -> int:  # noqa: F811
    return sum(1 for m, p, _ in github.requests if m == "GET" and p.endswith(f"/pulls/{number}"))


def test_a_merge_whose_webhook_never_arrives_is_heard_by_the_slower_catch_up(start, github):  # noqa: F811
    ferry = start(catch_up_interval=0.5)  # a webhook secret is set (every 10 minutes by default)
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    hook, github.hook_url = github.hook_url, ""  # the forge's deliveries are lost from now on
    merge = github.merge(1, by="carol")
    assert github.deliveries == []
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}."
    assert reads(github) >= 1
    github.hook_url = hook
    ferry.quiet(1.0)  # said once: a catch-up after the merge finds nothing open


def test_an_unchanged_pull_request_costs_a_304_on_each_catch_up(start, github):  # noqa: F811
    ferry = start(catch_up_interval=0.3)
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    ferry.quiet(1.5)  # read several times, nothing changed: nothing said
    assert reads(github) >= 2 and github.not_modified >= 1


def test_a_merge_while_ferry_was_down_is_heard_when_it_starts(start, github):  # noqa: F811
    ferry = start()  # the default catch-up: not before 10 minutes
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    start.stop(ferry)
    github.hook_url = ""  # nobody listens: the delivery is lost
    merge = github.merge(1, by="carol")
    again = start()
    assert in_thread(again) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}."
    assert "pull request" not in again.say("!pending")[0]


def test_the_catch_up_interval_is_ten_minutes_unless_set_and_bounded(tmp_path):
    forge = {"kind": "github", "repository": "a/b"}
    assert parse_forge(forge, "repo.forge", TOKENS, tmp_path).catch_up_seconds == 600.0
    assert parse_forge({**forge, "catch_up_interval": 120}, "repo.forge", TOKENS, tmp_path).catch_up_seconds == 120.0
    for bad in (0, -1, True, "10m", 86401):
        with pytest.raises(SettingsError) as refused:
            parse_forge({**forge, "catch_up_interval": bad}, "repo.forge", TOKENS, tmp_path)
        assert refused.value.message == ("`repo.forge.catch_up_interval` must be a number of seconds between 0 "
                                         "and 86400.")
