"""Flux's report on an image-tag change: helm-controller's event names the chart revision, which an
image tag does not change, so the change waiting for Flux settles on the release's event after the
push, with other values than before (the event's ``…/token``, helm-controller's values checksum)."""
from datetime import datetime, timezone

import pytest

from ferrychat.feedback import say
from gitops.core import GitOps
from gitops.feedback.events import sign
from gitops.feedback.waits import Feedback
from gitops.feedback.records import ReplyTarget
from gitops.model import Change, Commit
from gitops.settings import parse_settings
from tests import image_fleet
from tests.flux_events import Clock, encode, flux_event, now_rfc3339

TOKEN = "qa-flux-token"
TARGET = ReplyTarget("testroom", True, "1700000000.000100")


@pytest.fixture
def core(tmp_path, bare_remote):
    url = bare_remote(image_fleet.files("127.0.0.1:9", "oci://127.0.0.1:9"))
    settings = parse_settings({**image_fleet.settings(url), "data_dir": str(tmp_path / "data")},
                              {"GITOPS_FLUX_TOKEN_QA": TOKEN})
    core = GitOps(settings)
    yield core
    core.state.close()


def post(feedback, clock, reason, values_token, seconds=0.0, chart="6.5.0"):
    event = flux_event("api", "api", reason=reason, version=chart,
                       timestamp=now_rfc3339(datetime.fromtimestamp(clock.now + seconds, timezone.utc)))
    event["metadata"]["helm.toolkit.fluxcd.io/token"] = values_token
    body = encode(event)
    return feedback.receive("qa", body, sign(body, TOKEN))


def image_change(new="1.1.0"):
    return Change("deploy", "api", "qa", "1.0.0", new, "apps/qa/api.yaml", "diff",
                  commit=Commit("b" * 40), part="image:app")


def test_an_image_deploy_settles_on_the_release_upgraded_after_the_push(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    post(feedback, clock, "UpgradeSucceeded", "sha256:before", seconds=-600)  # live before the push
    feedback.expect(image_change(), "@alice", TARGET)
    (waiting,) = feedback.pending()
    assert (waiting.part, waiting.token) == ("image:app", "sha256:before")

    clock.now += 5
    assert post(feedback, clock, "UpgradeSucceeded", "sha256:new", seconds=-60).outcomes == ()  # before the push
    assert post(feedback, clock, "TestSucceeded", "sha256:before").outcomes == ()  # the old values
    assert len(feedback.pending()) == 1

    clock.now += 40
    (outcome,) = post(feedback, clock, "UpgradeSucceeded", "sha256:new").outcomes
    assert (outcome.kind, outcome.pending.part, outcome.event.version) == ("live", "image:app", "6.5.0")
    assert feedback.pending() == []
    assert say(outcome).startswith("`api` image:app 1.1.0 is live in qa: Flux reports UpgradeSucceeded, 45s")


def test_an_image_deploy_hears_a_failed_upgrade_after_the_push(core):
    clock = Clock()
    feedback = Feedback(core, clock)
    feedback.expect(image_change("1.2.0"), "@alice", TARGET)  # nothing known before: no token
    clock.now += 30
    (outcome,) = post(feedback, clock, "UpgradeFailed", "sha256:x").outcomes
    assert outcome.kind == "failed" and outcome.pending.version == "1.2.0"
    assert say(outcome).startswith("`api` image:app 1.2.0 failed in qa: Flux reports UpgradeFailed")
    assert feedback.pending() == []


def test_the_live_cell_of_an_image_pin_names_the_chart_flux_reports(core):
    from ferrychat.render import live
    clock = Clock()
    feedback = Feedback(core, clock)
    post(feedback, clock, "UpgradeSucceeded", "sha256:a")
    inventory = core.inventory()
    pin = inventory.find("api", "qa")
    assert pin.part == "image:app"
    record = feedback.live([pin])[("api", "qa")]
    assert live(pin, record, clock.now + 120) == "chart 6.5.0 live 2m"  # not "≠6.5.0": no false drift
