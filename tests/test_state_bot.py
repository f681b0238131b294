"""The real bot's state under load, then a restart: admins locking, people approving and rejecting
in chat while Prometheus scrapes ``/metrics`` and Flux posts events to ``/flux/dev``, all at once
(Errbot's thread pool and Ferry's webserver threads); after a restart every record reads back as
written. A real Errbot, a real bare remote and registry, real HTTP."""
import queue

import pytest
import requests
from errbot.backends.base import Message
from errbot.backends.test import TestPerson

from devtools.fluxrepo import demo_files, demo_settings
from devtools.registry import free_port
from tests.ferrybot import start_bot
from tests.fixtures_git import remote_log
from tests.flux_events import encode, flux_event, signed
from tests.races import all_at_once
from tests.serving import answering

TOKEN = "flux-dev-token-7c1"
CORE_PLUGINS = ("ACLs", "Help", "Health", "Plugins", "Utils", "Webserver")


@pytest.fixture
def fleet(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def bot_on(tmp_path, fleet, data_dir):
    raw = demo_settings(fleet)
    for env in raw["environments"]:
        if env["name"] == "prod":
            env["policy"] = {"approval": {"approvers": ["@bob", "@carol"]}}
    return start_bot(tmp_path, raw, STORAGE="FerryShelf", BOT_DATA_DIR=str(data_dir), CORE_PLUGINS=CORE_PLUGINS)


def say(bot, user: str, text: str) -> None:
    """``text`` in a DM from ``user``; its reply is popped later (replies come in any order)."""
    backend = bot.bot
    msg = Message(text)
    msg.frm, msg.to = TestPerson(user), backend.bot_identifier
    backend.callback_message(msg)


def ask(bot, user: str, text: str) -> str:
    say(bot, user, text)
    answer = bot.pop_message(timeout=30)
    with pytest.raises(queue.Empty):
        bot.pop_message(timeout=0.3)
    return answer.replace("`", "")


def test_the_bot_locking_approving_scraped_and_told_by_flux_at_once_keeps_every_record(
        tmp_path, fleet, monkeypatch):
    port = free_port()
    monkeypatch.setenv("FERRY_WEBSERVER_PORT", str(port))
    monkeypatch.setenv("FERRY_WEBSERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_DEV", TOKEN)
    base, data_dir = f"http://127.0.0.1:{port}", tmp_path / "errbot"
    data_dir.mkdir()
    bot = bot_on(tmp_path, fleet, data_dir)
    try:
        assert answering(f"{base}/ferry/health").status_code == 200
        ids = []
        for user in ("@dave", "@erin"):
            for version in ("6.5.1", "6.5.2", "6.5.3"):
                asked = ask(bot, user, f"!deploy podinfo {version} to prod")
                ids.append(asked.split("is change ")[1].split(",")[0])
        commands, statuses, bodies = [], [], []

        def chat():
            for n in range(6):
                commands.append(("@alice", f"!lock dev podinfo r{n}"))
                commands.append(("@alice", f"!lock qa redis r{n}"))
                commands.append(("@bob", f"!reject {ids[n]} not now" if n < 5 else f"!approve {ids[n]}"))
                commands.append(("@alice", "!unlock qa redis"))
            for user, text in commands:
                say(bot, user, text)

        def scrape():
            for _ in range(100):
                response = requests.get(f"{base}/metrics", timeout=30)
                statuses.append(response.status_code)
                assert b"ferry_" in response.content

        def post(n):
            def work():
                for i in range(60):
                    body = encode(flux_event(message=f"Helm upgrade {n}.{i} succeeded", version="6.5.3"))
                    statuses.append(requests.post(f"{base}/flux/dev", data=body, headers=signed(body, TOKEN),
                                                  timeout=30).status_code)
                    bodies.append(body)
            return work

        assert all_at_once(lambda work: work(), [chat, scrape, scrape, post(0), post(1)], times=1) == []
        replies = [bot.pop_message(timeout=60) for _ in commands]
        assert not [r for r in replies if "Sorry" in r or "Traceback" in r], replies
        assert sum(r.startswith("Rejected change") for r in replies) == 5
        assert sum(r.replace("`", "").startswith("Deployed podinfo 6.5.0 → 6.5.3 in prod") for r in replies) == 1
        assert len(statuses) == 320 and set(statuses) == {200}, sorted(set(statuses))
        # Errbot runs commands in a pool of threads: which of alice's locks came last is the
        # pool's to say, not the order she sent them in; the restart must keep what was written.
        written = ask(bot, "@alice", "!locks")
        assert "dev/podinfo  @alice" in written and any(f"r{n}" in written for n in range(6))
    finally:
        bot.stop()

    bot = bot_on(tmp_path, fleet, data_dir)  # the restart: every record as written
    try:
        assert ask(bot, "@alice", "!locks") == written
        assert ask(bot, "@bob", "!pending") == "No change is waiting for approval."
        for change_id in ids[:5]:
            assert ask(bot, "@carol", f"!approve {change_id}") == f"Change {change_id} was already rejected by @bob."
        assert ask(bot, "@carol", f"!approve {ids[5]}") == f"Change {ids[5]} was already approved by @bob."
        assert len(remote_log(fleet)) == 2
        assert answering(f"{base}/ferry/health").status_code == 200
        for body in bodies[::20]:  # each accepted once: a replay is refused after the restart too
            again = requests.post(f"{base}/flux/dev", data=body, headers=signed(body, TOKEN), timeout=30)
            assert again.status_code == 409, again.text
    finally:
        bot.stop()
