"""Changes that land as pull requests, end to end: a real Errbot (test backend) on the real
plugins folder with its webserver on 127.0.0.1, a real bare remote and registry, and the local
GitHub (tests/github_server.py) merging for real in that remote and posting its signed webhooks
to Ferry's `/forge/github`."""
import json
import queue
import re

import pytest
import requests
from ruamel.yaml import YAML
from errbot.backends.test import TestBot as ErrbotTestBot

from devtools.fluxrepo import demo_files, demo_settings
from devtools.serial_replies import one_reply_at_a_time
from tests.ferrybot import STORAGE_PLUGINS
from tests.fixtures_git import git, install_hook, remote_file, remote_log, remote_path, remote_tip
from tests.flux_events import encode, flux_event, signed
from tests.github_server import LocalGitHub, signed_headers
from tests.serving import answering, serving
from tests.signing_keys import ssh_key, verify_ssh
from tests.test_flux import PLUGINS, Ferry, free_port

TOKEN = "github_pat_11TESTTOKEN0ferry7c2d"
SECRET = "webhook-secret-5d1e"
FLUX_QA = "qa-token-7f3a"
THREAD = "1700000000.000100"
QA_FILE = "apps/qa/podinfo-values.yaml"


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def github(fleet_url):
    with serving(LocalGitHub(fleet_url, tokens=(TOKEN,), hook_secret=SECRET)) as server:
        yield server


@pytest.fixture
def start(tmp_path, fleet_url, github, monkeypatch):
    """Ferry with qa and prod landing as pull requests on the local GitHub (prod: its review is the
    approval); ``webhook=False``: no webhook secret, so Ferry polls."""
    monkeypatch.setenv("GITOPS_FORGE_GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", FLUX_QA)
    bots = []

    def start_ferry(webhook: bool = True, stag=None, gitlab=None, top=None, **forge) -> Ferry:
        if webhook:
            monkeypatch.setenv("GITOPS_FORGE_GITHUB_WEBHOOK_SECRET", SECRET)
        raw = demo_settings(fleet_url)
        raw["repo"]["forge"] = gitlab or {"kind": "github", "api_url": github.url, "repository": "acme/fleet",
                                          "labels": ["ferry"], "reviewers": ["dave"], "poll_interval": 0.2, **forge}
        raw["environments"][1]["write"] = "pull-request"
        raw["environments"][3].update(write="pull-request", policy={"approval": "pull-request"})
        raw["environments"][2].update(stag or {})
        raw.update(data_dir=str(tmp_path / "gitops"), **(top or {}))
        YAML().dump(raw, tmp_path / "ferry.yaml")
        bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
            "GITOPS_CONFIG": str(tmp_path / "ferry.yaml"), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
            "STORAGE": "FerryShelf", "BOT_EXTRA_STORAGE_PLUGINS_DIR": STORAGE_PLUGINS,
            "BOT_DATA_DIR": str(tmp_path / "errbot"), "CORE_PLUGINS": ("ACLs", "Plugins", "Utils", "Webserver")})
        bot.start(timeout=10)
        one_reply_at_a_time(bot)
        bots.append(bot)
        sent = []
        backend_send = bot.bot.send_message

        def record(msg):
            sent.append(msg)
            backend_send(msg)

        bot.bot.send_message = record
        port = free_port()
        bot.push_message("!plugin config Webserver {'HOST': '127.0.0.1', 'PORT': %d, 'SSL': None}" % port)
        assert bot.pop_message(timeout=10) == "Plugin configuration done."
        ferry = Ferry(bot, port, sent)
        answering(ferry.url("qa"))
        github.hook_url = f"http://127.0.0.1:{port}/forge/github" if webhook else ""
        return ferry

    yield start_ferry
    for bot in bots:
        bot.stop()


def ferry_branches(url: str) -> list:
    out = git("--git-dir", str(remote_path(url)), "for-each-ref", "--format=%(refname:short)", "refs/heads/ferry/")
    return out.splitlines()


def deploy(ferry, command: str) -> str:
    intent, result = ferry.say(command, replies=2, extras={"slack_event": {"ts": THREAD}})
    return result


def in_thread(ferry) -> str:
    """The next thing Ferry says, which must be in the command's thread."""
    text = ferry.next()
    assert ferry.sent[-1].parent.extras["slack_event"]["ts"] == THREAD
    return text


def test_a_deploy_opens_one_pull_request_with_the_one_line_diff_and_its_merge_is_followed_to_flux(
        start, github, fleet_url):
    ferry, main = start(), remote_tip(fleet_url)
    result = deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    assert result.startswith("Opened pull request #1 to deploy podinfo 6.5.2 → 6.5.3 in qa: "
                             "https://github.example/acme/fleet/pull/1 (branch ferry/qa/podinfo-6.5.3-")
    assert '-      version: "6.5.2" # pinned by Ferry\n+      version: "6.5.3" # pinned by Ferry' in result
    assert remote_tip(fleet_url) == main  # the protected branch is untouched
    (branch,) = ferry_branches(fleet_url)
    assert branch.startswith("ferry/qa/podinfo-6.5.3-")
    stat = git("--git-dir", str(remote_path(fleet_url)), "diff", "--numstat", main, f"refs/heads/{branch}")
    assert stat == f"1\t1\t{QA_FILE}"
    assert remote_log(fleet_url, branch, "%an|%s")[0] == "@alice|deploy podinfo 6.5.2 → 6.5.3 to qa"
    (pr,) = github.open_pulls()
    assert (pr["number"], pr["base"]["ref"], pr["head"]["ref"]) == (1, "main", branch)
    assert pr["title"] == "deploy podinfo 6.5.2 → 6.5.3 to qa"
    assert pr["body"].startswith("**deploy podinfo 6.5.2 → 6.5.3 to qa**\n\nAsked by \\@alice in chat.\n\n```diff\n")
    assert '-      version: "6.5.2" # pinned by Ferry\n+      version: "6.5.3" # pinned by Ferry' in pr["body"]
    assert [l["name"] for l in pr["labels"]] == ["ferry"]
    assert [u["login"] for u in pr["requested_reviewers"]] == ["dave"]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in github.requests)

    merge = github.merge(1, by="carol")
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}."
    assert remote_tip(fleet_url) == merge
    assert 'version: "6.5.3" # pinned by Ferry' in remote_file(fleet_url, QA_FILE)
    # Flux's event about the merged commit is answered in the same thread, as for a push
    answer = requests.post(ferry.url("qa"), data=encode(event := flux_event(version="6.5.3")),
                           headers=signed(encode(event), FLUX_QA), timeout=10)
    assert answer.status_code == 200, answer.text
    assert in_thread(ferry).startswith("podinfo 6.5.3 is live in qa: Flux reports UpgradeSucceeded")
    assert "pull request" not in ferry.say("!pending")[0]


def test_a_pull_request_closed_without_merging_is_reported_and_nothing_lands(start, github, fleet_url):
    ferry, main = start(), remote_tip(fleet_url)
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    github.close(1, by="erin")
    assert in_thread(ferry) == ("podinfo 6.5.3 in qa: pull request #1 closed without merging by erin. "
                                "Nothing changes in qa.")
    assert remote_tip(fleet_url) == main


def test_the_forges_review_is_the_approval_no_approve_asked(start, github, fleet_url):
    ferry = start()
    result = deploy(ferry, "!deploy podinfo 6.5.1 to prod")
    assert result.startswith("Opened pull request #1 to deploy podinfo 6.5.0 → 6.5.1 in prod")
    assert "!approve" not in result
    listed, waiting = ferry.say("!pending", replies=2)
    assert "#1 deploy podinfo 6.5.0 → 6.5.1 in prod" in listed and waiting == "No change is waiting for approval."
    github.review(1, by="dave")
    assert in_thread(ferry) == "podinfo 6.5.1 in prod: pull request #1 approved in review by dave."


def test_asked_again_updates_the_open_one_and_a_newer_version_supersedes_it(start, github, fleet_url):
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    (first,) = ferry_branches(fleet_url)
    again = deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    assert again.startswith("Updated pull request #1 to deploy podinfo 6.5.2 → 6.5.3 in qa")
    assert len(github.open_pulls()) == 1 and ferry_branches(fleet_url) == [first]
    newer = deploy(ferry, "!deploy podinfo 6.6.0 to qa")
    assert newer.startswith("Opened pull request #2 to deploy podinfo 6.5.2 → 6.6.0 in qa")
    assert "It supersedes #1, closed with a comment." in newer
    assert [p["number"] for p in github.open_pulls()] == [2]
    assert github.pulls[1]["state"] == "closed"
    assert github.pulls[1]["_comments"][-1]["body"].startswith("Superseded by #2 (6.6.0)")
    (second,) = ferry_branches(fleet_url)  # the superseded branch is gone
    assert second != first and second.startswith("ferry/qa/podinfo-6.6.0-")
    listed, _ = ferry.say("!pending", replies=2)
    assert "1 pull/merge request(s) of Ferry's open" in listed and "pull request #2 deploy podinfo 6.5.2 → 6.6.0 in qa" in listed


@pytest.mark.parametrize("outage", ["503", "no answer"])
def test_the_forge_down_leaves_nothing_behind(start, github, fleet_url, outage):
    main = remote_tip(fleet_url)
    if outage == "503":
        ferry = start()
        github.down = True
        said = "GitHub failed (503): could not list open pull requests. Try again later."
    else:  # nothing listens where the API should be
        port = free_port()
        ferry = start(api_url=f"http://127.0.0.1:{port}")
        said = f"GitHub (127.0.0.1:{port}) did not answer: could not list open pull requests. Try again later."
    (answer,) = ferry.say("!deploy podinfo 6.5.3 to qa", replies=2)[1:]
    assert answer.startswith(f"{said} Nothing is left behind: the branch ferry/qa/podinfo-6.5.3-")
    assert answer.endswith(" was removed.") and "\n" not in answer
    assert ferry_branches(fleet_url) == [] and github.pulls == {}
    assert remote_tip(fleet_url) == main


def test_a_spent_rate_limit_is_one_line_and_leaves_nothing(start, github, fleet_url):
    ferry = start()
    github.remaining = 0
    (answer,) = ferry.say("!deploy podinfo 6.5.3 to qa", replies=2)[1:]
    assert answer.startswith("GitHub's rate limit is spent until ")
    assert "Nothing is left behind" in answer and "\n" not in answer
    assert ferry_branches(fleet_url) == [] and github.pulls == {}


def test_a_pull_request_changed_by_hand_is_said_and_so_is_its_merge(start, github, fleet_url, external_commit):
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    (branch,) = ferry_branches(fleet_url)
    text = remote_file(fleet_url, QA_FILE, f"refs/heads/{branch}")
    external_commit(fleet_url, {QA_FILE: text + "# reviewed\n"}, "a note", branch=branch)
    hand = remote_tip(fleet_url, branch)
    github.pushed(1, by="erin")
    assert in_thread(ferry) == (f"podinfo 6.5.3 in qa: pull request #1 was changed by hand (its head is now "
                                f"{hand[:10]}): what is merged is what Flux applies.")
    again = deploy(ferry, "!deploy podinfo 6.5.3 to qa")  # asked again: their commit stays
    assert again.startswith("Updated pull request #1") and remote_tip(fleet_url, branch) == hand
    merge = github.merge(1, by="carol")
    assert in_thread(ferry) == (f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}. "
                                "It was changed by hand before the merge: what was merged is what Flux applies.")


def test_webhook_deliveries_unsigned_badly_signed_replayed_or_too_large_are_refused(start, github):
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    url = f"http://127.0.0.1:{ferry.port}/forge/github"
    pr = dict(github.pulls[1], state="closed")
    body = json.dumps({"action": "closed", "number": 1, "pull_request": pr,
                       "sender": {"login": "mallory"}}, default=str).encode()
    headers = signed_headers(body, SECRET, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert requests.post(url, data=body, headers=unsigned, timeout=10).status_code == 401
    forged = signed_headers(body, "not-the-secret", delivery=headers["X-GitHub-Delivery"])
    assert requests.post(url, data=body, headers=forged, timeout=10).status_code == 403
    big = body + b" " * (600 * 1024)
    assert requests.post(url, data=big, headers=signed_headers(big, SECRET), timeout=10).status_code == 413
    ferry.quiet()
    first = requests.post(url, data=body, headers=headers, timeout=10)
    assert first.status_code == 200
    assert "closed without merging by mallory" in in_thread(ferry)
    replayed = requests.post(url, data=body, headers=headers, timeout=10)
    assert replayed.status_code == 409
    ferry.quiet()


def test_without_a_webhook_ferry_polls_with_conditional_reads(start, github, fleet_url):
    ferry = start(webhook=False)
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    with pytest.raises(queue.Empty):
        ferry.next(timeout=1.0)  # polled several times: nothing changed, nothing said
    reads = [(m, p) for m, p, _ in github.requests if m == "GET" and p.endswith("/pulls/1")]
    assert len(reads) >= 2
    merge = github.merge(1, by="carol")  # no webhook: Ferry finds out by itself
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}."
    assert github.not_modified >= 1


def test_the_token_is_never_in_a_reply_or_the_log(start, github, fleet_url, caplog):
    caplog.set_level("DEBUG")
    ferry = start()
    github.tokens.clear()  # the token is refused now: 401
    (answer,) = ferry.say("!deploy podinfo 6.5.3 to qa", replies=2)[1:]
    assert answer.startswith("GitHub refused to ") and "(401)" in answer and "GITOPS_FORGE_GITHUB_TOKEN" in answer
    assert "ran !deploy podinfo 6.5.3 to qa -> refused: GitHub refused" in caplog.text  # the log is read
    assert TOKEN not in answer and TOKEN not in caplog.text
    assert ferry_branches(fleet_url) == []


def test_a_change_approved_in_chat_opens_its_pull_request_then(start, github, fleet_url):
    ferry = start(stag={"write": "pull-request", "policy": {"approval": True}})
    asked = ferry.say("!deploy podinfo 6.5.2 to stag", extras={"slack_event": {"ts": THREAD}})[0]
    change_id = re.search(r"is change `?(\w+)`?", asked).group(1)
    assert github.pulls == {} and ferry_branches(fleet_url) == []  # nothing before the approval
    ferry.bot.bot.sender = ferry.bot.bot.build_identifier("@bob")
    (approved,) = ferry.say(f"!approve {change_id}", extras={"slack_event": {"ts": THREAD}})
    assert approved.startswith("Opened pull request #1 to deploy podinfo 6.5.1 → 6.5.2 in stag")
    assert "Approved in chat by \\@bob." in github.pulls[1]["body"]
    assert remote_log(fleet_url, ferry_branches(fleet_url)[0], "%(trailers:key=Approved-by,valueonly)")[0] == "@bob <@bob>"


def test_a_rollback_merged_guards_the_version_it_left_as_a_pushed_one_does(start, github, fleet_url):
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    github.merge(1)
    in_thread(ferry)
    result = deploy(ferry, "!rollback podinfo in qa")
    assert result.startswith("Opened pull request #2 to rollback podinfo 6.5.3 → 6.5.2 in qa")
    github.merge(2)
    assert in_thread(ferry).startswith("podinfo 6.5.2 in qa: pull request #2 merged by carol")
    # Flux never reported on the first merge: the second one is followed instead, as after pushes
    assert in_thread(ferry).startswith("podinfo 6.5.3 in qa: 6.5.2 was pushed by @alice before Flux reported")
    ferry.bot.bot.sender = ferry.bot.bot.build_identifier("@bob")
    refused = ferry.say("!deploy podinfo 6.5.3 to qa")[0]
    assert "was rolled back from qa by @alice" in refused and "--force" in refused


def test_a_branch_the_remote_refuses_opens_no_pull_request(start, github, fleet_url):
    ferry, main = start(), remote_tip(fleet_url)
    install_hook(fleet_url, "pre-receive", "#!/bin/sh\necho 'ferry/* branches are not allowed here' >&2\nexit 1\n")
    (answer,) = ferry.say("!deploy podinfo 6.5.3 to qa", replies=2)[1:]
    assert answer.startswith("Deploy podinfo 6.5.3 to qa not pushed: The Git repository ")
    assert "ferry/* branches are not allowed here" in answer and "\n" not in answer
    assert github.pulls == {} and ferry_branches(fleet_url) == [] and remote_tip(fleet_url) == main


def test_a_merge_whose_message_is_the_description_keeps_who_asked_in_history_and_audit(start, github, fleet_url):
    ferry = start()
    github.merge_commit_title, github.merge_commit_message = "PR_TITLE", "PR_BODY"
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    merge = github.merge(1, by="carol")
    in_thread(ferry)
    assert remote_log(fleet_url, fmt="%an|%s")[0] == "carol|deploy podinfo 6.5.2 → 6.5.3 to qa"
    trailers = remote_log(fleet_url, fmt="%(trailers:key=Requested-by,key=Environment,valueonly,separator=%x2C)")[0]
    assert trailers == "@alice <@alice>,qa"
    audit = ferry.say("!audit qa")[0]
    assert merge[:10] in audit and "@alice" in audit and "deploy podinfo 6.5.2 → 6.5.3 to qa" in audit


def test_a_pull_requests_commit_is_signed_like_a_pushed_one(start, github, fleet_url, tmp_path):
    private, allowed = ssh_key(tmp_path / "keys")
    ferry = start(top={"commit": {"sign": {"format": "ssh", "key_file": str(private)}}})
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    (branch,) = ferry_branches(fleet_url)
    checked = verify_ssh(fleet_url, remote_tip(fleet_url, branch), allowed)
    assert checked.returncode == 0, checked.stderr


def test_a_pull_request_for_a_major_upgrade_carries_its_preview(start, github, fleet_url):
    ferry = start()
    result = deploy(ferry, "!deploy redis 19.0.0 to qa")
    assert result.startswith("Opened pull request #1 to deploy redis 18.1.0 → 19.0.0 in qa"), result
    (pr,) = github.open_pulls()
    assert "Preview: chart 18.1.0 → 19.0.0 (major version jump)" in pr["body"], pr["body"]
    assert "<details><summary>The whole preview</summary>" in pr["body"]
    assert "Default values (values.yaml)" in pr["body"]
