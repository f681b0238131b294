"""Verification's parts on their own: the settings (one line per mistake), the Prometheus client
against a real Prometheus (and a local server for credentials), the pure decisions, the state
file's migration, and the core's automatic rollback against a real bare remote."""
import json
import sqlite3
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.check import verification_findings
from gitops.core import GitOps
from gitops.errors import CheckUnreadable, NothingToRollback, SettingsError
from gitops.feedback import verify as v
from gitops.feedback.events import Outcome, parse_event
from gitops.feedback.records import ReplyTarget, WaitingDeploy
from gitops.feedback.verifier import Verifier
from gitops.guard.soak import Check, Verify, soak_blocker
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.sources.prometheus import PrometheusClient, Reading
from gitops.state.store import Store
from tests.fixtures_git import git, remote_log, remote_path, remote_tip
from tests.fixtures_prometheus import free_port
from tests.flux_events import encode, flux_event
from tests.serving import serving

ALICE = Requester("U0ALICE", "Alice Doe")
CHECK = {"prometheus": "http://127.0.0.1:9090", "query": "up < 1", "for": "5m"}


def qa_settings(url, tmp_path, environ=None, **qa):
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data")}
    raw["environments"][1].update(qa)
    return parse_settings(raw, environ=environ or {})


# ---- settings ---------------------------------------------------------------------------------

def test_the_settings_give_each_environment_its_verification(tmp_path):
    settings = qa_settings("file:///x.git", tmp_path, verify={"checks": [CHECK], "interval": "10s"},
                           on_failure="rollback", promote_after="30m")
    qa = settings.environment("qa").verify
    assert qa == Verify((Check("http://127.0.0.1:9090", "up < 1", 300.0),), 10.0, "rollback", 1800.0)
    assert qa.soak == 300.0
    assert settings.environment("dev").verify is None
    only_soak = qa_settings("file:///x.git", tmp_path, promote_after=45).environment("qa").verify
    assert only_soak == Verify((), 30.0, "notify", 45.0)  # no checks: live is verified


@pytest.mark.parametrize("qa, key", [
    ({"on_failure": "revert"}, "environments[1].on_failure"),
    ({"promote_after": "soon"}, "environments[1].promote_after"),
    ({"verify": {"checks": [{**CHECK, "for": "5 minutes"}]}}, "environments[1].verify.checks[0].for"),
    ({"verify": {"checks": [{**CHECK, "prometheus": "prometheus:9090"}]}},
     "environments[1].verify.checks[0].prometheus"),
    ({"verify": {"checks": [{**CHECK, "prometheus": "http://u:p@prom:9090"}]}},
     "environments[1].verify.checks[0].prometheus"),
    ({"verify": {"checks": [{"prometheus": "http://prom:9090"}]}}, "environments[1].verify.checks[0]"),
    ({"verify": {"checks": [{**CHECK, "query": " "}]}}, "environments[1].verify.checks[0].query"),
    ({"verify": {"checks": CHECK}}, "environments[1].verify.checks"),
    ({"verify": {"check": [CHECK]}}, "environments[1].verify"),
    ({"verify": {"interval": 0}}, "environments[1].verify.interval"),
])
def test_a_wrong_verification_setting_is_one_line_naming_its_key(tmp_path, qa, key):
    with pytest.raises(SettingsError) as e:
        qa_settings("file:///x.git", tmp_path, **qa)
    assert f"`{key}`" in str(e.value) and "\n" not in str(e.value)


def test_prometheus_credentials_come_from_the_environment_bound_to_their_host(tmp_path):
    raw = {**demo_settings("file:///x.git"), "data_dir": str(tmp_path),
           "prometheus_credentials": [{"host": "prom.example:9090", "env": "METRICS"}]}
    settings = parse_settings(raw, environ={"GITOPS_PROMETHEUS_METRICS_TOKEN": "s3cret"})
    assert settings.secrets.prometheus_host("prom.example:9090").token == "s3cret"
    assert settings.secrets.prometheus_host("other:9090") is None
    assert "s3cret" in settings.secrets.values()  # scrubbed from what people read
    with pytest.raises(SettingsError, match="GITOPS_PROMETHEUS_METRICS_TOKEN .* not set"):
        parse_settings(raw, environ={})


# ---- the client against a real Prometheus -------------------------------------------------------

def test_instant_queries_read_as_prometheus_answers_them(prometheus, exporter):
    client = PrometheusClient(lambda host: None, timeout=5)
    exporter.errors.set(0.5)
    prometheus.wait_for("ferry_test_errors == 0.5")
    assert client.query(prometheus.url, "ferry_test_errors < 1") == Reading(True, "0.5")
    assert client.query(prometheus.url, "ferry_test_errors > 1") == Reading(False, "no sample")
    assert client.query(prometheus.url, "scalar(ferry_test_errors) < bool 1") == Reading(True, "1")
    assert client.query(prometheus.url, "scalar(ferry_test_errors) > bool 1") == Reading(False, "0")
    with pytest.raises(CheckUnreadable, match=r"refused the query \(bad_data\): .*parse error"):
        client.query(prometheus.url, "sum(rate(ferry_test_errors[2m]) <")
    with pytest.raises(CheckUnreadable, match="returns a matrix"):
        client.query(prometheus.url, "ferry_test_errors[1m]")
    with pytest.raises(CheckUnreadable, match="did not answer"):
        client.query(f"http://127.0.0.1:{free_port()}", "up")


class _Recording(BaseHTTPRequestHandler):
    """Answers as Prometheus's /api/v1/query does, and keeps the Authorization it was sent."""
    seen: list = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"job": "app"}, "value": [1700000000.0, "0"]}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_token_goes_to_its_own_prometheus_host_only(tmp_path):
    _Recording.seen = []
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Recording)) as server:
        host = f"127.0.0.1:{server.server_port}"
        raw = {**demo_settings("file:///x.git"), "data_dir": str(tmp_path),
               "prometheus_credentials": [{"host": host, "env": "METRICS"}]}
        secrets = parse_settings(raw, environ={"GITOPS_PROMETHEUS_METRICS_TOKEN": "tok-1"}).secrets
        client = PrometheusClient(secrets.prometheus_host, timeout=5)
        assert client.query(f"http://{host}", "up < 1") == Reading(True, "0")
        assert client.query(f"http://localhost:{server.server_port}", "up < 1").holds  # another host name
    assert _Recording.seen == ["Bearer tok-1", None]


# ---- the pure decisions ------------------------------------------------------------------------

PENDING = WaitingDeploy("podinfo", "qa", "deploy", "6.5.2", "6.5.3", "abc123", "U0ALICE",
                        ReplyTarget("testroom", True, "1.2"), 1000.0)
VERIFY = Verify((Check("http://p:9090", "errors < 1", 60.0),), 10.0, "rollback", 300.0)


def test_a_check_must_hold_at_every_evaluation_over_its_soak():
    record = v.started(PENDING, VERIFY, 1000.0)
    assert record.state == v.VERIFYING and v.due(record, VERIFY, 1000.0)
    record = v.evaluated(record, VERIFY, {"errors < 1": Reading(True, "0")}, 1010.0)
    assert record.state == v.VERIFYING and record.figures == {"errors < 1": "0"}
    assert not v.due(record, VERIFY, 1015.0) and v.due(record, VERIFY, 1020.0)
    done = v.evaluated(record, VERIFY, {"errors < 1": Reading(True, "0")}, 1060.0)
    assert (done.state, done.verified_at, done.evaluations) == (v.VERIFIED, 1060.0, 2)
    bad = v.evaluated(record, VERIFY, {"errors < 1": Reading(False, "no sample")}, 1020.0)
    assert bad.state == v.FAILED and bad.cause == "check" and bad.rolls_back
    assert bad.reason == "`errors < 1` on http://p:9090 does not hold: it returned no sample"
    unknown = v.evaluated(record, VERIFY, {"errors < 1": CheckUnreadable("Prometheus did not answer")}, 1020.0)
    assert unknown.state == v.FAILED and unknown.cause == "unreadable" and not unknown.rolls_back
    assert v.started(PENDING, Verify(), 1000.0).state == v.VERIFIED  # no checks: live is verified


def test_a_rollback_is_never_rolled_back_automatically():
    rollback = WaitingDeploy(**{**PENDING.__dict__, "action": "rollback"})
    failed = v.evaluated(v.started(rollback, VERIFY, 0.0), VERIFY, {"errors < 1": Reading(False, "no sample")}, 1.0)
    assert failed.state == v.FAILED and not failed.rolls_back


def test_a_restart_begins_the_soak_again_or_loses_it():
    record = v.evaluated(v.started(PENDING, VERIFY, 1000.0), VERIFY, {"errors < 1": Reading(True, "0")}, 1010.0)
    again = v.resumed(record, VERIFY, "6.5.3", 2000.0)
    assert (again.state, again.since, again.evaluations) == (v.VERIFYING, 2000.0, 0)
    assert v.resumed(record, None, "6.5.3", 2000.0).state == v.LOST
    moved = v.resumed(record, VERIFY, "6.6.0", 2000.0)
    assert moved.state == v.LOST and moved.reason == "Git pins 6.6.0 there now, not 6.5.3"


def test_the_soak_blocker_says_how_long_remains():
    assert soak_blocker("podinfo", "6.5.3", "qa", 0, None, 0.0) is None
    unverified = soak_blocker("podinfo", "6.5.3", "qa", 1800, None, 0.0)
    assert unverified.kind == "soak" and unverified.admin_only
    assert unverified.reason.startswith("`podinfo` 6.5.3 is not verified in qa yet")
    soaking = soak_blocker("podinfo", "6.5.3", "qa", 1800, 1000.0, 1600.0)
    assert soaking.reason == "`podinfo` 6.5.3 has soaked in qa for 10m of 30m: 20m remain"
    assert soak_blocker("podinfo", "6.5.3", "qa", 1800, 1000.0, 2800.0) is None


def test_a_state_file_of_schema_1_gets_the_verifications_table(tmp_path):
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES ('schema', '1');")
    db.close()
    store = Store(path)
    assert store.meta("schema") == "2"
    assert store.read("SELECT count(*) FROM verifications") == [(0,)]
    store.close()


# ---- the core and the verifier against a real remote -------------------------------------------

@pytest.fixture
def fleet(tmp_path, registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def last_message(url):
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%B", "refs/heads/main")


def test_the_automatic_rollback_passes_a_lock_and_an_approval_and_says_so(fleet, tmp_path):
    core = GitOps(qa_settings(fleet, tmp_path, policy={"approval": True}), fetch_interval=0)
    core._write(core.plan_deploy("podinfo", "qa", "6.5.3"), ALICE, dry_run=False)
    deployed = remote_tip(fleet)
    core.lock("qa", None, Requester("U0BOB"), "release train")
    change = core.roll_back_failed("podinfo", "qa", "chart", "6.5.3", "6.5.2", ALICE, deployed,
                                   "`errors < 1` does not hold")
    assert change.commit.sha == remote_tip(fleet) and len(remote_log(fleet)) == 3
    message = last_message(fleet)
    assert message.startswith("rollback podinfo 6.5.3 → 6.5.2 to qa\n")
    assert f"Rollback-Of: {deployed}\n" in message
    assert "Verification: failed: `errors < 1` does not hold\n" in message
    assert "Forced-by: Ferry past: qa is locked by U0BOB" in message
    assert "Requested-by: Alice Doe <U0ALICE>" in message
    assert core.guard.rolled_back(core.pin("podinfo", "qa").release).version == "6.5.3"


def test_the_automatic_rollback_leaves_a_version_someone_changed_since(fleet, tmp_path):
    core = GitOps(qa_settings(fleet, tmp_path), fetch_interval=0)
    core._write(core.plan_deploy("podinfo", "qa", "6.5.3"), ALICE, dry_run=False)
    failed = remote_tip(fleet)
    core._write(core.plan_deploy("podinfo", "qa", "6.6.0"), ALICE, dry_run=False)
    tip = remote_tip(fleet)
    with pytest.raises(NothingToRollback, match="now pins 6.6.0, not 6.5.3"):
        core.roll_back_failed("podinfo", "qa", "chart", "6.5.3", "6.5.2", ALICE, failed, "bad")
    assert remote_tip(fleet) == tip


def test_an_unreadable_check_fails_the_verification_and_never_rolls_back(fleet, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: Prometheus is down
    settings = qa_settings(fleet, tmp_path, on_failure="rollback", verify={
        "interval": "1s", "checks": [{"prometheus": down, "query": "errors < 1", "for": "1m"}]})
    core = GitOps(settings, fetch_interval=0)
    change = core._write(core.plan_deploy("podinfo", "qa", "6.5.3"), ALICE, dry_run=False)
    pending = WaitingDeploy("podinfo", "qa", "deploy", "6.5.2", "6.5.3", change.commit.sha, "U0ALICE",
                            ReplyTarget("testroom", True, "1.2"), 1000.0)
    clock = [1000.0]
    verifier = Verifier(core, clock=lambda: clock[0])
    started = verifier.settled(Outcome("live", "podinfo", "qa", pending))
    assert [s.kind for s in started] == ["verifying"]
    clock[0] = 1002.0
    said = verifier.tick()
    assert [s.kind for s in said] == ["failed"]
    assert said[0].record.reason.startswith(f"`errors < 1` could not be evaluated: Prometheus at "
                                            f"{down[7:]} did not answer")
    assert remote_tip(fleet) == change.commit.sha  # nothing rolled back on a check Ferry could not read
    assert core.verifications.get("qa", "podinfo", "chart").state == v.FAILED
    assert verifier.tick() == []  # ended: never evaluated again


def test_a_failure_flux_reports_is_rolled_back_with_fluxs_words(fleet, tmp_path):
    settings = qa_settings(fleet, tmp_path, on_failure="rollback", verify={
        "checks": [{"prometheus": "http://127.0.0.1:9", "query": "errors < 1", "for": "1m"}]})
    core = GitOps(settings, fetch_interval=0)
    change = core._write(core.plan_deploy("podinfo", "qa", "6.5.3"), ALICE, dry_run=False)
    pending = WaitingDeploy("podinfo", "qa", "deploy", "6.5.2", "6.5.3", change.commit.sha, "U0ALICE",
                            ReplyTarget("testroom", True, "1.2"), 1000.0)
    event = parse_event(encode(flux_event(reason="UpgradeFailed", version="6.5.3")))
    said = Verifier(core, clock=lambda: 1001.0).settled(Outcome("failed", "podinfo", "qa", pending, event))
    assert [s.kind for s in said] == ["failed", "rolled-back"]
    assert said[0].record.reason.startswith("Flux reports UpgradeFailed: Helm upgrade failed for release")
    assert said[1].change.commit.sha == remote_tip(fleet) and len(remote_log(fleet)) == 3
    message = last_message(fleet)
    assert f"Rollback-Of: {change.commit.sha}\n" in message
    assert "Verification: failed: Flux reports UpgradeFailed: Helm upgrade failed" in message
    assert core.verifications.get("qa", "podinfo", "chart").state == v.ROLLED_BACK


def test_ferry_check_evaluates_each_check_once(tmp_path, prometheus):
    settings = qa_settings("file:///x.git", tmp_path, verify={"checks": [
        {"prometheus": prometheus.url, "query": "ferry_test_errors < 1", "for": "1m"},
        {"prometheus": prometheus.url, "query": "sum(ferry_test_errors) <", "name": "typo"}]})
    good, bad = [f.line() for f in verification_findings(settings)]
    assert good == f"ok  verify qa `ferry_test_errors < 1`: holds now on {prometheus.url} (0)"
    assert bad.startswith("FAIL  verify qa `typo`: Prometheus refused the query (bad_data): ")
