"""Verification's parts on their own: the settings (one line per mistake), the Prometheus client
against a real Prometheus (and a local server for credentials), the pure decisions, the state
file's migration, `ferry check`. The shell against a real remote: test_verify_rollback.py."""
import json
import sqlite3
import time
from dataclasses import asdict, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.fluxrepo import demo_settings
from gitops.check import verification_findings
from gitops.errors import CheckUnreadable, SettingsError
from gitops.feedback import verify as v
from gitops.feedback.records import ReplyTarget, WaitingDeploy
from gitops.guard.soak import Check, Verify, soak_blocker
from gitops.identity import Release
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.sources.prometheus import PrometheusClient, Reading
from gitops.state.store import Store
from tests.fixtures_prometheus import free_port
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


def test_a_range_query_reads_each_step_as_an_instant_query_would(prometheus, exporter):
    """The gap a restart missed: the gauge is bad for a few scrapes, then good again."""
    client = PrometheusClient(lambda host: None, timeout=5)
    exporter.errors.set(0)
    prometheus.wait_for("ferry_test_errors == 0")
    time.sleep(1.5)  # a scrape or two of it good
    start = time.time() - 1
    exporter.errors.set(3)
    prometheus.wait_for("ferry_test_errors == 3")
    time.sleep(1.5)
    exporter.errors.set(0)
    prometheus.wait_for("ferry_test_errors == 0")
    time.sleep(1.5)
    end = time.time()
    steps = client.query_range(prometheus.url, "ferry_test_errors < 1", start, end, 0.5)
    first = round(start * 1000)
    assert [t for t, _ in steps] == [(first + k * 500) / 1000 for k in range(int((end - start) // 0.5) + 1)]
    held = [r.holds for _, r in steps]
    assert held[0] and held[-1] and not all(held), held  # good, bad for a while, good again
    assert {r.figure for _, r in steps} == {"0", "no sample"}
    scalar = client.query_range(prometheus.url, "scalar(ferry_test_errors) < bool 1", start, end, 0.5)
    assert [r.holds for _, r in scalar] == held and {r.figure for _, r in scalar} == {"1", "0"}
    with pytest.raises(CheckUnreadable, match=r"refused the range query \(bad_data\): .*parse error"):
        client.query_range(prometheus.url, "sum(ferry_test_errors) <", start, end, 0.5)
    long_gap = client.query_range(prometheus.url, "ferry_test_errors < 1", end - 86400, end, 1)
    assert len(long_gap) <= 11000  # Prometheus's limit: a longer gap, longer steps


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


def test_a_restart_reads_what_it_missed_or_loses_it():
    record = v.evaluated(v.started(PENDING, VERIFY, 1000.0), VERIFY, {"errors < 1": Reading(True, "0")}, 1010.0)
    assert v.resumed(record, VERIFY, "6.5.3", 1030.0) == record  # as it was: what it missed is read next
    assert v.resumed(record, None, "6.5.3", 2000.0).state == v.LOST
    moved = v.resumed(record, VERIFY, "6.6.0", 2000.0)
    assert moved.state == v.LOST and moved.reason == "Git pins 6.6.0 there now, not 6.5.3"
    # Missed: an interval after the last evaluation, to now or to the soak's end.
    assert v.missed(record, VERIFY, 1035.0) == (1020.0, 1035.0, 10.0)
    assert v.missed(record, VERIFY, 5000.0) == (1020.0, 1060.0, 10.0)
    assert v.missed(record, VERIFY, 1015.0) is None
    held = {"errors < 1": [(1020.0, Reading(True, "0")), (1030.0, Reading(True, "0.5"))]}
    goes_on = v.caught_up(record, VERIFY, held, 1035.0)
    assert (goes_on.state, goes_on.since, goes_on.updated, goes_on.evaluations) == (v.VERIFYING, 1000.0, 1030.0, 3)
    assert goes_on.figures == {"errors < 1": "0.5"} and not v.due(goes_on, VERIFY, 1035.0)
    steps = {"errors < 1": [(t, Reading(True, "0")) for t in (1020.0, 1030.0, 1040.0, 1050.0, 1060.0)]}
    done = v.caught_up(record, VERIFY, steps, 5000.0)  # the soak ended while Ferry was away
    assert (done.state, done.verified_at) == (v.VERIFIED, 1060.0)
    broke = {"errors < 1": [(1020.0, Reading(True, "0")), (1030.0, Reading(False, "no sample"))]}
    failed = v.caught_up(record, VERIFY, broke, 1035.0)
    assert failed.state == v.FAILED and failed.cause == "check" and failed.rolls_back
    assert failed.reason == ("`errors < 1` on http://p:9090 did not hold at 00:17:10 UTC, while Ferry was away: "
                             "it returned no sample")
    again = v.restarted(record, 2000.0)
    assert (again.state, again.since, again.evaluations) == (v.VERIFYING, 2000.0, 0)


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
    assert store.meta("schema") == "3"
    assert store.read("SELECT count(*) FROM verifications") == [(0,)]
    store.close()


def test_schema_2s_verifications_keyed_by_app_move_to_their_release_in_any_namespace(tmp_path):
    """A file written by the Ferry that keyed verifications by app name (and kept one string for
    the requester): each row is its release's by name, in any namespace, read as it was."""
    path = tmp_path / "state.sqlite3"
    old = {**asdict(v.started(PENDING, VERIFY, 1000.0)), "requester": "Alice Doe"}
    for key in ("namespace", "name"):
        del old[key]
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '2');
        CREATE TABLE verifications (
            environment TEXT NOT NULL, app TEXT NOT NULL, part TEXT NOT NULL, version TEXT NOT NULL,
            state TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (environment, app, part));
        CREATE INDEX verifications_state ON verifications (state);""")
    db.execute("INSERT INTO verifications VALUES ('qa', 'apps/podinfo', 'chart', '6.5.3', 'verifying', ?)",
               (json.dumps({**old, "app": "apps/podinfo"}),))
    db.commit()
    db.close()
    store = Store(path)
    book = v.VerificationBook(store)
    assert store.meta("schema") == "3"
    (found,) = book.in_state(v.VERIFYING)  # the state index is the new table's
    assert found.release == Release("qa", None, "podinfo", "chart")
    assert found.requester == Requester("Alice Doe", "Alice Doe") and found.version == "6.5.3"
    assert book.get(Release("qa", "apps", "podinfo", "chart")) == found  # its release by name
    book.save(replace(found, namespace="apps", name="podinfo", state=v.VERIFIED, verified_at=1100.0))
    assert store.read("SELECT namespace, state FROM verifications") == [("apps", "verified")]  # replaced
    assert book.get(Release("qa", "other", "podinfo", "chart")) is None
    assert store.read("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'verifications' "
                      "ORDER BY name") == [("verifications_release",), ("verifications_state",)]
    store.close()


def test_ferry_check_evaluates_each_check_once(tmp_path, prometheus):
    settings = qa_settings("file:///x.git", tmp_path, verify={"checks": [
        {"prometheus": prometheus.url, "query": "ferry_test_errors < 1", "for": "1m"},
        {"prometheus": prometheus.url, "query": "sum(ferry_test_errors) <", "name": "typo"}]})
    good, bad = [f.line() for f in verification_findings(settings)]
    assert good == f"ok  verify qa `ferry_test_errors < 1`: holds now on {prometheus.url} (0)"
    assert bad.startswith("FAIL  verify qa `typo`: Prometheus refused the query (bad_data): ")


def test_a_record_written_before_the_whole_identity_reads_back_as_it_was_signed():
    """Older records kept one string (the name, else the ID): it stands for both, as it did."""
    old = json.loads(json.dumps({**PENDING.__dict__, "requester": "Alice Doe", "target": PENDING.target.__dict__}))
    pending = WaitingDeploy(**{**old, "target": ReplyTarget(**old["target"])})
    assert pending.requester == Requester("Alice Doe", "Alice Doe")
    alice = Requester("U0ALICE", "Alice Doe", "alice@example.com", ("C0DEPLOYS",), "https://chat/p1")
    kept = json.loads(json.dumps(asdict(replace(PENDING, requester=alice))))
    assert WaitingDeploy(**{**kept, "target": ReplyTarget(**kept["target"])}).requester == alice
