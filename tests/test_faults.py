"""Faults, through the real bot (Errbot's test backend) or the real process: the registry and the Git
remote failing in each way they fail, the bot killed between commit and push, a broken clone, a
broken settings file. Each answer is one line, and nothing is lost or half-done."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from devtools.artifacts import push_charts
from devtools.fluxrepo import demo_files, demo_settings
from devtools.registry import LocalRegistry, free_port
from tests.ferrybot import PLUGINS, ask, started_bot
from tests.fixtures_git import install_hook, remote_file, remote_log, remote_path, remote_tip

ROOT = Path(__file__).resolve().parent.parent
QA_FILE = "apps/qa/podinfo-values.yaml"




def final(bot, command, timeout=30):
    """All the replies to a command (an intent line may come first); returns the last."""
    bot.push_message(command)
    replies = [bot.pop_message(timeout=timeout)]
    while True:
        try:
            replies.append(bot.pop_message(timeout=0.5))
        except queue.Empty:
            break
    assert len(replies) <= 2 and all(not r.startswith(("Deploying",)) for r in replies[1:])
    return replies[-1]


def one_line(text: str) -> str:
    assert "\n" not in text.strip() and "Traceback" not in text and "Sorry, that failed" not in text
    return text


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


# ---- the registry ------------------------------------------------------------------------------

class _Faulty(BaseHTTPRequestHandler):
    mode = "500"

    def do_GET(self):
        if self.mode == "slow":
            time.sleep(3)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@contextmanager
def faulty_registry(mode):
    handler = type("Handler", (_Faulty,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def registry_host(mode):
    if mode == "refused":
        yield f"127.0.0.1:{free_port()}"
    else:
        with faulty_registry(mode) as host:
            yield host


@pytest.mark.parametrize("mode", ["refused", "500", "slow"])
def test_a_registry_down_answers_one_line_and_changes_nothing(tmp_path, fleet_url, mode):
    with registry_host(mode) as host:
        settings = {**demo_settings(fleet_url, registry=f"oci://{host}/charts"), "registry_timeout": 1}
        with started_bot(tmp_path, settings) as bot:
            before = remote_tip(fleet_url)
            started = time.monotonic()
            text = one_line(ask(bot, "!deploy podinfo 6.5.3 to qa")[0])
            assert time.monotonic() - started < 10
            assert host in text and "6.5.3" not in remote_file(fleet_url, QA_FILE)
            assert remote_tip(fleet_url) == before
            overview = ask(bot, "!versions")[0]  # reading still works, with a note
            assert "podinfo" in overview and host in overview


def test_registry_auth_lost_mid_session(tmp_path, bare_remote, monkeypatch):
    port = free_port()
    first = LocalRegistry(tmp_path / "reg1", auth=True, port=port).start()
    try:
        for chart, versions in {"podinfo": ["6.5.0", "6.5.1", "6.5.2", "6.5.3"],
                                "redis": ["18.0.0", "18.1.0", "19.0.0"],
                                "cert-manager": ["v1.14.0", "v1.15.0"]}.items():
            push_charts(first.host, f"charts/{chart}", versions, username=first.username,
                        password=first.password)
        url = bare_remote(demo_files(f"{first.url}/charts"))
        monkeypatch.setenv("GITOPS_REGISTRY_USERNAME", first.username)
        monkeypatch.setenv("GITOPS_REGISTRY_PASSWORD", first.password)
        with started_bot(tmp_path, demo_settings(url, registry=f"{first.url}/charts")) as bot:
            intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
            assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
            tip = remote_tip(url)
            # the registry's password changes under the running bot (a rotated secret)
            first.stop()
            first = LocalRegistry(tmp_path / "reg2", auth=True, port=port, password="rotated").start()
            bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops.registry.invalidate()
            text = one_line(ask(bot, "!deploy podinfo 6.5.1 to stag")[0])
            assert "401" in text or "credentials" in text.lower() or "GITOPS_REGISTRY" in text
            assert first.password not in text and "ferry-registry-secret" not in text
            assert remote_tip(url) == tip
    finally:
        first.stop()


# ---- the Git remote ----------------------------------------------------------------------------

def test_an_unreachable_remote_answers_one_line_then_recovers(tmp_path, fleet_url):
    with started_bot(tmp_path, demo_settings(fleet_url)) as bot:
        ask(bot, "!versions")
        bare = remote_path(fleet_url)
        bare.rename(bare.with_suffix(".gone"))
        try:
            text = one_line(final(bot, "!deploy podinfo 6.5.3 to qa"))
            assert "Deployed" not in text
        finally:
            bare.with_suffix(".gone").rename(bare)
        intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
        assert len(remote_log(fleet_url)) == 2


class _Refusing(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="ferry-test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_remote_refusing_auth_answers_one_line(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("GITOPS_GIT_TOKEN", "tok-secret-123")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/flux.git"
        with started_bot(tmp_path, demo_settings(url)) as bot:
            for command in ("!versions", "!deploy podinfo 6.5.3 to qa"):
                text = one_line(ask(bot, command)[0])
                assert "127.0.0.1" in text and "tok-secret-123" not in text
    finally:
        server.shutdown()
        server.server_close()


def test_a_protected_branch_rejecting_every_push(tmp_path, fleet_url):
    install_hook(fleet_url, "pre-receive", "#!/bin/sh\necho 'main is protected'\nexit 1\n")
    with started_bot(tmp_path, demo_settings(fleet_url)) as bot:
        before = remote_tip(fleet_url)
        intent, text = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        one_line(text)
        assert "refused the push" in text and "main is protected" in text
        assert remote_tip(fleet_url) == before
        # the clone is clean: the refused commit is not what the bot now reads
        overview = ask(bot, "!versions podinfo")[0]
        assert "6.5.2" in overview
        text = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)[1]
        assert "refused the push" in text


@pytest.mark.parametrize("damage", ["deleted", "corrupted"])
def test_a_broken_clone_is_cloned_again_by_the_next_command(tmp_path, fleet_url, damage):
    with started_bot(tmp_path, demo_settings(fleet_url)) as bot:
        ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        clone = next((tmp_path / "gitops" / "repos").iterdir())
        if damage == "deleted":
            shutil.rmtree(clone)
        else:
            for obj in (clone / ".git" / "objects").rglob("*"):
                if obj.is_file():
                    obj.write_bytes(b"garbage")
            (clone / ".git" / "HEAD").write_text("garbage\n")
        result = final(bot, "!deploy podinfo 6.5.2 to stag", timeout=60)
        assert result.startswith("Deployed podinfo 6.5.1 → 6.5.2 in stag"), result
        assert len(remote_log(fleet_url)) == 3
        assert "6.5.3" in ask(bot, "!versions podinfo")[0]


# ---- the process -------------------------------------------------------------------------------

CORE = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from gitops.core import GitOps
    from gitops.state.store import Store
    from gitops.feedback.waits import Feedback
    from gitops.feedback.records import ReplyTarget
    from gitops.model import Requester
    from gitops.settings import load_settings
    state = Store(sys.argv[3])
    core = GitOps(load_settings(sys.argv[2]), state=state)
    feedback = Feedback(core)
    alice = Requester("@alice", "Alice", "alice@example.test")
    def deploy(app, env, version):  # as the deploy plugin does: plan, then apply
        return core.apply(core.plan_deploy(app, env, version), alice)
    if sys.argv[4] == "propose":
        print(deploy("podinfo", "prod", "6.5.1").pending.id, flush=True)
        pushed = deploy("redis", "dev", "18.1.0")  # then waits for Flux's word
        feedback.expect(pushed, "Alice", ReplyTarget("#deploys", room=True))
    elif sys.argv[4] == "deploy":
        change = deploy("podinfo", "qa", "6.5.3")
        print(change.commit.sha if change.commit else "noop", flush=True)
    print(",".join(sorted(p.id for p in core.pending())), flush=True)
    print(",".join(sorted(f"{w.environment}/{w.app}@{w.version}" for w in feedback.pending())),
          flush=True)
    state.close()
""")


def test_killed_between_commit_and_push_recovers_without_a_duplicate(tmp_path, fleet_url):
    settings = tmp_path / "ferry.yaml"
    YAML().dump({**demo_settings(fleet_url), "data_dir": str(tmp_path / "gitops")}, settings)
    state, block, entered = tmp_path / "state.sqlite3", tmp_path / "block", tmp_path / "entered"

    def run(action, **kw):
        env = {**os.environ, "GITOPS_FLUX_TOKEN_DEV": "flux-dev-token"}
        return subprocess.Popen([sys.executable, "-c", CORE, PLUGINS, str(settings), str(state),
                                 action], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                                start_new_session=True, env=env, **kw)

    out = run("propose").communicate(timeout=60)[0].split()
    waiting = out[0]
    assert out[1:] == [waiting, "dev/redis@18.1.0"]  # an approval and a deploy waiting for Flux
    install_hook(fleet_url, "pre-receive",
                 f"#!/bin/sh\nif [ -f {block} ]; then touch {entered}; sleep 60; fi\nexit 0\n")
    block.touch()
    before = remote_tip(fleet_url)
    proc = run("deploy")
    deadline = time.monotonic() + 60
    while not entered.exists():  # the commit is made; the push is in the remote's hands
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the bot, its git push and the remote's receive-pack
    proc.wait(timeout=10)
    block.unlink()
    time.sleep(0.3)
    assert remote_tip(fleet_url) == before  # nothing half-pushed

    out = run("deploy").communicate(timeout=60)[0].split()  # restarted
    assert out[0] != "noop" and remote_tip(fleet_url) == out[0]
    assert out[1:] == [waiting, "dev/redis@18.1.0"]  # both survived the kill
    subjects = remote_log(fleet_url, fmt="%s")
    assert subjects.count("deploy podinfo 6.5.2 → 6.5.3 to qa") == 1 and len(subjects) == 3
    out = run("deploy").communicate(timeout=60)[0].split()  # again: already there, no commit
    assert out[0] == "noop" and len(remote_log(fleet_url)) == 3


def test_killed_bot_keeps_its_pending_approvals_in_errbot_storage(tmp_path, fleet_url):
    """The pending approval lives in Errbot's storage (BOT_DATA_DIR): a new bot on it sees it."""
    storage = {"BOT_DATA_DIR": str(tmp_path / "errbot"), "STORAGE": "FerryShelf"}
    with started_bot(tmp_path, demo_settings(fleet_url), **storage) as bot:
        assert "waiting for approval" in ask(bot, "!deploy podinfo 6.5.1 to prod")[0]
    with started_bot(tmp_path, demo_settings(fleet_url), **storage) as bot:
        assert "podinfo" in ask(bot, "!pending")[0]


@pytest.mark.parametrize("text, key", [
    ("repo: [\n", "not valid YAML"),
    ("repo:\n  url: file:///x.git\nenvironments:\n  - name: dev\n", "environments[0].path"),
    ("environments:\n  - {name: dev, path: apps/dev}\n", "repo"),
])
def test_a_broken_settings_file_stops_the_bot_with_the_key_and_the_reason(tmp_path, text, key):
    path = tmp_path / "ferry.yaml"
    path.write_text(text)
    env = {**os.environ, "FERRY_BACKEND": "Text", "GITOPS_CONFIG": str(path),
           "FERRY_DATA_DIR": str(tmp_path), "FERRY_ADMINS": "@demo"}
    errbot = Path(sys.executable).parent / "errbot"
    run = subprocess.run([str(errbot), "--config", str(ROOT / "config.py")], env=env, cwd=ROOT,
                         input="!versions\n", capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "Ferry cannot start" in run.stderr and key in run.stderr
    assert "Traceback" not in run.stderr


def test_the_real_bot_killed_keeps_its_pending_approval(tmp_path, fleet_url):
    """SIGKILL the real errbot process (no shutdown, no storage close) right after two changes
    were held for approval: the restarted bot still lists both."""
    import queue
    import re
    import threading

    settings = tmp_path / "ferry.yaml"
    YAML().dump({**demo_settings(fleet_url), "data_dir": str(tmp_path / "gitops")}, settings)
    (tmp_path / "errbot").mkdir()
    root = Path(PLUGINS).parent
    env = {**os.environ, "FERRY_BACKEND": "Text", "GITOPS_CONFIG": str(settings),
           "FERRY_ADMINS": "@demo", "FERRY_DATA_DIR": str(tmp_path / "errbot"),
           "FERRY_LOG_FILE": str(tmp_path / "ferry.log"), "PYTHONUNBUFFERED": "1"}

    def start():
        proc = subprocess.Popen([str(Path(sys.executable).parent / "errbot"), "--config",
                                 str(root / "config.py")], cwd=root, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        return proc, lines

    def say(proc, lines, text, pattern, timeout=60):
        proc.stdin.write(text + "\n")
        proc.stdin.flush()
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                line = re.sub(r"\x1b\[[0-9;]*m", "", lines.get(timeout=1))
            except queue.Empty:
                continue
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no {pattern!r} from the bot within {timeout} s: {''.join(seen)[-2000:]}")

    proc, lines = start()
    try:  # the second request rewrites a stored record: that is what a crash used to lose
        first = say(proc, lines, "!deploy podinfo 6.5.1 to prod", r"is change `?([0-9a-f]{10})")[1]
        second = say(proc, lines, "!deploy redis 18.1.0 to prod", r"is change `?([0-9a-f]{10})")[1]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    proc, lines = start()
    try:
        say(proc, lines, "!pending", re.escape(first))
        say(proc, lines, "", re.escape(second), timeout=10)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(remote_log(fleet_url)) == 1  # held for approval: nothing pushed
