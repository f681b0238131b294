"""A slow Git remote holds only the commands that need it (issue 19, item 4): through a real
Errbot with config.py's command threads, the Flux repository served over smart HTTP by a server
that takes SLOW seconds for every request (under git's timeout). While a `!deploy` waits for it,
`!pending`, `!locks` and `!help` answer at once; the deploy lands once the remote answers."""
from __future__ import annotations

import time
from pathlib import Path

from devtools.fluxrepo import demo_files, demo_settings
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_path
from tests.git_http_server import git_http  # noqa: F401 (fixture)
from tests.test_slow_dependency import command_threads

SLOW = 8.0


def test_a_slow_git_remote_holds_only_the_commands_that_need_it(tmp_path, registry, charts, bare_remote,
                                                                  git_http, monkeypatch):  # noqa: F811
    bare = remote_path(bare_remote(demo_files(f"{registry.url}/charts")))
    server = git_http(bare.parent, token="slow-remote-token")  # a push needs a user, as on a forge
    monkeypatch.setenv("GITOPS_GIT_TOKEN", "slow-remote-token")
    url = server.url(bare.name)
    with started_bot(tmp_path, demo_settings(url), BOT_ASYNC_POOLSIZE=command_threads()) as bot:
        assert "apps across" in ask(bot, "!versions")[0]  # cloned, fetched
        time.sleep(5.5)  # past the fetch interval: the deploy fetches first
        server.delay, asked = SLOW, len(server.paths)
        started = time.monotonic()
        bot.push_message("!deploy podinfo 6.5.3 to qa")
        while len(server.paths) == asked:  # git is talking to the slow remote: the wait is real
            assert time.monotonic() - started < 10, "the deploy never asked the remote"
            time.sleep(0.05)
        for command in ("!pending", "!locks", "!help"):
            bot.push_message(command)
        said = []
        while not any(text.startswith("Deployed podinfo") for _, text in said):
            said.append((time.monotonic() - started, bot.pop_message(timeout=SLOW * 6)))
    quick = [at for at, text in said if "No change is waiting for approval" in text
             or "Nothing is locked or frozen" in text or ("!deploy" in text and "!versions" in text)]
    deployed = next(at for at, text in said if text.startswith("Deployed podinfo"))
    assert len(quick) == 3, said
    assert max(quick) < SLOW < deployed, said  # none of them waited for the slow remote
    assert 'version: "6.5.3"' in remote_file(f"file://{bare}", "apps/qa/podinfo-values.yaml")
