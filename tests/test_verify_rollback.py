"""Verification's shell against a real bare remote and registry (and a real Prometheus where a
check must turn bad): the core's automatic rollback (past locks and approvals, on behalf of the
change's requester, every part the failed commit moved), the Verifier's failures, and
verifications keyed by release."""
from datetime import datetime, timedelta, timezone

import pytest

from devtools.fluxrepo import demo_files
from ferrychat.feedback import say_verdict
from gitops.core import GitOps
from gitops.errors import NothingToRollback
from gitops.feedback import verify as v
from gitops.feedback.events import Outcome, parse_event, pending_record
from gitops.feedback.records import ReplyTarget, WaitingDeploy
from gitops.feedback.verifier import Verifier
from gitops.feedback.waits import Feedback
from gitops.identity import plain
from gitops.model import Requester
from gitops.settings import parse_settings
from tests import image_fleet
from tests.fixtures_git import changed_lines, git, remote_file, remote_log, remote_path, remote_tip
from tests.fixtures_prometheus import free_port
from tests.flux_events import encode, flux_event
from tests.test_verify_parts import ALICE, qa_settings


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
