"""`ferry check` as an operator runs it (bin/ferry, a process of its own) against a good set-up and
a broken one of each kind: a real bare remote, the real registry (with htpasswd for credentials),
the local Slack speaking Slack's Web API. One line per item; exit 1 when anything is wrong."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from devtools.fluxrepo import ENVIRONMENTS, demo_files, demo_settings
from devtools.artifacts import push_charts
from tests.slack_server import FakeSlack
from tests.test_slack import GRANTED

FERRY = Path(__file__).resolve().parent.parent / "bin" / "ferry"


@pytest.fixture
def slack():
    server = FakeSlack(scopes=GRANTED).start()
    yield server
    server.stop()


def ferry_check(tmp_path: Path, settings: dict, **environ) -> tuple[int, list]:
    path = tmp_path / "ferry.yaml"
    YAML().dump({"data_dir": str(tmp_path / "data"), **settings}, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_", "SLACK_", "FERRY_"))}
    env.update({"GITOPS_CONFIG": str(path), **environ})
    run = subprocess.run([sys.executable, str(FERRY), "check"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run.returncode, run.stdout.splitlines()


def good_environment(slack: FakeSlack) -> dict:
    return {**{f"GITOPS_FLUX_TOKEN_{env.upper()}": f"flux-{env}" for env in ENVIRONMENTS},
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "FERRY_SLACK_API_URL": slack.url}


def line(lines: list, item: str) -> str:
    return next(l for l in lines if l.split(": ")[0].split(None, 1)[1] == item or item in l.split(": ")[0])


def test_a_good_set_up_is_all_ok(tmp_path, registry, charts, bare_remote, slack):
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    code, lines = ferry_check(tmp_path, demo_settings(url), **good_environment(slack))
    assert code == 0, lines
    assert all(l.startswith("ok  ") for l in lines[:-1]) and lines[-1].startswith("all ")
    assert "fetched, main at" in line(lines, "git")
    assert f"registry oci://{registry.host}" in "\n".join(lines)
    assert "every scope of the manifest" in line(lines, "slack bot token")
    assert "Socket Mode" in line(lines, "slack app token")
    assert {c.method for c in slack.calls} >= {"auth.test", "apps.connections.open"}


def test_settings_that_cannot_start_ferry_are_one_line_and_nothing_else_is_tried(tmp_path, slack):
    code, lines = ferry_check(tmp_path, {"repo": {"url": "file:///nowhere.git"}}, FERRY_BACKEND="Text")
    assert code == 1
    assert lines == ["FAIL  settings: `environments` is missing from the settings file.", "0 ok, 1 to fix"]


def test_an_unreachable_remote_is_named(tmp_path, slack):
    settings = demo_settings((tmp_path / "missing.git").as_uri())
    code, lines = ferry_check(tmp_path, settings, **good_environment(slack))
    assert code == 1
    git = line(lines, "git")
    assert git.startswith("FAIL") and "missing.git" in git
    assert "discovery" not in "\n".join(lines)  # nothing to discover without a clone


def test_a_registry_refusing_its_credentials_is_named(tmp_path, registry_auth, bare_remote, slack):
    push_charts(registry_auth.host, "charts/podinfo", ["6.5.0"], username=registry_auth.username,
                password=registry_auth.password)
    url = bare_remote(demo_files(f"{registry_auth.url}/charts"))
    settings = {**demo_settings(url),
                "registry_credentials": [{"host": registry_auth.host, "env": "LOCAL", "plain_http": True}]}
    environ = {**good_environment(slack), "GITOPS_REGISTRY_LOCAL_USERNAME": registry_auth.username,
               "GITOPS_REGISTRY_LOCAL_PASSWORD": "not-the-password"}
    code, lines = ferry_check(tmp_path, settings, **environ)
    assert code == 1
    found = line(lines, f"registry oci://{registry_auth.host}")
    assert found.startswith("FAIL") and "not-the-password" not in "\n".join(lines)
    environ["GITOPS_REGISTRY_LOCAL_PASSWORD"] = registry_auth.password
    code, lines = ferry_check(tmp_path, settings, **environ)
    assert line(lines, f"registry oci://{registry_auth.host}").startswith("ok"), lines


def test_slack_tokens_and_scopes(tmp_path, registry, charts, bare_remote):
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    narrow = FakeSlack(scopes="chat:write,users:read").start()
    try:
        environ = good_environment(narrow)
        code, lines = ferry_check(tmp_path, demo_settings(url), **environ)
        assert code == 1
        scopes = line(lines, "slack bot token")
        assert scopes.startswith("FAIL") and "files:write" in scopes and "chat:write," not in scopes
        code, lines = ferry_check(tmp_path, demo_settings(url), **{**environ, "SLACK_BOT_TOKEN": "xoxb-wrong",
                                                                   "SLACK_APP_TOKEN": "xapp-wrong"})
        assert "invalid_auth" in line(lines, "slack bot token") and line(lines, "slack bot token").startswith("FAIL")
        assert "invalid_auth" in line(lines, "slack app token")
        del environ["SLACK_APP_TOKEN"]
        code, lines = ferry_check(tmp_path, demo_settings(url), **environ)
        assert "neither SLACK_APP_TOKEN" in line(lines, "slack connection")
    finally:
        narrow.stop()


def test_a_missing_flux_token_is_named(tmp_path, registry, charts, bare_remote, slack):
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    environ = good_environment(slack)
    del environ["GITOPS_FLUX_TOKEN_PROD"]
    code, lines = ferry_check(tmp_path, demo_settings(url), **environ)
    assert code == 1
    assert [l for l in lines if l.startswith("FAIL")] == [
        "FAIL  flux token prod: GITOPS_FLUX_TOKEN_PROD (or GITOPS_FLUX_TOKEN_PROD_FILE) is not set: Flux's "
        "events for prod are refused; set it to the token of the environment's generic-hmac Provider"]



# ---- Flux Receivers: one signed call each, as after a push ------------------------------------

RECEIVER_TOKEN = "receiver-token-0123456789abcdef"


def receivers_line(lines: list, environment: str) -> str:
    return next(l for l in lines if l.split(": ")[0].endswith(f"({environment})") and "flux receiver" in l)


def test_each_flux_receiver_is_called_once_signed_and_what_is_wrong_is_named(tmp_path, registry, charts,
                                                                             bare_remote):
    from devtools.flux_receiver import FluxReceivers, signature_valid
    from tests.serving import serving
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    settings = demo_settings(url)
    with serving(FluxReceivers()) as flux, serving(FluxReceivers(status=503)) as suspended:
        hooks = {"dev": flux.add(RECEIVER_TOKEN),
                 "qa": flux.add("the Secret's other token", name="qa"),  # Ferry's token is not this one
                 "stag": flux.url + "/hook/" + "ab" * 32,  # no Receiver has this path
                 "prod": suspended.add(RECEIVER_TOKEN)}
        for env in settings["environments"]:
            env["flux_receiver"] = {"url": hooks[env["name"]]}
        environ = {f"GITOPS_FLUX_RECEIVER_TOKEN_{env.upper()}": RECEIVER_TOKEN for env in ENVIRONMENTS}
        code, lines = ferry_check(tmp_path, settings, FERRY_BACKEND="Text", **environ)
        assert code == 1
        assert receivers_line(lines, "dev") == \
            f"ok  flux receiver {flux.url}/hook/… (dev): Flux asked to reconcile (HTTP 200)"
        assert receivers_line(lines, "qa") == (
            f"FAIL  flux receiver {flux.url}/hook/… (qa): it refused the signature: GITOPS_FLUX_RECEIVER_TOKEN_QA "
            "is not the `token` of the Receiver's Secret, or the Receiver is not of type `generic-hmac`")
        assert "status.webhookPath" in receivers_line(lines, "stag") and \
            receivers_line(lines, "stag").startswith("FAIL")
        assert "suspended or not ready" in receivers_line(lines, "prod")
        assert RECEIVER_TOKEN not in "\n".join(lines) and "ab" * 32 not in "\n".join(lines)
        by_path = {c.path: c for c in flux.calls}
        assert len(flux.calls) == 3 and len(suspended.calls) == 1  # one call per Receiver
        good = by_path[hooks["dev"][len(flux.url):]]
        assert good.status == 200 and signature_valid(good.signature, good.body, RECEIVER_TOKEN)
        assert json.loads(good.body) == {"repository": url, "branch": "main", "commit": ""}


def test_a_flux_receiver_nobody_answers_or_without_its_token_is_named(tmp_path, registry, charts, bare_remote):
    from devtools.flux_receiver import FluxReceivers
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    closed = FluxReceivers()
    hook = closed.add(RECEIVER_TOKEN)
    closed.server_close()  # nothing listens on its port
    settings = demo_settings(url)
    settings["environments"][3]["flux_receiver"] = {"url": hook}
    code, lines = ferry_check(tmp_path, settings, FERRY_BACKEND="Text", GITOPS_FLUX_RECEIVER_TOKEN_PROD=RECEIVER_TOKEN)
    host = hook.split("/")[2]
    assert receivers_line(lines, "prod") == (
        f"FAIL  flux receiver http://{host}/hook/… (prod): no answer (ConnectionError): is "
        f"notification-controller's webhook-receiver Service reachable from Ferry at {host}?")
    code, lines = ferry_check(tmp_path, settings, FERRY_BACKEND="Text")
    assert code == 1 and lines[0].startswith("FAIL  settings: `environments[3].flux_receiver` is set but "
                                             "GITOPS_FLUX_RECEIVER_TOKEN_PROD (or _FILE) is not")
