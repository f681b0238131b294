"""A first clone holds the tip only; the whole history follows in the background and is taken in
under the workspace's lock: against real bare remotes, with git's own processes."""
from __future__ import annotations

import threading

import pytest

from gitops.model import Requester
from gitops.workspace import Workspace, process
from gitops.workspace.clone import has_changed_path_graph
from tests.fixtures_git import git, remote_file, remote_log

ALICE = Requester("U024BE7LH", "Alice Liddell", "alice@example.com")
FILES = {"apps/dev/podinfo.yaml": "version: 6.5.0\n", "README.md": "flux repo\n"}


@pytest.fixture
def workspace(tmp_path):
    made = []

    def make(url: str, **options) -> Workspace:
        ws = Workspace(url, "main", tmp_path / "repos" / "clone", fetch_interval=0, **options)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


def readme(text: str):
    return lambda tree: {"README.md": text}


def shallow(ws: Workspace) -> bool:
    return git("rev-parse", "--is-shallow-repository", cwd=ws.directory) == "true"


def leftovers(ws: Workspace) -> list:
    return sorted(p.name for p in ws.directory.parent.iterdir() if p != ws.directory)


def test_the_first_clone_is_the_tip_only_and_history_waits_for_the_rest(
        bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    for n in range(3):
        external_commit(url, {"README.md": f"v{n}\n"})
    ws = workspace(url)
    head = ws.head()
    assert shallow(ws)  # taken in only under the lock, by a later call
    assert git("rev-list", "--count", head, cwd=ws.directory) == "1"
    assert ws.tree(head).read("README.md") == "v2\n"
    texts = [r.text for r in ws.file_history("README.md", head)]  # waits for the whole history
    assert texts == ["v2\n", "v1\n", "v0\n", "flux repo\n"]
    assert not shallow(ws) and has_changed_path_graph(ws.directory / ".git")
    assert leftovers(ws) == []


def test_a_push_and_a_fetch_while_the_history_is_made_land_and_the_history_has_them(
        bare_remote, workspace, external_commit, monkeypatch):
    """The background clone writes its commit-graph while the live clone fetches and pushes: no
    lock is shared (another directory), and what the live clone got meanwhile is in the history
    taken in."""
    url = bare_remote(FILES)
    run, writing, written = process.run, threading.Event(), threading.Event()

    def graph_in_the_middle(args, *rest):
        if "commit-graph" in args and threading.current_thread().name == "ferry-full-clone":
            writing.set()  # git writes the graph now, while the test pushes
            try:
                return run(args, *rest)
            finally:
                written.set()
        return run(args, *rest)

    monkeypatch.setattr(process, "run", graph_in_the_middle)
    ws = workspace(url)
    first = ws.head()
    assert writing.wait(30)
    theirs = external_commit(url, {"apps/dev/podinfo.yaml": "version: 6.5.1\n"})
    assert ws.head() == theirs  # a fetch into the shallow clone
    ours, _ = ws.change(readme("ours\n"), author=ALICE, message="readme: ours")
    assert remote_log(url) == [ours, theirs, first]
    assert written.wait(30)
    assert [r.sha for r in ws.file_history("README.md", ws.head())] == [ours, first]
    assert ws.head() == ours and not shallow(ws)
    assert git("rev-list", "--count", ours, cwd=ws.directory) == "3"
    assert remote_file(url, "README.md") == "ours"
    git("fsck", "--connectivity-only", "--no-dangling", cwd=ws.directory)
    assert leftovers(ws) == []


def test_a_history_stopped_half_way_is_cloned_again_by_the_next_start(bare_remote, workspace,
                                                                      external_commit):
    url = bare_remote(FILES)
    second = external_commit(url, {"README.md": "second\n"})
    ws = workspace(url)
    ws.head()
    ws.close()  # the bot stops: the clone under way is killed, what it made removed
    assert shallow(ws) and leftovers(ws) == []
    again = workspace(url)
    assert again.head() == second
    assert len(again.log(second, 10)) == 2
    assert not shallow(again) and leftovers(again) == []


def test_a_repair_clones_the_whole_history_at_once(bare_remote, workspace, external_commit):
    """A running bot may hold commits older than the tip (its pins' commit): a clone made again
    after damage is whole, so that they stay readable."""
    url = bare_remote(FILES)
    ws = workspace(url)
    old = ws.head()
    ws.whole_history()
    (ws.directory / ".git" / "HEAD").write_text("garbage\n")  # the next fetch fails: cloned again
    newer = external_commit(url, {"README.md": "new\n"})
    assert ws.head() == newer
    assert not shallow(ws)
    assert ws.tree(old).read("README.md") == "flux repo\n"
