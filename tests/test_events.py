"""Flux events in the core: signatures as notification-controller makes them, the event as it
posts it, freshness and replays, event → app, what to say (pure functions, and ``Feedback`` over
a real core, a real bare remote and the real SQLite state file)."""
import hashlib
import hmac
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from devtools.fluxrepo import demo_files, demo_settings
from gitops.feedback import events
from gitops.core import GitOps
from gitops.errors import (BadSignature, EventRefused, EventTooLarge, FeedbackNotConfigured,
                           MalformedEvent, ReplayedEvent, StaleEvent, Unsigned, UnknownEnvironment)
from gitops.feedback.events import FluxEvent, decide, match_release, parse_event, sign, verify
from gitops.feedback.waits import FORGET_AFTER, NOTICE_WINDOW, Feedback, live_states
from gitops.feedback.records import ReplyTarget, WaitingDeploy
from gitops.model import Change, Commit, Pin
from gitops.settings import parse_settings
from tests.flux_events import DOCUMENTED, Clock, encode, flux_event, now_rfc3339

TOKEN = "s3cr3t-flux-token"


# ---- signatures --------------------------------------------------------------------------------

def go_signature(body: bytes, key: str, algorithm="sha256") -> str:
    """What notification-controller's generic-hmac provider sends, per providers.md."""
    mac = hmac.new(key.encode(), body, getattr(hashlib, algorithm))
    return f"{algorithm}={mac.hexdigest()}"


def test_a_signature_made_as_flux_makes_it_is_accepted():
    body = encode(DOCUMENTED)
    assert sign(body, TOKEN) == go_signature(body, TOKEN)
    verify(body, go_signature(body, TOKEN), TOKEN)
    for algorithm in ("sha224", "sha384", "sha512"):  # Flux's verification example accepts these
        verify(body, go_signature(body, TOKEN, algorithm), TOKEN)
    verify(body, go_signature(body, TOKEN).upper().replace("SHA256", "sha256"), TOKEN)  # hex case


@pytest.mark.parametrize("header, error, status", [
    (None, Unsigned, 401),
    ("", Unsigned, 401),
    ("sha256=" + "0" * 64, BadSignature, 403),
    ("sha256", BadSignature, 403),
    ("md5=abc", BadSignature, 403),
    ("sha256=é" + "0" * 63, BadSignature, 403),
])
def test_missing_or_wrong_signatures_are_refused(header, error, status):
    with pytest.raises(error) as e:
        verify(encode(DOCUMENTED), header, TOKEN)
    assert e.value.status == status and "\n" not in str(e.value)


def test_another_token_or_a_changed_body_is_refused():
    body = encode(DOCUMENTED)
    with pytest.raises(BadSignature):
        verify(body, go_signature(body, "another-token"), TOKEN)
    with pytest.raises(BadSignature):
        verify(body.replace(b"6.6.1", b"6.6.2"), go_signature(body, TOKEN), TOKEN)


# ---- the event ---------------------------------------------------------------------------------

def test_the_documented_event_parses():
    event = parse_event(encode(DOCUMENTED))
    assert (event.kind, event.namespace, event.name) == ("HelmRelease", "default", "podinfo")
    assert event.reason == "TestSucceeded" and event.severity == "info"
    assert event.revision == "6.6.1+0cc9a8446c95" and event.version == "6.6.1"  # build metadata stripped
    assert event.timestamp == datetime(2024, 5, 7, 5, 2, 34, tzinfo=timezone.utc)
    assert event.controller == "helm-controller" and event.outcome == "live"


def test_the_generic_provider_example_parses_as_a_kustomization_error():
    """providers.md's example body, verbatim: not a HelmRelease, an error."""
    body = b"""{
  "involvedObject": {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
    "name": "webapp", "namespace": "apps", "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632"},
  "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"},
  "severity":"error", "reason": "ValidationFailed",
  "message":"service/apps/webapp validation error: spec.type: Unsupported value: Ingress",
  "reportingController":"kustomize-controller", "reportingInstance":"kustomize-controller-7c7b47f5f-8bhrp",
  "timestamp":"2022-10-28T07:26:19Z"}"""
    event = parse_event(body)
    assert event.kind == "Kustomization" and event.outcome == "failed"
    assert event.revision == "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
    assert match_release([pin("webapp", "apps")], event) is None  # only HelmReleases are apps


@pytest.mark.parametrize("body, message", [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b"{}", "`involvedObject` is missing"),
    (encode({**DOCUMENTED, "involvedObject": {"kind": "HelmRelease"}}), "`involvedObject.name` is missing"),
    (encode({**DOCUMENTED, "involvedObject": {"kind": "HelmRelease", "name": 3}}), "is not a string"),
    (encode({**DOCUMENTED, "reason": None}), "`reason` is missing"),
    (encode({**DOCUMENTED, "metadata": ["x"]}), "`metadata` is not a mapping"),
    (encode({**DOCUMENTED, "timestamp": "yesterday"}), "not an RFC 3339 time"),
    (encode({**DOCUMENTED, "timestamp": "2024-05-07T05:02:34"}), "no time zone"),
])
def test_malformed_events_say_what_is_wrong(body, message):
    with pytest.raises(MalformedEvent) as e:
        parse_event(body)
    assert message in str(e.value) and e.value.status == 400


def test_a_body_nested_deeper_than_the_parser_goes_is_a_400():
    deep = b'{"involvedObject": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(MalformedEvent, match="nests deeper than") as e:
        parse_event(deep)
    assert e.value.status == 400


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_cleanly(body):
    try:
        assert isinstance(parse_event(body), FluxEvent)
    except MalformedEvent:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(DOCUMENTED)), json_values, max_size=8))
def test_any_json_shape_parses_or_is_refused_cleanly(patch):
    try:
        event = parse_event(encode({**DOCUMENTED, **patch}))
    except MalformedEvent:
        return
    assert event.outcome in ("live", "failed", "drift", "info")
    assert "+" not in event.version


@pytest.mark.parametrize("reason, severity, outcome", [
    ("InstallSucceeded", "info", "live"), ("UpgradeSucceeded", "info", "live"),
    ("TestSucceeded", "info", "live"), ("InstallFailed", "error", "failed"),
    ("UpgradeFailed", "error", "failed"), ("TestFailed", "error", "failed"),
    ("RollbackSucceeded", "info", "failed"), ("UninstallSucceeded", "info", "failed"),
    ("ArtifactFailed", "error", "failed"), ("DriftDetected", "info", "drift"),
    ("Progressing", "info", "info"), ("HelmChartInSync", "info", "info"),
])
def test_what_an_event_means(reason, severity, outcome):
    event = parse_event(encode({**DOCUMENTED, "reason": reason, "severity": severity}))
    assert event.outcome == outcome


def test_the_revision_comes_from_the_helm_controller_key_first():
    event = parse_event(encode({**DOCUMENTED, "metadata": {
        "env": "prod", "source.toolkit.fluxcd.io/revision": "sha256:abc",
        "helm.toolkit.fluxcd.io/revision": "v1.15.0"}}))
    assert event.revision == "v1.15.0" and event.version == "v1.15.0"
    assert parse_event(encode({**DOCUMENTED, "metadata": {}})).version == ""


# ---- freshness and replays ---------------------------------------------------------------------

def test_stale_and_future_events_are_refused():
    event = parse_event(encode(DOCUMENTED))  # 2024-05-07T05:02:34Z
    at = event.timestamp
    events.check_fresh(event, at + timedelta(minutes=14), timedelta(minutes=15))
    with pytest.raises(StaleEvent, match="older than 15 minutes"):
        events.check_fresh(event, at + timedelta(minutes=16), timedelta(minutes=15))
    with pytest.raises(StaleEvent, match="in the future"):
        events.check_fresh(event, at - timedelta(minutes=6), timedelta(minutes=15))


def test_a_body_accepted_once_is_refused_until_its_timestamp_expires():
    seen = events.remember({}, "a", until=1900, now=1000)
    assert events.is_replay(seen, "a", now=1500)
    assert events.is_replay(seen, "a", now=1900)
    assert not events.is_replay(seen, "b", now=1500)
    assert not events.is_replay(seen, "a", now=1901)
    with pytest.raises(ReplayedEvent) as e:
        events.check_replay(seen, "a", 1500)
    assert e.value.status == 409
    later = events.remember(seen, "b", until=2800, now=2000)
    assert later == {"b": 2800} and seen == {"a": 1900}  # a new value; the expired one pruned
    event = parse_event(encode(DOCUMENTED))
    assert events.replay_until(event, timedelta(minutes=15)) == event.timestamp.timestamp() + 900


# ---- event → app -------------------------------------------------------------------------------

def pin(app, namespace, env="qa", version="1.0.0"):
    return Pin(app, env, version, False, None, "helmrelease", app.rsplit("/", 1)[-1], namespace=namespace)


def test_a_release_maps_to_the_app_by_name_and_namespace():
    pins = [pin("podinfo", "podinfo"), pin("apps/web", "apps"), pin("team/web", "team"), pin("api", "")]
    find = lambda name, ns: match_release(pins, parse_event(encode(flux_event(name, ns))))
    assert find("podinfo", "podinfo").app == "podinfo"
    assert find("podinfo", "other") is None  # same name, a namespace Ferry does not manage
    assert find("web", "team").app == "team/web"  # qualified on a clash
    assert find("web", "default") is None
    assert find("api", "anything").app == "api"  # discovered without a namespace: by name
    assert find("nginx", "podinfo") is None
    assert match_release(pins, parse_event(encode(flux_event(kind="Kustomization")))) is None


# ---- what to say -------------------------------------------------------------------------------

def ev(reason="UpgradeSucceeded", version="6.5.3", **kw):
    return parse_event(encode(flux_event(reason=reason, version=version, **kw)))


PENDING = WaitingDeploy("podinfo", "qa", "deploy", "6.5.2", "6.5.3", "", "@alice",
                         ReplyTarget("testroom", True), 100.0)


@pytest.mark.parametrize("event, kind, settles", [
    (ev("UpgradeSucceeded"), "live", True),
    (ev("TestSucceeded"), "live", True),
    (ev("UpgradeSucceeded", digest=""), "live", True),
    (ev("UpgradeSucceeded", version="6.5.2"), "notice", False),  # someone else's version
    (ev("UpgradeFailed"), "failed", True),
    (ev("TestFailed"), "failed", True),
    (ev("RollbackSucceeded", version="6.5.2"), "failed", True),  # Flux remediated the upgrade
    (ev("UpgradeFailed", version="6.5.2"), "notice", False),
    (ev("Progressing"), None, False),
])
def test_a_pending_change_settles_on_its_outcome(event, kind, settles):
    outcome, settled = decide(event, "podinfo", "qa", PENDING, now=172.0)
    assert (outcome.kind if outcome else None, settled) == (kind, settles)
    if settles:
        assert outcome.pending == PENDING and outcome.elapsed == 72.0


def test_without_a_pending_change_news_is_a_notice():
    assert decide(ev("UpgradeSucceeded"), "podinfo", "qa", None, 0)[0].kind == "notice"
    assert decide(ev("DriftDetected"), "podinfo", "qa", None, 0)[0].kind == "notice"
    assert decide(ev("Progressing"), "podinfo", "qa", None, 0) == (None, False)


def test_live_records_keep_what_versions_shows():
    received = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = events.live_record(ev("UpgradeFailed"), "podinfo", "qa", received)
    assert record["state"] == "failed" and record["version"] == "6.5.3"
    assert record["revision"] == "6.5.3+0cc9a8446c95" and record["reason"] == "UpgradeFailed"
    assert record["received"] == "2026-01-02T03:04:05Z" and "context deadline" in record["message"]
    assert events.live_record(ev("Progressing"), "podinfo", "qa", received) is None


# ---- Feedback over a real core, remote and state file -----------------------------------------------

@pytest.fixture
def core(tmp_path, bare_remote):
    url = bare_remote(demo_files("oci://127.0.0.1:9/charts"))
    raw = demo_settings(url)
    raw["environments"][1]["notify"] = "#deploys-qa"
    settings = parse_settings({**raw, "data_dir": str(tmp_path / "data"), "flux": {"timeout_minutes": 10}},
                              {"GITOPS_FLUX_TOKEN_QA": TOKEN, "GITOPS_FLUX_TOKEN_PROD": "prod-token"})
    core = GitOps(settings)  # its state file in data_dir, as the bot's in FERRY_DATA_DIR
    yield core
    core.state.close()


def change(app="podinfo", env="qa", new="6.5.3", old="6.5.2"):
    return Change("deploy", app, env, old, new, f"apps/{env}/{app}-values.yaml", "diff",
                  commit=Commit("a" * 40))


TARGET = ReplyTarget("testroom", True, "1700000000.000100")


def post(feedback, event, token=TOKEN, env="qa"):
    body = encode(event)
    return feedback.receive(env, body, sign(body, token))


def test_feedback_settles_a_pushed_change_and_records_it(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    assert feedback.expect(change(), "@alice", TARGET) is None
    clock.now += 95
    got = post(feedback, flux_event(reason="UpgradeSucceeded", version="6.5.3",
                                    timestamp=now_rfc3339(datetime.fromtimestamp(clock.now, timezone.utc))))
    (outcome,) = got.outcomes
    assert (outcome.kind, outcome.app, outcome.environment, outcome.elapsed) == ("live", "podinfo", "qa", 95)
    assert outcome.pending.target == TARGET and outcome.pending.requester.id == "@alice"
    assert feedback.pending() == []
    pins = core.inventory().pins
    assert live_states(core.memory, pins)[("podinfo", "qa")]["state"] == "live"


def test_no_token_no_waiting_and_no_events(core):
    feedback = Feedback(core, Clock())
    assert feedback.expect(change(env="dev", new="6.6.0"), "@alice", TARGET) is None
    assert feedback.pending() == []
    with pytest.raises(FeedbackNotConfigured) as e:
        post(feedback, flux_event(), env="dev")
    assert e.value.status == 403
    with pytest.raises(UnknownEnvironment):
        post(feedback, flux_event(), env="nowhere")
    assert post(feedback, flux_event(), token="prod-token", env="production").environment == "prod"


def test_refused_requests_change_nothing(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    feedback.expect(change(), "@alice", TARGET)
    accepted = encode(flux_event(reason="Progressing"))
    feedback.receive("qa", accepted, sign(accepted, TOKEN))
    before = {k: core.memory[k] for k in core.memory.keys()}
    good = encode(flux_event())
    old = encode(flux_event(timestamp="2024-05-07T05:02:34Z"))
    for body, signature, error in [
        (good, None, Unsigned), (good, sign(good, "prod-token"), BadSignature),
        (b"{" * 10, sign(b"{" * 10, TOKEN), MalformedEvent), (old, sign(old, TOKEN), StaleEvent),
        (accepted, sign(accepted, TOKEN), ReplayedEvent),
        (b" " * (events.MAX_BODY + 1), sign(b" " * (events.MAX_BODY + 1), TOKEN), EventTooLarge),
    ]:
        with pytest.raises(error):
            feedback.receive("qa", body, signature)
        assert {k: core.memory[k] for k in core.memory.keys()} == before, error
    assert all(issubclass(e, EventRefused) for e in (Unsigned, BadSignature, StaleEvent))


def test_a_timeout_is_said_once_and_a_late_outcome_still_answers(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    feedback.expect(change(), "@alice", TARGET)
    clock.now += 599
    assert feedback.expired() == []
    clock.now += 2
    (outcome,) = feedback.expired()
    assert outcome.kind == "timeout" and outcome.pending.version == "6.5.3"
    assert feedback.expired() == []  # once
    clock.now += 60
    got = post(feedback, flux_event(timestamp=now_rfc3339(datetime.fromtimestamp(clock.now, timezone.utc))))
    assert [o.kind for o in got.outcomes] == ["live"] and got.outcomes[0].pending.timed_out
    feedback.expect(change(new="6.6.0", old="6.5.3"), "@alice", TARGET)
    clock.now += 600
    feedback.expired()
    clock.now += FORGET_AFTER
    assert feedback.expired() == [] and feedback.pending() == []  # forgotten after a day


def test_a_newer_push_supersedes_the_one_waiting(core):
    feedback = Feedback(core, Clock())
    feedback.expect(change(new="6.5.3"), "@alice", TARGET)
    outcome = feedback.expect(change(new="6.6.0", old="6.5.3"), "@bob", replace(TARGET, thread="2"))
    assert outcome.kind == "superseded" and outcome.pending.version == "6.5.3"
    assert outcome.by.version == "6.6.0" and outcome.by.requester.id == "@bob"
    assert [p.version for p in feedback.pending()] == ["6.6.0"]


def test_notices_go_to_the_channel_once(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    stamp = lambda: now_rfc3339(datetime.fromtimestamp(clock.now, timezone.utc))
    kinds = lambda reason, **kw: [o.kind for o in post(feedback, flux_event(reason=reason, timestamp=stamp(),
                                                                             **kw)).outcomes]
    assert kinds("UpgradeFailed") == ["notice"]
    clock.now += 60  # Flux retries and fails the same way: a new body, the same news
    assert kinds("UpgradeFailed") == []
    clock.now += NOTICE_WINDOW  # still failing hours later: said again
    assert kinds("UpgradeFailed") == ["notice"]
    assert kinds("UpgradeSucceeded") == ["notice"]  # fixed
    assert kinds("TestSucceeded") == []  # the same version still live: not news
    assert kinds("UpgradeSucceeded", version="6.5.2") == ["notice"]  # another version
    # prod has a token but no channel: recorded, nothing said
    got = post(feedback, flux_event(reason="UpgradeFailed", timestamp=stamp()), token="prod-token", env="prod")
    assert got.outcomes == () and got.app == "podinfo"
    assert live_states(core.memory, core.inventory().pins)[("podinfo", "prod")]["state"] == "failed"


def test_an_unknown_release_is_ignored_and_logged(core, caplog):
    caplog.set_level("INFO", logger="gitops.feedback.waits")
    got = post(Feedback(core, Clock()), flux_event(name="nginx", namespace="web"))
    assert got.app == "" and "not an app in qa" in got.ignored
    assert any("web/nginx" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)
    assert not [k for k in core.memory.keys() if k.startswith("flux/live/")]


def test_what_ferry_says_about_outcomes():
    from ferrychat.feedback import duration, say
    assert [duration(s) for s in (0, 45, 60, 192, 3600, 7500, 90000)] == \
        ["0s", "45s", "1m", "3m 12s", "1h", "2h 5m", "1d 1h"]
    older = replace(PENDING, target=TARGET, commit="b" * 40)
    newer = replace(PENDING, version="6.6.0", requester="@bob")
    assert say(events.Outcome("superseded", "podinfo", "qa", older, by=newer)) == (
        "`podinfo` 6.5.3 in qa: 6.6.0 was pushed by @bob before Flux reported on this one; "
        "I follow that change instead.")
    assert say(events.Outcome("timeout", "podinfo", "qa", older, elapsed=600)) == (
        "`podinfo` 6.5.3 in qa: no word from Flux within 10 minutes of the push (commit bbbbbbbbbb). "
        "I will still answer here if it reports.")
    failed = say(events.Outcome("failed", "podinfo", "qa", older, ev("TestFailed"), elapsed=200))
    assert failed.startswith("`podinfo` 6.5.3 failed in qa: Flux reports TestFailed, 3m 20s after the push.\n```\n")
    assert "pod podinfo-fault-test-a0tew failed\n```" in failed
    drift = say(events.Outcome("notice", "podinfo", "qa", None, ev("DriftDetected", message="Deployment changed")))
    assert drift == "qa: `podinfo`: Flux reports DriftDetected.\n```\nDeployment changed\n```"


def test_a_future_dated_event_is_refused_as_a_replay_as_long_as_its_timestamp_is_accepted(core):
    """Accepted 4 minutes early, its timestamp passes the age check until 15 minutes after it:
    the replay must be refused all that time, not only 15 minutes from its arrival."""
    clock = Clock()
    feedback = Feedback(core, clock)
    start = clock.now
    ahead = datetime.fromtimestamp(start + 4 * 60, timezone.utc)
    body = encode(flux_event(reason="Progressing", timestamp=now_rfc3339(ahead)))
    feedback.receive("qa", body, sign(body, TOKEN))
    stamp = ahead.replace(microsecond=0).timestamp()
    for at in (start + 1, start + 15 * 60 + 1, stamp + 15 * 60 - 1, stamp + 15 * 60):
        clock.now = at
        with pytest.raises(ReplayedEvent):
            feedback.receive("qa", body, sign(body, TOKEN))
    clock.now = stamp + 15 * 60 + 1  # its timestamp is no longer accepted: refused by age
    with pytest.raises(StaleEvent):
        feedback.receive("qa", body, sign(body, TOKEN))
