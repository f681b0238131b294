"""Flux's Receiver told of each push: a local Receiver endpoint that checks the signature as
notification-controller does (tests/flux_receiver.py), a real bare remote and registry, and a
real Errbot. One call per push (a group commit is one push), signed with the Receiver's token;
a Receiver that fails is logged once and counted, never an error of the change."""
from __future__ import annotations

import json
import logging

import pytest
import requests

from devtools.fluxrepo import demo_files, demo_settings
from gitops.core import GitOps
from gitops.errors import SettingsError
from gitops.feedback import receiver
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_tip
from devtools.flux_receiver import FluxReceivers, signature_valid, webhook_path
from tests.held_push import Gate
from tests.ops import deploy
from tests.serving import serving
from tests.test_batch import APPS, deploys, queued_behind_a_held_push
from tests.test_batch import fleet as batch_fleet  # noqa: F401 - the group commit's fleet

TOKEN = "receiver-token-0123456789abcdef"
ALICE = Requester("U0ALICE", "Alice")


@pytest.fixture
def url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def receivers():
    with serving(FluxReceivers()) as server:
        yield server


def with_receiver(raw: dict, hook: str, environments=("qa",)) -> dict:
    for env in raw["environments"]:
        if env["name"] in environments:
            env["flux_receiver"] = {"url": hook}
    return raw


def environ(*environments) -> dict:
    return {f"GITOPS_FLUX_RECEIVER_TOKEN_{e.upper()}": TOKEN for e in environments}


def counted(core: GitOps, environment: str, outcome: str) -> float:
    return core.metrics.registry.get_sample_value(
        "ferry_flux_receiver_calls_total", {"environment": environment, "outcome": outcome}) or 0.0


# ---- the call, as notification-controller checks it -------------------------------------------

def test_the_local_receiver_checks_as_notification_controller_does(receivers):
    hook = receivers.add(TOKEN, "ferry", "flux-system")
    assert hook.endswith(webhook_path(TOKEN, "ferry", "flux-system"))
    body = receiver.payload("https://git.example/fleet.git", "main", "a" * 40)
    post = lambda h, b=body, url=hook: requests.post(url, data=b, headers=h, timeout=5).status_code  # noqa: E731
    assert post(receiver.headers(body, TOKEN)) == 200
    assert post(receiver.headers(body, "another token")) == 400  # Ferry's signature with a wrong token
    assert post(receiver.headers(body, TOKEN), b=body + b" ") == 400  # the body changed on the way
    assert post({"X-Signature": "SHA256=" + receiver.headers(body, TOKEN)["X-Signature"][7:]}) == 400
    assert post({}) == 400
    assert post(receiver.headers(body, TOKEN), url=receivers.url + webhook_path("other", "ferry", "x")) == 404
    # go-github accepts sha1 and sha512 too: the local Receiver is no stricter than the real one
    import hashlib
    import hmac
    for name in ("sha1", "sha512"):
        digest = hmac.new(TOKEN.encode(), body, getattr(hashlib, name)).hexdigest()
        assert signature_valid(f"{name}={digest}", body, TOKEN)
    assert not signature_valid("sha384=" + hmac.new(TOKEN.encode(), body, hashlib.sha384).hexdigest(), body, TOKEN)


def test_settings_name_the_receiver_and_its_token_comes_from_the_environment_or_a_file(tmp_path, url):
    hook = "http://notification-controller.flux-system/hook/" + "ab" * 32
    settings = parse_settings(with_receiver(demo_settings(url), hook), environ("qa"))
    assert settings.environment("qa").flux_receiver == hook
    assert settings.secrets.receiver_token("qa") == TOKEN and TOKEN in settings.secrets.values()
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    from_file = parse_settings(with_receiver(demo_settings(url), hook),
                               {"GITOPS_FLUX_RECEIVER_TOKEN_QA_FILE": str(secret)})
    assert from_file.secrets.receiver_token("qa") == TOKEN
    with pytest.raises(SettingsError, match="GITOPS_FLUX_RECEIVER_TOKEN_QA"):
        parse_settings(with_receiver(demo_settings(url), hook), {})
    for bad in ("ftp://host/hook/x", "http://host/other", "http://user:pw@host/hook/x", "http://host/hook/x?a=1"):
        with pytest.raises(SettingsError, match="webhookPath"):
            parse_settings(with_receiver(demo_settings(url), bad), environ("qa"))
    raw = demo_settings(url)
    raw["environments"][1]["flux_receiver"] = {"url": hook, "token": TOKEN}
    with pytest.raises(SettingsError, match="secrets come from environment variables"):
        parse_settings(raw, environ("qa"))


# ---- one call per push --------------------------------------------------------------------------

def test_a_push_calls_the_receiver_once_signed_with_its_commit(tmp_path, url, receivers):
    hook = receivers.add(TOKEN)
    raw = with_receiver({**demo_settings(url), "data_dir": str(tmp_path / "data")}, hook, ("dev", "qa"))
    core = GitOps(parse_settings(raw, environ("dev", "qa")), fetch_interval=0)
    change = deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    (call,) = receivers.wait_for(1)
    assert call.status == 200 and signature_valid(call.signature, call.body, TOKEN)
    assert json.loads(call.body) == {"repository": url, "branch": "main", "commit": change.commit.sha}
    assert change.commit.sha == remote_tip(url)
    assert counted(core, "dev", "ok") == 1  # dev and qa share the Receiver: one call, under the first
    deploy(core, "podinfo", "qa", "6.5.3", ALICE)  # nothing to do: no push, no call
    deploy(core, "podinfo", "qa", "6.5.2", ALICE, dry_run=True)
    assert len(receivers.calls) == 1
    core.receivers.close()


def test_a_group_commit_is_one_push_and_one_call(batch_fleet, tmp_path, receivers):  # noqa: F811
    apps, url = batch_fleet
    raw = with_receiver({**demo_settings(url), "data_dir": str(tmp_path / "data")}, receivers.add(TOKEN), ("dev",))
    core = GitOps(parse_settings(raw, environ("dev")), fetch_interval=300)
    core.inventory()
    gate = Gate(url, tmp_path / "gate")
    first = deploys(core, apps, start=0)[apps[0][0]]
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert gate.pushes() == [1, APPS - 1]  # the first alone, the rest as one group commit
    calls = receivers.wait_for(2)
    assert [json.loads(c.body)["commit"] for c in calls] == [results["first"].commit.sha, remote_tip(url)]
    assert len(receivers.wait_for(2, timeout=0.5)) == 2
    core.receivers.close()


# ---- through Errbot ----------------------------------------------------------------------------

def test_deploy_calls_the_receiver_once_with_the_right_signature(tmp_path, url, receivers, monkeypatch):
    hook = receivers.add(TOKEN)
    monkeypatch.setenv("GITOPS_FLUX_RECEIVER_TOKEN_QA", TOKEN)
    with started_bot(tmp_path, with_receiver(demo_settings(url), hook)) as bot:
        intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
        (call,) = receivers.wait_for(1)
        assert call.status == 200 and signature_valid(call.signature, call.body, TOKEN)
        assert json.loads(call.body)["commit"] == remote_tip(url)
        assert len(receivers.wait_for(1, timeout=0.5)) == 1
        # dev has no Receiver, but its push is a new revision of the repository qa's Flux reads too
        ask(bot, "!deploy podinfo 6.6.0 to dev", replies=2)
        assert json.loads(receivers.wait_for(2)[1].body)["commit"] == remote_tip(url)


@pytest.mark.parametrize("down", ["closed", "500", "wrong token"])
def test_a_receiver_that_fails_never_fails_the_deploy(tmp_path, url, monkeypatch, caplog, down):
    server = FluxReceivers(status=500 if down == "500" else None)
    hook = server.add("the Receiver's real token")
    monkeypatch.setenv("GITOPS_FLUX_RECEIVER_TOKEN_QA", TOKEN)
    if down == "closed":
        server.server_close()  # nothing listens on its port
    caplog.set_level(logging.INFO, logger="gitops.feedback.receiver")
    with serving(server) if down != "closed" else _nothing(), \
            started_bot(tmp_path, with_receiver(demo_settings(url), hook)) as bot:
        core = bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops
        for n, version in enumerate(("6.5.3", "6.6.0"), start=1):
            _, result = ask(bot, f"!deploy podinfo {version} to qa", replies=2)
            assert result.startswith(f"Deployed podinfo") and remote_tip(url)[:10] in result
            expected = {"closed": "unreachable", "500": "error", "wrong token": "refused"}[down]
            _wait(lambda: counted(core, "qa", expected) == n)
        said = [r.getMessage() for r in caplog.records if r.name == "gitops.feedback.receiver"]
        assert len(said) == 1 and "was not told of a push" in said[0]  # once per kind of failure
        assert "/hook/…" in said[0] and webhook_path("the Receiver's real token", "ferry", "flux-system") not in said[0]
        assert TOKEN not in caplog.text


def _wait(condition, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time bound"
        time.sleep(0.02)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_a_receiver_at_a_metadata_address_is_never_called_and_is_counted(tmp_path, url, caplog):
    # The one HTTP door refuses link-local addresses (cloud metadata) before connecting; private
    # (in-cluster) addresses are allowed: a Receiver usually is one.
    raw = with_receiver({**demo_settings(url), "data_dir": str(tmp_path / "data")},
                        "http://169.254.169.254/hook/" + "ab" * 32)
    core = GitOps(parse_settings(raw, environ("qa")), fetch_interval=0)
    caplog.set_level(logging.WARNING, logger="gitops.feedback.receiver")
    target = receiver.receivers(core.settings, core.settings.environment("qa").repo)[0]
    assert core.receivers.call(target, receiver.payload(url, "main", "b" * 40)) == "unreachable"
    assert counted(core, "qa", "unreachable") == 1
    assert "does not connect to 169.254.169.254" in caplog.text
    core.receivers.close()
