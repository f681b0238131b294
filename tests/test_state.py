"""Ferry's state file under load and under kill -9: many threads locking, approving, scraping the
metrics and posting Flux events at once, then a restart; a process killed in a loop during
approvals; and the shelf an older Ferry wrote, imported once at the first start of the bot.
Real parts: SQLite, a bare Git remote, the registry, a real Errbot."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.core import STATE_FILE, GitOps
from gitops.errors import ApprovalRefused, ReplayedEvent
from gitops.feedback.events import sign
from gitops.feedback.waits import Feedback
from gitops.guard import approvals
from gitops.guard.approvals import Guard
from gitops.identity import Release
from gitops.model import Requester
from gitops.settings import parse_settings
from gitops.state.store import Records, Store
from tests.fixtures_git import remote_log, remote_tip
from tests.flux_events import encode, flux_event
from tests.races import all_at_once
from tests.test_guard import Chat, plain

PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
TOKEN = "flux-dev-token"
BOB, CAROL = Requester("U0BOB", "Ada Admin"), Requester("U0CAROL", "Ada Admin")


@pytest.fixture
def url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def settings_for(url, tmp_path):
    return parse_settings({**demo_settings(url), "data_dir": str(tmp_path / "data")},
                          {"GITOPS_FLUX_TOKEN_DEV": TOKEN})


def test_locking_approving_scraping_and_flux_events_at_once_then_a_restart(url, tmp_path):
    settings = settings_for(url, tmp_path)
    core = GitOps(settings)
    feedback = Feedback(core)
    apps = ("podinfo", "redis", "cert-manager")
    rejected, approved, bodies = [], [], []

    def locker(env):
        def work():
            for n in range(15):  # the first app ends locked with reason 14, the others unlocked
                for app in apps:
                    core.lock(env, app, BOB, f"{app} {n}")
                for app in apps[1:]:
                    core.unlock(env, app)
            core.lock(env, None, CAROL, f"{env} frozen")
        return work

    def proposer(who):
        def work():
            for version in ("6.5.1", "6.5.2", "6.5.3", "6.6.0"):
                change = core.apply(core.plan_deploy("podinfo", "prod", version), who).pending
                core.reject(change.id, BOB)
                rejected.append(change.id)
        return work

    def approver():
        change = core.apply(core.plan_deploy("redis", "prod", "18.1.0"), Requester("U0DAVE")).pending
        approved.append(core.approve(change.id, CAROL))

    def scraper():
        for _ in range(40):
            assert b"ferry_" in generate_latest(core.metrics.registry)

    def poster(n):
        def work():
            for i in range(15):
                name = ("podinfo", "redis")[i % 2]
                body = encode(flux_event(name=name, namespace=name, version="1.0.0",
                                         message=f"upgrade {n}.{i} succeeded"))
                feedback.receive("dev", body, sign(body, TOKEN))
                bodies.append(body)
        return work

    workers = ([locker(env) for env in ("dev", "qa", "stag")] + [approver]
               + [proposer(Requester(f"U0P{i}")) for i in range(3)]
               + [scraper, scraper] + [poster(n) for n in range(3)])
    assert all_at_once(lambda work: work(), workers, times=1) == []
    assert len(rejected) == 12 and len(approved) == 1 and len(bodies) == 45
    core.state.close()

    core = GitOps(settings)  # the restart: everything as written
    locks = {lock.release.key: (lock.by, lock.reason) for lock in core.guard.locks()}
    expected = {f"{env}/{ns}/{app}": ("U0BOB", f"{app} 14")
                for env in ("dev", "qa", "stag") for app, ns in (("podinfo", "podinfo"),)}
    expected.update({env: ("U0CAROL", f"{env} frozen") for env in ("dev", "qa", "stag")})
    assert locks == expected
    for change_id in rejected:
        with pytest.raises(ApprovalRefused, match=f"Change `{change_id}` was already rejected by U0BOB"):
            core.guard.waiting(change_id)
    assert core.pending() == []
    assert approved[0].commit.sha == remote_tip(url) and len(remote_log(url)) == 2
    feedback = Feedback(core)
    for body in random.sample(bodies, 10):
        with pytest.raises(ReplayedEvent):
            feedback.receive("dev", body, sign(body, TOKEN))
    live = {k: core.memory[k] for k in core.memory if k.startswith("flux/live/dev/")}
    assert set(live) == {"flux/live/dev/podinfo", "flux/live/dev/redis"}
    assert all(record["state"] == "live" for record in live.values())
    assert core.state.read("PRAGMA integrity_check") == [("ok",)]
    for made in core.state.path.parent.glob(core.state.path.name + "*"):  # the file, its -wal, -shm
        assert made.stat().st_mode & 0o777 == 0o600, made
    core.state.close()


# ---- kill -9 in a loop during approvals --------------------------------------------------------

APPROVING = textwrap.dedent("""
    import os, sys, threading
    from datetime import datetime, timezone
    sys.path.insert(0, sys.argv[1])
    from gitops.guard import approvals
    from gitops.guard.approvals import Guard
    from gitops.identity import Release
    from gitops.model import Requester
    from gitops.state.store import Records, Store
    store, journal = Store(sys.argv[2]), sys.argv[3]
    guard = Guard(store, lambda: datetime.now(timezone.utc))
    guard.recover()
    alice, bob = Requester("U0ALICE"), Requester("U0BOB")
    release = Release("prod", "podinfo", "podinfo", "chart")

    def scrape():  # the metrics' reads and Flux's writes go on meanwhile
        records, n = Records(store), 0
        while True:
            n += 1
            guard.pending()
            records[f"flux/live/prod/app{n % 7}"] = {"state": "live", "n": n}

    threading.Thread(target=scrape, daemon=True).start()
    n = 0
    while True:
        n += 1
        change = guard.propose(60, 10 ** 6, action="deploy", app="podinfo", environment="prod",
                               old="1", new=str(n), file="f", diff="d", requester=alice,
                               namespace="podinfo", release_name="podinfo")
        guard.lock(Release("prod", "podinfo", "podinfo", ""), bob, f"lock {n}")
        guard.claim(change.id, approvals.APPLYING, bob.id)
        with open(journal, "a") as f:  # the push: what applying does outside the state file
            f.write(change.id + "\\n")
            f.flush()
            os.fsync(f.fileno())
        guard.settle(change.id, approvals.APPLIED)
        guard.remember_rollback(release, str(n), bob)
        print(n, flush=True)
""")


def test_killed_in_a_loop_during_approvals_every_record_reads_and_no_change_applies_twice(tmp_path):
    path, journal = tmp_path / STATE_FILE, tmp_path / "pushed"
    rounds = 12
    for round_ in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", APPROVING, PLUGINS, str(path), str(journal)],
                                stdout=subprocess.PIPE, text=True)
        for _ in range(random.randint(1, 6)):  # let it approve a few, then kill it anywhere
            assert proc.stdout.readline(), f"the approving process died in round {round_}"
        time.sleep(random.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()

    store = Store(path)
    assert store.read("PRAGMA integrity_check") == [("ok",)]
    guard = Guard(store, lambda: datetime.now(timezone.utc))
    guard.recover()  # as the next start does
    pushed = journal.read_text().split()
    assert len(pushed) == len(set(pushed)) >= rounds  # no change applied twice
    rows = store.read("SELECT record, state, settled_by FROM pending")
    changes = {c.id: c for c in (approvals.pending_from(json.loads(r), s, b) for r, s, b in rows)}
    assert set(pushed) <= set(changes)
    for change in changes.values():
        assert change.requester.id == "U0ALICE" and change.release == Release("prod", "podinfo", "podinfo")
        if change.state == approvals.APPLIED:
            assert change.id in pushed and change.settled_by == "U0BOB"
        elif change.state == approvals.DROPPED:  # killed between its claim and its outcome
            assert change.settled_by == approvals.INTERRUPTED
        else:  # killed before it was claimed: never pushed, it may still be approved
            assert change.state == approvals.WAITING and change.id not in pushed
    assert sum(c.state == approvals.APPLIED for c in changes.values()) >= rounds
    (lock,) = guard.locks()
    assert lock.release == Release("prod", "podinfo", "podinfo", "") and lock.reason.startswith("lock ")
    assert guard.rolled_back(Release("prod", "podinfo", "podinfo")).by == "U0BOB"
    assert all(record["state"] == "live" for record in Records(store).values())
    store.close()


# ---- the shelf an older Ferry wrote, imported once ----------------------------------------------

def old_shelf(data_dir: Path, now: datetime) -> str:
    """The Ferry plugin's Errbot storage as the Ferry before the state file wrote it (FerryShelf,
    records keyed by display names, who by name or ID); returns the waiting change's id."""
    from storage.ferryshelf import FerryShelfStoragePlugin

    shelf = FerryShelfStoragePlugin(SimpleNamespace(BOT_DATA_DIR=str(data_dir), STORAGE_CONFIG={})).open("Ferry")
    shelf.set("locks", {"prod": {"by": "@ada", "when": "2026-11-20 10:00 UTC", "reason": "release train"},
                        "qa/podinfo": {"by": "@ada", "when": "2026-11-20 10:05 UTC", "reason": "incident 3"}})
    shelf.set("pending", {"0123456789": {
        "id": "0123456789", "action": "deploy", "app": "redis", "environment": "prod", "old": "18.0.0",
        "new": "18.1.0", "file": "apps/prod/redis.yaml", "diff": "-      version: 18.0.0\n+      version: 18.1.0",
        "requester": {"id": "@dave", "name": "", "email": "", "channels": [], "link": "", "bot": False},
        "created": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
        "expires": (now + timedelta(minutes=55)).isoformat(timespec="seconds"),
        "source_environment": "", "approvers": ["@bob"], "forced": [], "state": "waiting",
        "settled_by": "", "part": "chart", "also": []}})
    shelf.set("rolled-back", {"stag/redis": {"version": "18.1.0", "by": "@erin", "when": "2026-11-21 09:00 UTC"}})
    shelf.set("flux/live/qa/podinfo", {"app": "podinfo", "environment": "qa", "state": "live",
                                       "version": "6.5.2", "at": "2026-11-21T09:00:00+00:00"})
    shelf.close()
    return "0123456789"


def test_the_shelf_an_older_ferry_wrote_is_imported_once_at_the_first_start(tmp_path, url):
    data_dir = tmp_path / "errbot"
    data_dir.mkdir()
    change_id = old_shelf(data_dir, datetime.now(timezone.utc))
    policy = {"prod": {"approval": {"approvers": ["@bob"]}}}
    chat = Chat(tmp_path, url, policy, data_dir=data_dir)
    try:
        listed = chat.dm("@alice", "!locks")
        assert "release train" in listed and "qa/podinfo" in listed and "incident 3" in listed
        before = remote_tip(url)
        refused = plain(chat.dm("@bob", "!deploy podinfo 6.5.3 to qa"))
        assert refused.startswith("podinfo in qa is locked by @ada since 2026-11-20 10:05 UTC: incident 3")
        refused = plain(chat.dm("@bob", "!deploy redis 18.1.0 to stag"))
        assert refused.startswith("redis 18.1.0 was rolled back from stag by @erin"), refused
        assert remote_tip(url) == before
        assert change_id in chat.dm("@bob", "!pending")
        assert plain(chat.dm("@alice", "!unlock qa podinfo")).startswith("Unlocked podinfo in qa")
        assert plain(chat.dm("@alice", "!unlock prod")) == "Unlocked prod (locked by @ada since 2026-11-20 10:00 UTC)."
        done = plain(chat.dm("@bob", f"!approve {change_id}"))
        assert done.startswith("Deployed redis 18.0.0 → 18.1.0 in prod: commit"), done
    finally:
        chat.stop()
    store = Store(data_dir / STATE_FILE)  # where the bot keeps it: FERRY_DATA_DIR (BOT_DATA_DIR)
    assert Records(store)["flux/live/qa/podinfo"]["version"] == "6.5.2"
    store.close()
    chat = Chat(tmp_path, url, policy, data_dir=data_dir)  # a restart: the shelf is not read again
    try:
        assert chat.dm("@alice", "!locks") == "Nothing is locked or frozen."
        assert plain(chat.dm("@carol", f"!approve {change_id}")) == f"Change {change_id} was already approved by @bob."
    finally:
        chat.stop()
