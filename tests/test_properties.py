"""Bad input at scale (Hypothesis): generated arguments for every command, through the real plugins
of one long-lived Errbot test bot, and generated Flux webhook bodies, signed and unsigned. Never a
stack trace in chat, never a change to Git, always a one-line answer."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from errbot.backends.base import Message
from errbot.backends.test import TestBot as ErrbotTestBot
from hypothesis import HealthCheck, given, settings, strategies as st
from ruamel.yaml import YAML

from devtools.fluxrepo import demo_files, demo_settings, seed_remote
from devtools.serial_replies import one_reply_at_a_time
from gitops.errors import EventRefused
from gitops.feedback.events import sign
from tests.fixtures_git import remote_tip
from tests.flux_events import DOCUMENTED

PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
EXAMPLES = int(os.environ.get("FERRY_PROPERTY_EXAMPLES", "300"))  # per command
FLUX_TOKEN = "qa-flux-token"

# command -> Errbot plugin holding it
COMMANDS = {"deploy": "FerryDeploy", "promote": "FerryPromote", "rollback": "FerryRollback",
            "versions": "FerryVersions", "diff": "FerryVersions", "audit": "FerryVersions",
            "approve": "FerryApprovals", "reject": "FerryApprovals", "pending": "FerryApprovals",
            "lock": "FerryLocks", "unlock": "FerryLocks", "locks": "FerryLocks"}
CHANGING = {"deploy", "promote", "rollback", "approve", "reject", "lock", "unlock"}
# What only a command that did what was asked starts with (checked separately: never a commit here).
DONE = ("Deployed", "Promoted", "Rolled back", "Dry run", "Locked", "Unlocked", "Rejected")

WORDS = ["podinfo", "PODINFO", "redis", "cert-manager", "nginx", "dev", "qa", "stag", "stage",
         "prod", "production", "staging", "to", "from", "on", "in", "@", "6.5.3", "6.5.2", "v1.15.0",
         "9.9.9", "6.5.3-rc.1", ">=1.0.0", "1.x", "latest", "--dry-run", "--force", "--", "-",
         "abcdef", "3f9a1c", "0", "-1", "99999999999", "`", "*", "../../etc/passwd", "..", "~",
         "\u202e", "é", "日本", "🚀", "'", '"', "\\", "%s", "{}", "\x00", "\t", "<b>", "&amp;"]
word = st.one_of(st.sampled_from(WORDS), st.text(max_size=12),
                 st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")), max_size=4),
                 st.from_regex(r"[a-z]{1,8}@[0-9.]{1,8}", fullmatch=True))
arguments = st.one_of(
    st.lists(word, max_size=8).map(" ".join),
    st.text(max_size=300),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join).map(lambda s: s * 50),
)


@pytest.fixture(scope="module")
def world(registry, charts, tmp_path_factory):
    root = tmp_path_factory.mktemp("properties")
    url = seed_remote(root, demo_files(f"{registry.url}/charts"))
    path = root / "ferry.yaml"
    # Every environment refuses every change from everyone: a generated command that happens to
    # be valid still cannot write, so "never a change to Git" holds for every input.
    raw = demo_settings(url)
    for env in raw["environments"]:
        env["policy"] = {"deploy": ["@nobody"], "promote": ["@nobody"], "rollback": ["@nobody"]}
    YAML().dump({**raw, "data_dir": str(root / "gitops")}, path)
    old = os.environ.get("GITOPS_FLUX_TOKEN_QA")
    os.environ["GITOPS_FLUX_TOKEN_QA"] = FLUX_TOKEN
    bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
        "GITOPS_CONFIG": str(path), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
        "CORE_PLUGINS": ("ACLs", "Plugins", "Utils")})
    bot.start(timeout=10)
    one_reply_at_a_time(bot)  # see devtools/serial_replies.py
    try:
        yield bot, url
    finally:
        bot.stop()
        if old is None:
            os.environ.pop("GITOPS_FLUX_TOKEN_QA", None)
        else:
            os.environ["GITOPS_FLUX_TOKEN_QA"] = old


def run_command(bot, command: str, args: str) -> list[str]:
    plugin = bot.bot.plugin_manager.get_plugin_obj_by_name(COMMANDS[command])
    msg = Message(f"!{command} {args}", frm=bot.bot.build_identifier("@alice"),
                  to=bot.bot.bot_identifier)
    result = getattr(plugin, command)(msg, args)
    return [str(r) for r in (result if not isinstance(result, str) else [result])]


def check_answers(command: str, args: str, answers: list[str]) -> None:
    assert answers, f"no answer to !{command} {args!r}"
    for text in answers:
        assert "Traceback" not in text and "Sorry, that failed" not in text, (command, args, text)
    final = answers[-1]
    assert not final.startswith(DONE[:4]) or final.startswith("Dry run"), (command, args, final)
    if command in CHANGING and not final.startswith("Dry run"):
        assert len(answers) == 1, (command, args, answers)
        assert final.strip() and "\n" not in final.strip(), (command, args, final)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_any_arguments_get_a_clear_answer_and_change_nothing(world, command):
    bot, url = world
    tip = remote_tip(url)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(args=arguments)
    def prop(args):
        check_answers(command, args, run_command(bot, command, args))

    prop()
    assert remote_tip(url) == tip


# ---- Flux webhook bodies ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
FIELDS = sorted(DOCUMENTED)
event_like = st.fixed_dictionaries({}, optional={
    **{k: json_values for k in FIELDS},
    "involvedObject": st.fixed_dictionaries({}, optional={
        "kind": st.sampled_from(["HelmRelease", "Kustomization", "", "helmrelease"]) | json_values,
        "name": st.sampled_from(["podinfo", "redis", "cert-manager", "x"]) | json_values,
        "namespace": st.sampled_from(["podinfo", "flux-system", ""]) | json_values}),
    "reason": st.sampled_from(["UpgradeSucceeded", "UpgradeFailed", "InstallSucceeded", "x"]) | json_values,
    "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "not a time", "9999-99-99T99:99:99Z"])
    | json_values,
    "metadata": st.dictionaries(st.sampled_from(["revision", "helm.toolkit.fluxcd.io/revision", "x"]),
                                json_values, max_size=3) | json_values,
})
bodies = st.one_of(
    st.binary(max_size=2000),
    event_like.map(lambda d: json.dumps(d).encode()),
    event_like.map(lambda d: json.dumps({**DOCUMENTED, **d}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=EXAMPLES * 3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=bodies, signature=st.sampled_from(["valid", "none", "wrong", "garbage"]),
       env=st.sampled_from(["qa", "qa", "dev"]))
def test_any_flux_body_is_refused_or_accepted_with_one_line(world, body, signature, env):
    bot, url = world
    tip = remote_tip(url)
    header = {"valid": sign(body, FLUX_TOKEN), "none": None, "wrong": sign(body, "other"),
              "garbage": "sha256=\x00zz"}[signature]
    flux = bot.bot.plugin_manager.get_plugin_obj_by_name("FerryFlux")
    try:
        received = flux.feedback.receive(env, body, header)
    except EventRefused as e:
        message = str(e)
        assert message.strip() and "\n" not in message.strip()
        assert 400 <= e.status < 500
    else:
        assert env == "qa" and signature == "valid"
        assert received.ignored is None or "\n" not in str(received.ignored)
    assert remote_tip(url) == tip
