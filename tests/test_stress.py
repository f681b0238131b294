"""Load: 100 changing commands at once through Errbot's test backend while another process pushes
unrelated commits to the same remote every 50 ms. Nothing is lost, nothing is forced, the history
stays linear, and every command gets exactly one final answer.

Nothing here depends on how fast the machine is: the commands go in two halves, the second only
once the other process has landed a commit after one of Ferry's, so its commits are always among
Ferry's (under load it could lose every race for the branch until the load was over); the registry
gets a generous timeout (this test loads Git, not the registry: at the default 5 s, one slow answer
on a busy machine would fail every command queued behind it); the time limits only stop a hang."""
from __future__ import annotations

import queue
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from devtools.fluxrepo import demo_settings, fleet_apps, fleet_files
from tests.ferrybot import started_bot
from tests.fixtures_git import git, remote_path
from tests.races import all_at_once

ENVS = ("dev", "qa", "stag")  # prod needs approval by default: not for load
DISTINCT = 80  # commands to distinct (app, env) pairs
SAME = 20  # commands to two shared (app, env) pairs, ten each
HANG = 600  # seconds: only a hang guard; a loaded 2-core machine needs about 15 s
VERSIONS = {"podinfo": ("6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.6.0"),
            "redis": ("18.0.0", "18.1.0", "19.0.0"), "cert-manager": ("v1.14.0", "v1.15.0")}

PUSHER = textwrap.dedent("""
    import os, subprocess, sys, time
    url, clone, out, stop = sys.argv[1:5]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Other",
               GIT_AUTHOR_EMAIL="other@example.test", GIT_COMMITTER_NAME="Other",
               GIT_COMMITTER_EMAIL="other@example.test")
    def g(*a, check=True):
        return subprocess.run(["git", "-C", clone, *a], env=env, capture_output=True, text=True,
                              check=check)
    subprocess.run(["git", "clone", "-q", url, clone], env=env, check=True)
    n = 0
    with open(out, "a") as log:
        while not os.path.exists(stop):
            n += 1
            os.makedirs(os.path.join(clone, "docs"), exist_ok=True)
            with open(os.path.join(clone, "docs", f"note-{n}.md"), "w") as f:
                f.write(f"note {n}\\n")
            g("add", "-A")
            g("commit", "-q", "-m", f"external note {n}")
            while g("push", "-q", "origin", "HEAD:main", check=False).returncode:
                g("pull", "-q", "--rebase", "origin", "main", check=False)  # retried until it lands
            log.write(g("rev-parse", "HEAD").stdout.strip() + "\\n")
            log.flush()
            time.sleep(0.05)
""")


@pytest.fixture
def fleet(registry, charts, bare_remote):
    apps = fleet_apps(DISTINCT + 2, VERSIONS)
    pins = {(name, env): VERSIONS[chart][0] for name, _, chart in apps
            for env in ("dev", "qa", "stag", "prod")}
    return apps, bare_remote(fleet_files(f"{registry.url}/charts", apps, pins))


@pytest.fixture
def loaded_bot(tmp_path, fleet):
    # The registry's default 5 s timeout is for a live registry; this one shares a busy machine,
    # where a command may wait longer than the default 5 s for the registry's turn.
    settings = {**demo_settings(fleet[1]), "registry_timeout": 120, "registry_busy_seconds": 120}
    with started_bot(tmp_path, settings) as bot:
        yield bot


def test_100_concurrent_commands_while_someone_else_pushes_every_50ms(loaded_bot, fleet, tmp_path):
    apps, url = fleet
    bare = remote_path(url)
    seed = git("--git-dir", str(bare), "rev-parse", "main")
    loaded_bot.push_message("!versions app-0000")  # clone once before the load
    loaded_bot.pop_message(timeout=60)

    commands = []  # (app, env, version)
    for i, (name, _, chart) in enumerate(apps[:DISTINCT]):
        commands.append((name, ENVS[i % len(ENVS)], VERSIONS[chart][1]))
    for i in range(SAME):  # two contested pins: app-0080 (podinfo?) and app-0081, dev
        name, _, chart = apps[DISTINCT + i % 2]
        versions = VERSIONS[chart]
        commands.append((name, "dev", versions[1 + i % (len(versions) - 1)]))

    git("--git-dir", str(bare), "config", "core.logAllRefUpdates", "always")  # a reflog to audit
    notes, stop = tmp_path / "external.txt", tmp_path / "stop"
    pusher = subprocess.Popen([sys.executable, "-c", PUSHER, url, str(tmp_path / "other"),
                               str(notes), str(stop)])

    def pushed() -> int:
        return len(notes.read_text().split()) if notes.exists() else 0

    first, second = commands[::2], commands[1::2]  # each half: distinct and contested pins
    try:
        waited = time.monotonic()
        while pushed() < 2:  # it is pushing
            assert time.monotonic() - waited < HANG and pusher.poll() is None
            time.sleep(0.05)
        before = pushed()
        started = time.monotonic()
        for app, env, version in first:
            loaded_bot.push_message(f"!deploy {app} {version} to {env}")
        replies = []
        finals = Counter()
        mark, second_sent = None, False  # external pushes counted once Ferry had landed a commit
        while sum(finals.values()) < len(commands):
            assert time.monotonic() - started < HANG, f"only {sum(finals.values())} answers"
            if not second_sent:
                if mark is None and any(r.startswith("Deployed") for r in replies):
                    mark = pushed()
                if mark is not None and pushed() > mark:  # an external commit after one of Ferry's
                    for app, env, version in second:
                        loaded_bot.push_message(f"!deploy {app} {version} to {env}")
                    second_sent = True
            try:
                text = loaded_bot.pop_message(timeout=5 if second_sent else 0.1)
            except queue.Empty:
                continue
            replies.append(text)
            if not text.startswith("Deploying"):
                found = re.search(r"app-\d{4}", text)
                assert found, f"a final answer that names no app: {text!r}"
                finals[found.group(0)] += 1
        elapsed = time.monotonic() - started
    finally:
        stop.touch()
        pusher.wait(timeout=HANG)
    # exactly one final answer per command, matched by app; if not, which app got none or two
    expected = Counter(app for app, _, _ in commands)
    try:
        extra = loaded_bot.pop_message(timeout=1)
    except queue.Empty:
        extra = None
    assert extra is None and finals == expected, (
        f"extra message after {len(commands)} finals: {extra!r}; no final answer: "
        f"{sorted(set(expected) - set(finals))}; "
        f"answered more often than asked: {dict(finals - expected)}; answers of those: "
        f"{[r for r in replies if set(re.findall(r'app-[0-9]{4}', r)) & set(finals - expected)]}")
    assert not [r for r in replies if "Traceback" in r or "Sorry, that failed" in r]

    log = git("--git-dir", str(bare), "log", "--format=%H %P|%s", "main").splitlines()
    shas = [line.split()[0] for line in log]
    # linear: every commit has one parent (the seed none), and the seed is still the root
    assert all(len(line.split("|")[0].split()) == 2 for line in log[:-1])
    assert shas[-1] == seed
    # every external commit is still there (no force-push lost one)
    external = notes.read_text().split()
    print(f"\nload {elapsed:.1f} s, external during it {len(external) - before}")
    assert len(external) - before >= 1  # it pushed during the load
    assert set(external) <= set(shas)
    # ... between Ferry's commits (the log is newest first)
    ferry_at = [i for i, line in enumerate(log) if line.split("|", 1)[1].startswith("deploy ")]
    assert any(ferry_at[0] < shas.index(sha) < ferry_at[-1] for sha in external[before:])
    # no force-push: every update of main the remote recorded moved it forward
    reflog = git("--git-dir", str(bare), "reflog", "show", "--format=%H", "refs/heads/main").split()
    assert len(reflog) >= len(external) - before
    for newer, older in zip(reflog, reflog[1:]):
        subprocess.run(["git", "--git-dir", str(bare), "merge-base", "--is-ancestor", older, newer],
                       check=True)
    # every accepted change is on the remote exactly once
    deployed = [r for r in replies if r.startswith("Deployed")]
    named = [re.search(r"commit ([0-9a-f]{7,})", r).group(1) for r in deployed]
    ferry_commits = [line.split()[0] for line in log if line.split("|", 1)[1].startswith("deploy ")]
    assert len(ferry_commits) == len(deployed) == len(set(named))
    assert {c[:10] for c in ferry_commits} == {n[:10] for n in named}
    # every distinct-app command landed (or said the branch kept moving; never silently lost)
    landed = {re.search(r"app-\d{4}", r).group(0) for r in deployed}
    refused = [r for r in replies if "kept moving" in r]
    assert len(landed & {a for a, _, _ in commands[:DISTINCT]}) + len(refused) >= DISTINCT
    print(f"\n{len(commands)} commands in {elapsed:.1f} s: {len(deployed)} deployed, "
          f"{len(refused)} kept-moving, {len(external)} external commits, {len(reflog)} ref updates")


def test_replies_sent_at_once_each_keep_their_own_text(loaded_bot):
    """Errbot's pool threads reply at once; each reply must reach chat with its own text. Errbot's
    test backend converts them with one Markdown converter that keeps its text on itself: without
    ``devtools.serial_replies``, one reply came out with another's text (the stress test's extra
    message, the benchmark's command with no answer), empty, or raised."""
    backend, to = loaded_bot.bot, loaded_bot.bot.build_identifier("@alice")
    texts = [f"Deployed `app-{i:04d}` **6.5.{i}** to dev (commit `{i:07x}`)." for i in range(8)]
    expected = {}
    for text in texts:
        backend.send(to, text)
        expected[text] = loaded_bot.pop_message(timeout=10)
    errors = all_at_once(lambda text: backend.send(to, text), texts)
    said = Counter()
    while True:
        try:
            said[loaded_bot.pop_message(timeout=1)] += 1
        except queue.Empty:
            break
    assert not errors and said == Counter({expected[t]: 100 for t in texts}), (
        errors[:3], [(m, n) for m, n in said.items() if n != 100][:5])
