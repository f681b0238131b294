"""Metrics and readiness (issue 14, items 3 and 4).

End to end with the real ``errbot`` process on the local Slack (``tests.test_slack``): a scripted
session (a deploy that lands, one refused, Flux events accepted and refused, hostile names), then
a scrape of ``/metrics`` parsed with prometheus_client's own text parser; readiness 503 while the
repository cannot be cloned at start and 200 once it can, liveness 200 throughout. Then the label
functions and a core's metrics on their own: hostile values map onto the fixed sets, and two cores
never share counters."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devtools.fluxrepo import demo_files, demo_settings
from gitops.ops import metrics as m
from gitops.ops import readiness
from gitops.core import GitOps
from gitops.errors import FerryError
from gitops.feedback.events import sign
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.workspace import Workspace
from tests.fixtures_git import remote_log, remote_path
from tests.flux_events import encode, flux_event
from tests.slack_server import FakeSlack
from tests.test_slack import (ALICE, CHANNEL, DEPLOYS, GRANTED, MALLORY, USERS, _tail, health,
                              plain, running_ferry, thread)

HOSTILE = ("../../etc/passwd", "prod\nfake_metric 1", "ДЕВ", "x" * 5000, "qa}", '"', "{a=\"b\"}",
           "", "other", "\u202etoor")


@pytest.fixture
def slack():
    server = FakeSlack(users=dict(USERS), channels={CHANNEL: DEPLOYS}, scopes=GRANTED).start()
    yield server
    server.stop()


def get(port, path) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(port, path, body: bytes, headers: dict) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def scrape(text: str) -> dict:
    """Every sample as {(name, frozenset(labels)): value}, through prometheus_client's parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def labels_of(samples: dict, label: str) -> set:
    return {dict(ls)[label] for (_, ls), _ in samples.items() if label in dict(ls)}


def wait_status(port, path, status, timeout=60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, text = get(port, path)
        except OSError:
            got, text = None, ""
        if got == status:
            return text
        assert time.monotonic() < deadline, f"{path} answered {got} {text!r}, not {status}"
        time.sleep(0.2)


# ---- end to end ------------------------------------------------------------------------------

def test_a_scrape_after_a_session_shows_what_happened(tmp_path, slack, registry, charts, bare_remote):
    token = "qa-flux-token-9c1e"
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    base = len(remote_log(url))
    with running_ferry(tmp_path, slack, url, GITOPS_FLUX_TOKEN_QA=token) as log:
        port = slack.webserver
        assert wait_status(port, "/ferry/ready", 200) == "ready\n"
        status, text = get(port, "/metrics")
        assert status == 200
        before = scrape(text)
        assert value(before, "ferry_commands_total", command="deploy", outcome="ok") == 0  # exists, at 0
        (repository,) = labels_of({k: v for k, v in before.items()
                                   if k[0] == "ferry_git_last_fetch_timestamp_seconds"}, "repository")
        assert value(before, "ferry_git_last_fetch_timestamp_seconds", repository=repository,
                     branch="main") > 0  # the first clone, made at start

        # a deploy that lands, one qa's policy refuses, a hostile one
        ts = slack.say(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to qa")
        _, result = thread(slack, CHANNEL, ts, 2)
        assert "Deployed" in result, result
        ts = slack.say(MALLORY, CHANNEL, "!deploy podinfo 6.5.1 to qa")
        (refused,) = thread(slack, CHANNEL, ts, 1)
        assert plain(refused).startswith("You may not deploy to qa")
        ts = slack.say(ALICE, CHANNEL, "!deploy ../../x{a=\"b\"} 1.0 to prod\nfake_metric 1")
        (hostile,) = thread(slack, CHANNEL, ts, 1)
        assert len(remote_log(url)) == base + 1

        # Flux: the deploy live (accepted, in the thread), a bad signature, an unknown environment
        body = encode(flux_event("podinfo", "podinfo", "UpgradeSucceeded", "6.5.3"))
        headers = {"Content-Type": "application/json", "X-Signature": sign(body, token)}
        assert post(port, "/flux/qa", body, headers) == 200
        slack.wait_for(lambda: [t for t in (m.get("text", "") for m in slack.posted(channel=CHANNEL))
                                if "live" in t.lower()], 30, "Flux's live answer")
        assert post(port, "/flux/qa", body + b" ", headers) == 403  # the signature no longer matches
        assert post(port, "/flux/qa", body, headers) == 409  # a replay
        for env in ("no-such-env", "%2e%2e", "prod%0Afake_metric"):
            assert post(port, f"/flux/{env}", body, headers) == 404

        # The first clone (the tip) and the whole history cloned after it in the background.
        deadline = time.monotonic() + 60
        while True:
            status, text = get(port, "/metrics")
            assert status == 200
            after = scrape(text)
            if total(after, "ferry_git_request_seconds_count", operation="clone") >= 2 \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    c = "ferry_commands_total"
    assert value(after, c, command="deploy", outcome="ok") == 1
    assert value(after, c, command="deploy", outcome="refused") == 2  # the policy, the hostile one
    assert value(after, c, command="deploy", outcome="error") == 0
    assert value(after, "ferry_change_push_seconds_count") == 1
    assert value(after, "ferry_git_pushes_total", repository=repository, branch="main") == 1
    assert total(after, "ferry_git_request_seconds_count", operation="push", outcome="ok") == 1
    assert total(after, "ferry_git_request_seconds_count", operation="clone", outcome="ok") == 2
    assert total(after, "ferry_registry_request_seconds_count", operation="tags", outcome="ok") >= 1
    f = "ferry_flux_events_total"
    assert value(after, f, environment="qa", result="accepted", reason="acted") == 1
    assert value(after, f, environment="qa", result="refused", reason="bad_signature") == 1
    assert value(after, f, environment="qa", result="refused", reason="replay") == 1
    assert value(after, f, environment="other", result="refused", reason="unknown_environment") == 3
    assert value(after, "ferry_flux_live_seconds_count", environment="qa") == 1
    assert value(after, "ferry_pending_approvals", environment="prod") == 0
    # only fixed label values, whatever was typed or posted
    assert labels_of(after, "command") <= m.COMMANDS | {m.OTHER}
    assert labels_of(after, "environment") <= {"dev", "qa", "stag", "prod", m.OTHER}
    assert labels_of(after, "repository") == {repository}
    assert "fake_metric" not in text and "passwd" not in text and "x{a" not in text
    assert "Traceback" not in log.read_text(), _tail(log)


def test_ready_only_once_each_repository_is_cloned(tmp_path, slack, registry, charts, bare_remote):
    """At start the remote is missing: alive, but not ready, saying why; once the remote is
    there, ready. A Git outage later does not make it unready."""
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    hidden = remote_path(url).with_name("hidden.git")
    remote_path(url).rename(hidden)
    with running_ferry(tmp_path, slack, url) as log:
        port = slack.webserver
        assert health(port) == b"ok"
        why = wait_status(port, "/ferry/ready", 503)
        assert why.startswith("Not ready: no clone of ") and len(why.splitlines()) == 1, why
        assert "Traceback" not in why
        time.sleep(1.5)  # a few more attempts, still without the remote
        assert get(port, "/ferry/ready")[0] == 503 and health(port) == b"ok"

        hidden.rename(remote_path(url))
        assert wait_status(port, "/ferry/ready", 200) == "ready\n"

        remote_path(url).rename(hidden)  # an outage after the first clone: still ready
        ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
        thread(slack, CHANNEL, ts, 1)
        assert get(port, "/ferry/ready")[0] == 200 and health(port) == b"ok"
        samples = scrape(get(port, "/metrics")[1])
        assert total(samples, "ferry_git_request_seconds_count", operation="clone", outcome="failed") >= 1
    assert "Traceback" not in log.read_text(), _tail(log)


# ---- the labels, and a core's metrics on their own -------------------------------------------

def settings_for(url: str):
    raw = demo_settings(url, registry="oci://registry.example:5000/charts")
    raw["environments"][0]["aliases"] = ["development"]
    return parse_settings(raw, environ={})


def test_label_functions_map_hostile_values_onto_fixed_sets(tmp_path):
    metrics = m.Metrics(settings_for(str(tmp_path / "fleet.git")))
    for bad in HOSTILE + (None, 42, b"qa", ["qa"]):
        assert m.command_label(bad) == m.OTHER
        assert metrics.environment(bad) == m.OTHER
        assert metrics.host(bad) == m.OTHER
        assert m.git_operation(bad) == m.OTHER
        assert m.command_outcome(bad) in m.COMMAND_OUTCOMES
        assert m.registry_operation(bad) == m.OTHER
        assert metrics.repository(bad if isinstance(bad, str) else "", "main") == (m.OTHER, m.OTHER)
    assert metrics.environment(" Development ") == "dev" and metrics.environment("QA") == "qa"
    assert metrics.host("REGISTRY.example:5000") == "registry.example:5000"
    assert m.command_outcome("refused: You may not") == "refused" and m.command_outcome("error 1a2b") == "error"
    assert m.command_outcome("ok") == "ok" and m.command_outcome("okay") == "error"
    assert m.registry_operation("https://r/v2/a/b/tags/list?n=100") == "tags"
    assert m.registry_operation("https://r/v2/a/manifests/1.0") == "manifest"
    assert [m.registry_outcome(s) for s in (None, 200, 307, 401, 403, 404, 429, 503)] == [
        "unreachable", "ok", "ok", "refused", "refused", "not_found", "error", "error"]
    assert m.flux_reason(KeyError()) == "error"

    for bad in HOSTILE:  # through the counting methods too, then the exposition
        metrics.command(bad, bad)
        metrics.flux_event(bad, bad, bad)
        metrics.went_live(bad, 12.0)
        metrics.registry_request(bad, "https://" + bad, 500, 0.1)
    m.RepoObserver(metrics, *metrics.repository("file:///elsewhere", "main")).retried("../x")
    samples = scrape(_exposition(metrics))
    allowed = {"command": m.COMMANDS, "outcome": {*m.COMMAND_OUTCOMES, *m.GIT_OUTCOMES, *m.REGISTRY_OUTCOMES},
               "environment": {"dev", "qa", "stag", "prod"}, "result": set(m.FLUX_RESULTS),
               "reason": {"acted", "ignored", "error", *m.FLUX_REASONS.values(), *m.RETRY_REASONS},
               "host": metrics.registry_hosts, "operation": {"tags", "manifest", "blob", *m.GIT_OPERATIONS},
               "repository": {r for r, _ in metrics.repositories}, "branch": {"main"}, "le": None}
    for (_, labels), _ in samples.items():
        for label, v in labels:
            assert label in allowed, label
            assert allowed[label] is None or v in allowed[label] | {m.OTHER}, (label, v)
    assert value(samples, "ferry_commands_total", command="other", outcome="error") == len(HOSTILE)


def _exposition(metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_each_core_has_its_own_counters(tmp_path, bare_remote):
    url = bare_remote(demo_files("oci://127.0.0.1:1/charts"))
    a = GitOps(parse_settings({**demo_settings(url), "data_dir": str(tmp_path / "a")}, environ={}))
    b = GitOps(parse_settings({**demo_settings(url), "data_dir": str(tmp_path / "b")}, environ={}))
    a.inventory()
    a.metrics.command("deploy", "ok")
    sa, sb = scrape(_exposition(a.metrics)), scrape(_exposition(b.metrics))
    assert value(sa, "ferry_commands_total", command="deploy", outcome="ok") == 1
    assert value(sb, "ferry_commands_total", command="deploy", outcome="ok") == 0
    assert total(sa, "ferry_git_request_seconds_count", operation="clone", outcome="ok") == 1
    assert total(sb, "ferry_git_request_seconds_count") == 0
    assert REGISTRY.get_sample_value("ferry_commands_total", {"command": "deploy", "outcome": "ok"}) is None


def test_pending_approvals_are_counted_per_environment(tmp_path, bare_remote, registry, charts):
    raw = demo_settings(bare_remote(demo_files(f"{registry.url}/charts")))
    raw["environments"][-1]["policy"] = {"approval": True}
    core = GitOps(parse_settings({**raw, "data_dir": str(tmp_path / "d")}, environ={}))
    alice = Requester("U0ALICE", "Alice", "alice@example.test")
    core.apply(core.plan_deploy("podinfo", "prod", "6.5.3"), alice)
    samples = scrape(_exposition(core.metrics))
    assert value(samples, "ferry_pending_approvals", environment="prod") == 1
    assert value(samples, "ferry_pending_approvals", environment="dev") == 0
    assert total(samples, "ferry_registry_request_seconds_count", host="other") >= 1  # a test registry
    assert value(samples, "ferry_git_pushes_total", repository=next(iter(core.metrics.repositories))[0],
                 branch="main") == 0  # waiting: nothing pushed


def test_a_first_clone_is_retried_and_once_held_stays_held(tmp_path, bare_remote):
    """``Clones`` on a real workspace: the remote missing, then there, then gone again."""
    url = bare_remote(demo_files("oci://127.0.0.1:1/charts"))
    hidden = remote_path(url).with_name("hidden.git")
    remote_path(url).rename(hidden)
    ws = Workspace(url, "main", tmp_path / "clone", timeout=30)
    clones = readiness.Clones({"fleet": ws}, first_pause=0.05, max_pause=0.2)
    clones.start()
    try:
        deadline = time.monotonic() + 30
        while "running" in clones.missing().get("fleet", "running"):  # the first attempt's answer
            assert time.monotonic() < deadline, "no attempt finished"
            time.sleep(0.05)
        why = clones.missing()["fleet"]
        ok, line = readiness.verdict(True, True, clones.missing())
        assert not ok and line == f"Not ready: no clone of fleet yet: {why}" and "\n" not in line
        hidden.rename(remote_path(url))
        while clones.missing():
            assert time.monotonic() < deadline, "the clone was not retried"
            time.sleep(0.05)
        assert readiness.verdict(True, True, clones.missing()) == (True, "ready")
        assert readiness.verdict(True, False, {})[0] is False  # chat not connected yet
        remote_path(url).rename(hidden)  # a Git outage once cloned: still held
        ws.fetch_interval = 0
        with pytest.raises(FerryError):
            ws.head()
        assert clones.missing() == {}
    finally:
        clones.stop()
        ws.close()


def test_helm_repository_requests_are_counted_as_index_and_chart(tmp_path):
    """Requests to an HTTPS Helm repository go through the same counted door as OCI ones."""
    from devtools.helmrepo import HelmRepoServer, repository_files
    from gitops.model import ChartLocation
    from gitops.sources.registry import RegistryClient

    metrics = m.Metrics(settings_for(str(tmp_path / "fleet.git")))
    client = RegistryClient(timeout=3)
    client.observe = metrics
    with HelmRepoServer(repository_files({"web": ["1.0.0", "1.1.0"]})) as repo:
        where = ChartLocation(repo.host, f"{repo.prefix}/web", True, "http")
        assert client.versions(where).newest == "1.1.0"
    samples = scrape(_exposition(metrics))
    counted = {dict(labels)["operation"]: v for (name, labels), v in samples.items()
               if name.endswith("_count") and dict(labels).get("operation")}
    assert counted.get("index") == 1, counted
    assert m.registry_operation("https://charts.example/x/index.yaml") == "index"
    assert m.registry_operation("https://charts.example/x/web-1.0.0.tgz") == "chart"
