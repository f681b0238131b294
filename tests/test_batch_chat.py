"""Deploys sent at once through a real Errbot (its test backend) against a real bare remote and a
real registry: the deploys queued behind a held push go out in one push, and each command's
answer names its own commit (the one whose trailers say its app, version and environment)."""
from __future__ import annotations

import queue
import re

import pytest

from devtools.fluxrepo import demo_settings, fleet_apps, fleet_files
from tests.ferrybot import started_bot
from tests.fixtures_git import git, remote_log, remote_path
from tests.held_push import Gate, wait_for

VERSIONS = {"podinfo": ("6.5.0", "6.5.1"), "redis": ("18.0.0", "18.1.0"), "cert-manager": ("v1.14.0", "v1.15.0")}
APPS = 6


@pytest.fixture
def fleet(registry, charts, bare_remote):
    apps = fleet_apps(APPS, VERSIONS)
    pins = {(name, env): VERSIONS[chart][0] for name, _, chart in apps for env in ("dev", "qa", "stag", "prod")}
    return apps, bare_remote(fleet_files(f"{registry.url}/charts", apps, pins))


def finals(bot, count: int) -> list:
    """The next ``count`` final answers (the "Deploying …" notes left out)."""
    answers = []
    while len(answers) < count:
        text = bot.pop_message(timeout=60)
        if not text.startswith("Deploying"):
            answers.append(text)
    return answers


def test_deploys_sent_at_once_are_answered_each_with_its_own_commit(fleet, tmp_path):
    apps, url = fleet
    settings = {**demo_settings(url), "registry_timeout": 60, "registry_busy_seconds": 60}
    gate, seed = Gate(url, tmp_path / "gate"), remote_log(url)[0]
    with started_bot(tmp_path, settings) as bot:
        bot.push_message("!versions app-0000")  # cloned before the deploys
        bot.pop_message(timeout=60)
        first, *others = [(app, VERSIONS[chart][1]) for app, _, chart in apps]
        bot.push_message(f"!deploy {first[0]} {first[1]} to dev")
        gate.wait_reached()
        for app, version in others:
            bot.push_message(f"!deploy {app} {version} to dev")
        ws = next(iter(bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops.workspaces.values()))
        wait_for(lambda: ws.waiting == len(others))
        gate.open()
        answers = finals(bot, APPS)
        with pytest.raises(queue.Empty):
            bot.pop_message(timeout=0.5)

    assert gate.pushes() == [1, APPS - 1]
    history = remote_log(url)
    assert history[-1] == seed and len(history) == APPS + 1
    named = {}
    for text in answers:
        assert text.startswith("Deployed"), text
        app = re.search(r"app-\d{4}", text).group(0)
        sha = re.search(r"commit ([0-9a-f]{7,})", text).group(1)
        named[app] = next(c for c in history if c.startswith(sha))
    assert sorted(named) == sorted(app for app, _ in [first, *others])
    assert sorted(named.values()) == sorted(history[:-1])  # one commit each, each answer its own
    versions = dict([first, *others])
    for app, sha in named.items():
        lines = git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%b", sha).splitlines()
        assert {f"App: {app}", f"To-Version: {versions[app]}", "Environment: dev"} <= set(lines)
