"""Verification's parts on their own: the settings (one line per mistake), the Prometheus client
against a real Prometheus (and a local server for credentials), the pure decisions, the state
file's migration, and the core's automatic rollback against a real bare remote."""
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from dataclasses import asdict, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from ferrychat.feedback import say_verdict
from gitops.check import verification_findings
from gitops.core import GitOps
from gitops.errors import CheckUnreadable, NothingToRollback, SettingsError
from gitops.feedback import verify as v
from gitops.feedback.events import Outcome, parse_event, pending_record
from gitops.feedback.records import ReplyTarget, WaitingDeploy
from gitops.feedback.verifier import Verifier
from gitops.feedback.waits import Feedback
from gitops.guard.soak import Check, Verify, soak_blocker
from gitops.identity import Release, plain
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.sources.prometheus import PrometheusClient, Reading
from gitops.state.store import Store
from tests import image_fleet
from tests.fixtures_git import changed_lines, git, remote_file, remote_log, remote_path, remote_tip
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
    change = core.roll_back_failed(core.pin("podinfo", "qa").release, "6.5.3", "6.5.2", ALICE, deployed,
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
        core.roll_back_failed(core.pin("podinfo", "qa").release, "6.5.3", "6.5.2", ALICE, failed, "bad")
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
    assert core.verifications.get(core.pin("podinfo", "qa").release).state == v.FAILED
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
    assert core.verifications.get(core.pin("podinfo", "qa").release).state == v.ROLLED_BACK


def test_ferry_check_evaluates_each_check_once(tmp_path, prometheus):
    settings = qa_settings("file:///x.git", tmp_path, verify={"checks": [
        {"prometheus": prometheus.url, "query": "ferry_test_errors < 1", "for": "1m"},
        {"prometheus": prometheus.url, "query": "sum(ferry_test_errors) <", "name": "typo"}]})
    good, bad = [f.line() for f in verification_findings(settings)]
    assert good == f"ok  verify qa `ferry_test_errors < 1`: holds now on {prometheus.url} (0)"
    assert bad.startswith("FAIL  verify qa `typo`: Prometheus refused the query (bad_data): ")


# ---- on whose behalf -----------------------------------------------------------------------------

GOOD = "ferry_test_errors < 1"  # holds while the exporter says the app gives no 5xx


def verified_core(fleet, tmp_path, prometheus, **qa):
    """A core whose qa is verified by ``prometheus`` (rolled back on failure), Flux's token set."""
    settings = qa_settings(fleet, tmp_path, environ={"GITOPS_FLUX_TOKEN_QA": "qa-token"}, on_failure="rollback",
                           verify={"interval": "1s", "checks": [{"prometheus": prometheus.url, "query": GOOD,
                                                                 "for": "1m"}]}, **qa)
    return GitOps(settings, fetch_interval=0)


def turned_bad(prometheus, exporter):
    exporter.errors.set(4)
    prometheus.wait_for(GOOD, holds=False)


def identity_of(url, commit):
    """A commit's author and its Requested-by trailer."""
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%an <%ae>%n%(trailers:key=Requested-by)",
               commit).strip()


def test_an_automatic_rollback_is_authored_and_requested_as_the_change_it_reverts(fleet, tmp_path, prometheus,
                                                                                  exporter):
    """Alice asks, Bob approves: the rollback of her change is hers, by the same name and email."""
    alice = Requester("U0ALICE", "Alice Doe", "alice@example.com", channels=("C0DEPLOYS",))
    core = verified_core(fleet, tmp_path, prometheus, policy={"approval": True})
    held = core.apply(core.plan_deploy("podinfo", "qa", "6.5.3"), alice)
    change = core.approve(held.pending.id, Requester("U0BOB", "Bob Roe", "bob@example.com"))
    assert change.requester == alice  # the watchers hear on whose behalf it was pushed
    feedback = Feedback(core, clock=lambda: 1000.0)
    feedback.expect(change, change.requester, ReplyTarget("testroom", True, "1.2"))
    pending, = feedback.pending()  # as the state file keeps it
    clock = [1001.0]
    verifier = Verifier(core, clock=lambda: clock[0])
    assert [s.kind for s in verifier.settled(Outcome("live", "podinfo", "qa", pending))] == ["verifying"]
    turned_bad(prometheus, exporter)
    clock[0] = 1003.0
    said = verifier.tick()  # the verification is read back from the state file
    assert [s.kind for s in said] == ["failed", "rolled-back"]
    rollback = said[1].change.commit.sha
    assert identity_of(fleet, rollback) == identity_of(fleet, change.commit.sha) == \
        "Alice Doe <alice@example.com>\nRequested-by: Alice Doe <U0ALICE>"


def test_a_record_written_before_the_whole_identity_reads_back_as_it_was_signed():
    """Older records kept one string (the name, else the ID): it stands for both, as it did."""
    old = json.loads(json.dumps({**PENDING.__dict__, "requester": "Alice Doe", "target": PENDING.target.__dict__}))
    pending = WaitingDeploy(**{**old, "target": ReplyTarget(**old["target"])})
    assert pending.requester == Requester("Alice Doe", "Alice Doe")
    alice = Requester("U0ALICE", "Alice Doe", "alice@example.com", ("C0DEPLOYS",), "https://chat/p1")
    kept = json.loads(json.dumps(asdict(replace(PENDING, requester=alice))))
    assert WaitingDeploy(**{**kept, "target": ReplyTarget(**kept["target"])}).requester == alice


# ---- keyed by release ----------------------------------------------------------------------------

def test_two_releases_of_one_name_in_an_environment_never_share_a_verification(fleet, tmp_path, external_commit):
    """redis is verified in qa; then a second HelmRelease named redis appears there (namespace
    cache) and both become namespace/name: the verification stays redis/redis's, not cache's."""
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    core = GitOps(qa_settings(fleet, tmp_path, promote_after="30m"), fetch_interval=0, clock=lambda: later)
    change = core._write(core.plan_deploy("redis", "qa", "19.0.0"), ALICE, dry_run=False)
    pending = pending_record(change, ALICE, ReplyTarget("testroom", True, "1.2"), 1000.0)
    said = Verifier(core, clock=lambda: 1001.0).settled(Outcome("live", "redis", "qa", pending))
    assert [s.kind for s in said] == ["verified"]  # no checks: live is verified
    redis = remote_file(fleet, "apps/qa/redis.yaml")
    kustomization = remote_file(fleet, "apps/qa/kustomization.yaml")
    external_commit(fleet, {"apps/qa/redis-cache.yaml": redis.replace("namespace: redis", "namespace: cache"),
                            "apps/qa/kustomization.yaml": kustomization.replace("  - redis.yaml\n",
                                                                                "  - redis.yaml\n  - redis-cache.yaml\n")})
    names = {p.app for p in core.inventory().in_environment("qa")}
    assert {"redis/redis", "cache/redis"} <= names, names
    promotion = core.plan_promotion("redis/redis", "stag")
    assert promotion.new == "19.0.0"
    core.check(promotion, ALICE)  # verified two hours ago under its release: no soak blocker
    cache = core.pin("cache/redis", "qa")
    assert core.verifications.get(cache.release) is None
    assert core.verifications.of_releases([cache.release]) == []
    (found,) = core.verifications.of_releases([core.pin("redis/redis", "qa").release, cache.release])
    assert (found.app, found.namespace, found.name, found.state) == ("redis", "redis", "redis", v.VERIFIED)


# ---- a whole-app change rolled back whole ----------------------------------------------------------

@pytest.fixture
def image_core(tmp_path, registry, charts, images, bare_remote):
    """The image fleet (web: chart and image), qa rolled back on failure; its remote's URL too."""
    url = bare_remote(image_fleet.files(registry.host, registry.url))
    raw = {**image_fleet.settings(url), "data_dir": str(tmp_path / "data")}
    raw["environments"][1].update(on_failure="rollback", verify={"checks": [
        {"prometheus": "http://127.0.0.1:9", "query": "errors < 1", "for": "1m"}]})
    return GitOps(parse_settings(raw, {}), fetch_interval=0), url


def failed_by_flux(core, change):
    pending = pending_record(change, ALICE, ReplyTarget("testroom", True, "1.2"), 1000.0)
    event = parse_event(encode(flux_event(name="web", namespace="web", reason="UpgradeFailed", version=change.new)))
    return Verifier(core, clock=lambda: 1001.0).settled(Outcome("failed", change.app, "qa", pending, event))


def test_a_failed_whole_app_promotion_is_rolled_back_whole_in_one_commit(image_core):
    core, url = image_core
    promoted = core.apply(core.plan_promotion("web", "qa"), ALICE)
    assert promoted.moves == (("chart", "6.5.0", "6.5.1"), ("image", "1.0.0", "1.1.0"))
    said = failed_by_flux(core, promoted)
    assert [s.kind for s in said] == ["failed", "rolled-back"]
    rollback = said[1].change
    assert rollback.moves == (("chart", "6.5.1", "6.5.0"), ("image", "1.1.0", "1.0.0"))
    assert remote_log(url)[1] == promoted.commit.sha  # one commit on the promotion
    assert changed_lines(url)[0] == "2\t2\tapps/qa/web.yaml"
    message = last_message(url)
    assert message.startswith("rollback web chart 6.5.1 → 6.5.0, image 1.1.0 → 1.0.0 to qa\n")
    assert f"Rollback-Of: {promoted.commit.sha}\n" in message
    web = core.pin("web", "qa", part="image").release
    assert core.guard.rolled_back(web).version == "1.1.0"  # each part marked: neither comes back alone
    assert core.guard.rolled_back(core.pin("web", "qa", part="chart").release).version == "6.5.1"
    assert plain(say_verdict(said[1])).startswith("`web` rolled back in qa (chart 6.5.1 → 6.5.0, image 1.1.0 → 1.0.0) "
                                           "by Ferry on behalf of U0ALICE (commit ")


def test_a_whole_app_change_half_changed_since_is_left_and_said_why(image_core):
    core, url = image_core
    promoted = core.apply(core.plan_promotion("web", "qa"), ALICE)
    core.apply(core.plan_deploy("web", "qa", "1.2.0", part="image"), ALICE)  # the image moved on since
    tip = remote_tip(url)
    said = failed_by_flux(core, promoted)
    assert [s.kind for s in said] == ["failed", "not-rolled-back"]
    assert said[1].problem == ("`web image` in qa now pins 1.2.0, not the 1.1.0 the failed change wrote with "
                               "6.5.1: someone changed it since, so Ferry left the whole change.")
    assert remote_tip(url) == tip
