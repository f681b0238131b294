"""The Git workspace against real bare repositories: no mocks, every remote is a real one."""
from __future__ import annotations

import base64
import http.server
import logging
import os
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from gitops.errors import FerryError, GitUnauthorized, GitUnavailable, PushRejected
from gitops.model import Requester
from gitops.workspace import (FileRevision, GitCommandFailed, GitTree, Workspace, author_identity,
                              commit as commit_module, git_environment, process)
from gitops.workspace.clone import has_changed_path_graph
from tests.clone_damage import DAMAGE, damage, evil_copy
from tests.fixtures_git import git, install_hook, remote_file, remote_log, remote_path, remote_tip

ALICE = Requester("U024BE7LH", "Alice Liddell", "alice@example.com")
FILES = {"apps/dev/podinfo.yaml": "version: 6.5.0\n", "apps/qa/podinfo.yaml": "version: 6.4.0\n",
         "README.md": "flux repo\n"}
MESSAGE = ("deploy podinfo 6.5.0 → 6.5.3 to dev\n\nRequested-by: Alice Liddell <U024BE7LH>\n"
           "Environment: dev\nTo-Version: 6.5.3\n")


@pytest.fixture
def workspace(tmp_path):
    """Factory: a Workspace on ``url`` with its clone under tmp_path; closed after the test."""
    made = []

    def make(url: str, name: str = "clone", **options) -> Workspace:
        options.setdefault("fetch_interval", 0)
        ws = Workspace(url, options.pop("branch", "main"), tmp_path / "repos" / name, **options)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


def set_version(path: str, version: str):
    """An edit callback that pins ``version`` in ``path`` (None when already so)."""
    def edit(tree: GitTree):
        text = f"version: {version}\n"
        if tree.read(path) == text:
            return None
        return {path: text}
    return edit


def assert_consistent(ws: Workspace, url: str) -> None:
    """The clone as a change must leave it, whatever happened: nothing checked out, no index, no
    ref but the clone's own two, origin/<branch> where head() says and on the remote's line."""
    assert sorted(p.name for p in ws.directory.iterdir()) == [".git"]
    assert not (ws.directory / ".git" / "index").exists()
    refs = set(git("for-each-ref", "--format=%(refname)", cwd=ws.directory).splitlines())
    assert refs - {"refs/remotes/origin/HEAD"} == {f"refs/heads/{ws.branch}",
                                                   f"refs/remotes/origin/{ws.branch}"}
    tracking = git("rev-parse", f"refs/remotes/origin/{ws.branch}", cwd=ws.directory)
    assert tracking == ws.head(refresh=False) and tracking in remote_log(url, ws.branch)
    git("fsck", "--connectivity-only", "--no-dangling", cwd=ws.directory)


def assert_listed_like_git(ws: Workspace, sha: str) -> None:
    """``ws.tree(sha)`` (for a commit of ours: derived from its parent, not listed) is what
    ``git ls-tree`` says: the same files, blobs and modes."""
    tree = ws.tree(sha)
    listing = git("ls-tree", "-r", "-z", sha, cwd=ws.directory).strip("\0").split("\0")
    entries = {line.split("\t", 1)[1]: line.split("\t", 1)[0].split() for line in listing}
    files = {path: (mode, blob) for path, (mode, kind, blob) in entries.items() if mode != "120000"}
    assert tree.files() == sorted(files)
    assert {path: (tree.mode(path), tree.blob_id(path)) for path in tree.files()} == files
    assert all(tree.read(path) == git("cat-file", "blob", blob, cwd=ws.directory) + "\n"
               for path, (_, blob) in files.items() if path.endswith(".sh"))


def git_calls(monkeypatch) -> list:
    """Record the git subcommand of every short-lived git process the workspace starts in the
    test's thread (not the whole history cloned in the background)."""
    calls = []
    run = process.run
    here = threading.current_thread()

    def recording(args, *rest):
        if threading.current_thread() is here:
            calls.append(next(a for a in args if not a.startswith("-")))
        return run(args, *rest)

    monkeypatch.setattr(process, "run", recording)
    return calls


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and text
    return text


# ---- clone, head, tree -------------------------------------------------------------------------

def test_first_use_clones_and_later_calls_reuse_the_clone(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    assert not ws.directory.exists()
    assert ws.head() == remote_tip(url)
    ws.whole_history()  # the history a shallow first clone left out, taken in
    marker = ws.directory / ".git" / "ferry-test-marker"
    marker.write_text("still the same clone")
    ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert ws.head() == remote_tip(url)
    assert marker.exists()


def test_a_restarted_bot_reuses_the_clone_even_for_a_relative_remote_path(bare_remote, workspace):
    """Git stores a local remote as an absolute path: that is the same remote, not a re-clone."""
    relative = os.path.relpath(remote_path(bare_remote(FILES)))
    workspace(relative, name="kept").head()
    marker = workspace(relative, name="kept").directory / ".git" / "ferry-test-marker"
    marker.write_text("")
    assert workspace(relative, name="kept").head()
    assert marker.exists()


def test_head_fetches_only_when_the_last_fetch_is_stale(bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url, fetch_interval=3600)
    first = ws.head()
    newer = external_commit(url, {"README.md": "changed\n"})
    assert ws.head() == first  # fetched a moment ago
    ws.fetch_interval = 0
    assert ws.head(refresh=False) == first  # refresh=False never fetches
    assert ws.head() == newer


def test_tree_lists_and_reads_committed_files_whatever_the_worktree_holds(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    tree = ws.tree(ws.head())
    (ws.directory / "apps/dev").mkdir(parents=True, exist_ok=True)  # reads need no checkout
    (ws.directory / "apps/dev/podinfo.yaml").write_text("garbage")
    (ws.directory / "README.md").unlink(missing_ok=True)
    (ws.directory / "untracked.yaml").write_text("x: 1\n")
    assert tree.files() == sorted(FILES)
    assert tree.read("apps/dev/podinfo.yaml") == "version: 6.5.0\n"
    assert tree.read("README.md") == "flux repo\n"
    assert tree.blob_id("README.md") == git("rev-parse", f"{tree.commit}:README.md", cwd=ws.directory)
    assert "untracked.yaml" not in tree
    with pytest.raises(FileNotFoundError):
        tree.read("untracked.yaml")
    assert ws.tree(tree.commit) is tree  # listed once per commit


def test_reads_run_while_a_change_is_being_made(bare_remote, workspace):
    """Readers in other threads neither wait for a writer nor see its half-made commit."""
    url = bare_remote(FILES)
    ws = workspace(url)
    before = ws.head()
    ws.whole_history()
    seen = {}

    def read_elsewhere():
        seen["head"] = ws.head(refresh=False)
        seen["text"] = ws.tree(before).read("apps/dev/podinfo.yaml")
        seen["history"] = len(ws.file_history("apps/dev/podinfo.yaml", before))

    def edit(tree):
        reader = threading.Thread(target=read_elsewhere)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a reader waited for the writer"
        return {"apps/dev/podinfo.yaml": "version: 6.5.3\n", "README.md": "changed\n"}

    ws.change(edit, author=ALICE, message=MESSAGE)
    assert seen == {"head": before, "text": "version: 6.5.0\n", "history": 1}


# ---- change ------------------------------------------------------------------------------------

def test_change_commits_exactly_the_returned_texts_as_the_requester(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url, committer=("Ferry Bot", "ferry@bot.test"))
    before = ws.head()

    def edit(tree):
        return {"apps/dev/podinfo.yaml": "version: 6.5.3\n",
                "apps/qa/podinfo.yaml": tree.read("apps/qa/podinfo.yaml"),  # the same: no change
                "./README.md": "flux repo, changed\n"}

    sha, paths = ws.change(edit, author=ALICE, message="\n" + MESSAGE + "# not a comment  \n\n")
    assert sha == remote_tip(url) == ws.head(refresh=False)
    assert paths == ["README.md", "apps/dev/podinfo.yaml"]
    assert remote_log(url, fmt="%P")[0] == before
    changed = git("--git-dir", str(remote_path(url)), "diff-tree", "--no-commit-id", "--name-status",
                  "-r", sha).splitlines()
    assert changed == ["M\tREADME.md", "M\tapps/dev/podinfo.yaml"]
    who = remote_log(url, fmt="%an|%ae|%cn|%ce")[0]
    assert who == "Alice Liddell|alice@example.com|Ferry Bot|ferry@bot.test"
    assert git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%B", sha) == (
        MESSAGE + "# not a comment").strip()
    assert remote_file(url, "apps/qa/podinfo.yaml") == "version: 6.4.0"
    assert_consistent(ws, url)
    assert_listed_like_git(ws, sha)


@pytest.mark.parametrize("requester, expected", [
    (Requester("U024BE7LH"), ("U024BE7LH", "U024BE7LH@users.ferry.invalid")),
    (Requester("@bob", "Bob"), ("Bob", "bob@users.ferry.invalid")),
    (Requester("weird id/<x>", "", "not-an-email"), ("weird id/x", "weird-id-x@users.ferry.invalid")),
    (Requester("U1", "Carol", "carol@example.com"), ("Carol", "carol@example.com")),
])
def test_author_identity_falls_back_to_a_stable_placeholder(requester, expected):
    assert author_identity(requester) == expected


def test_requester_without_email_commits_with_the_placeholder(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=Requester("U024BE7LH"),
              message=MESSAGE)
    assert remote_log(url, fmt="%an <%ae>")[0] == "U024BE7LH <U024BE7LH@users.ferry.invalid>"


@pytest.mark.parametrize("edit", [
    lambda tree: None,
    lambda tree: {},
    set_version("apps/dev/podinfo.yaml", "6.5.0"),  # already pinned
    lambda tree: {"README.md": "flux repo\n"},  # returned, but the same content: nothing to commit
])
def test_nothing_to_do_makes_no_commit(bare_remote, workspace, edit):
    url = bare_remote(FILES)
    ws = workspace(url)
    before = remote_tip(url)
    assert ws.change(edit, author=ALICE, message=MESSAGE) is None
    assert remote_tip(url) == before
    assert_consistent(ws, url)


def test_a_push_by_someone_else_makes_the_edit_run_again_on_the_new_tip(
        bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url)
    trees = []

    def edit(tree):
        trees.append(tree.commit)
        if len(trees) == 1:  # someone pushes between our fetch and our push
            trees.append(external_commit(url, {"apps/qa/podinfo.yaml": "version: 6.5.0\n"}))
        return set_version("apps/dev/podinfo.yaml", "6.5.3")(tree)

    sha, paths = ws.change(edit, author=ALICE, message=MESSAGE)
    first, external, second = trees
    assert second == external != first  # re-planned on the tip that includes their commit
    assert remote_log(url) == [sha, external, first]  # linear: theirs is our parent, not forced
    assert remote_file(url, "apps/qa/podinfo.yaml") == "version: 6.5.0"
    assert remote_file(url, "apps/dev/podinfo.yaml") == "version: 6.5.3"
    assert_consistent(ws, url)


def test_the_re_plan_may_find_nothing_left_to_do(bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url)
    calls = []

    def edit(tree):
        calls.append(tree.commit)
        if len(calls) == 1:  # a colleague deployed the same version first
            external_commit(url, {"apps/dev/podinfo.yaml": "version: 6.5.3\n"})
        return set_version("apps/dev/podinfo.yaml", "6.5.3")(tree)

    assert ws.change(edit, author=ALICE, message=MESSAGE) is None
    assert len(calls) == 2 and calls[1] == remote_tip(url)
    assert remote_log(url, fmt="%an")[0] == "Someone Else"
    assert_consistent(ws, url)


def test_a_branch_that_keeps_moving_ends_in_push_rejected(bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url, push_attempts=2)
    calls = []

    def edit(tree):
        calls.append(tree.commit)
        external_commit(url, {"README.md": f"busy {len(calls)}\n"})
        return set_version("apps/dev/podinfo.yaml", "6.5.3")(tree)

    with pytest.raises(PushRejected) as caught:
        ws.change(edit, author=ALICE, message=MESSAGE)
    assert len(calls) == 2
    assert "rejected 2 times" in one_line(caught.value)
    assert remote_log(url, fmt="%an")[0] == "Someone Else"
    assert_consistent(ws, url)


def test_a_hook_refusing_the_push_is_reported_once_without_retrying(bare_remote, workspace):
    url = bare_remote(FILES)
    install_hook(url, "pre-receive", "#!/bin/sh\necho 'pushes to main are frozen until Monday'\n"
                                     "echo 'ask #platform' >&2\nexit 1\n")
    ws = workspace(url)
    before = remote_tip(url)
    calls = []

    def edit(tree):
        calls.append(tree.commit)
        return set_version("apps/dev/podinfo.yaml", "6.5.3")(tree)

    with pytest.raises(PushRejected) as caught:
        ws.change(edit, author=ALICE, message=MESSAGE)
    text = one_line(caught.value)
    assert "pre-receive hook declined" in text and "frozen until Monday ask #platform" in text
    assert url.replace("file://", "") in text or url in text
    assert len(calls) == 1
    assert remote_tip(url) == before
    assert_consistent(ws, url)


def test_a_failing_callback_leaves_the_clone_and_the_remote_untouched(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    before = remote_tip(url)

    def edit(tree):
        raise FerryError("Chart `podinfo` has no version `9.9.9` in the registry.")

    with pytest.raises(FerryError, match="no version `9.9.9`"):
        ws.change(edit, author=ALICE, message=MESSAGE)
    assert remote_tip(url) == before
    assert_consistent(ws, url)


@pytest.mark.parametrize("path", [
    "../outside.yaml", "apps/../../outside.yaml", "/etc/passwd", ".git/config", "apps/.GIT/x", "",
    ".", "apps/dev",  # a directory
    "README.md/inner.yaml",  # under a file
    "link.yaml", "link.yaml/x",  # a symlink, and under one
])
def test_a_callback_naming_a_path_that_is_not_a_file_in_the_repository_is_a_bug(
        bare_remote, workspace, path):
    url = bare_remote(FILES, symlinks={"link.yaml": "apps/dev/podinfo.yaml"})
    ws = workspace(url)
    before = remote_tip(url)
    for content in ("x: 1\n", None):
        with pytest.raises(ValueError):
            ws.change(lambda tree: {path: content}, author=ALICE, message=MESSAGE)
    assert remote_tip(url) == before
    assert_consistent(ws, url)


@pytest.mark.parametrize("returned", [
    ["apps/dev/podinfo.yaml"],  # the old contract: paths changed in a worktree
    {"apps/dev/podinfo.yaml": 7},
    {Path("/abs/apps/dev/podinfo.yaml"): "x"},
    {"apps/dev/podinfo.yaml": "x", "apps//dev/podinfo.yaml": "y"},  # one file twice
    {"apps/new": "x", "apps/new/inner.yaml": "y"},  # a file and a directory at once
    {"apps/prod/podinfo.yaml": "version: 1.0.0\n"},  # a new file: Ferry only rewrites files
    {"README.md": None},  # a deletion
    {"apps/dev/podinfo.yaml": b"version: 6.5.3\n"},  # bytes: Ferry writes texts
])
def test_a_callback_returning_anything_but_texts_by_path_is_a_bug(bare_remote, workspace, returned):
    url = bare_remote(FILES)
    ws = workspace(url)
    with pytest.raises((TypeError, ValueError)):
        ws.change(lambda tree: returned, author=ALICE, message=MESSAGE)
    assert_consistent(ws, url)


def test_a_file_keeps_its_mode(bare_remote, workspace):
    url = bare_remote({**FILES, "bin/render.sh": "#!/bin/sh\necho v1\n"}, executables=["bin/render.sh"])
    ws = workspace(url)
    assert ws.tree(ws.head()).mode("bin/render.sh") == "100755"
    assert ws.tree(ws.head()).mode("README.md") == "100644"
    sha, _ = ws.change(lambda tree: {"bin/render.sh": "#!/bin/sh\necho v2\n", "README.md": "changed\n"},
                       author=ALICE, message=MESSAGE)
    assert_listed_like_git(ws, sha)
    listing = git("--git-dir", str(remote_path(url)), "ls-tree", "-r", "main").splitlines()
    modes = {line.split("\t")[1]: line.split()[0] for line in listing}
    assert modes == {"README.md": "100644", "apps/dev/podinfo.yaml": "100644",
                     "apps/qa/podinfo.yaml": "100644", "bin/render.sh": "100755"}
    assert remote_file(url, "bin/render.sh") == "#!/bin/sh\necho v2"


def test_any_file_name_git_allows_is_written_as_it_is(bare_remote, workspace):
    names = ['apps/dev/"quoted" name.yaml', "apps/dev/back\\slash.yaml", "apps/dev/été ü.yaml",
             "apps/dev/tab\there.yaml", "apps/dev/line\nbreak.yaml", " leading space.yaml"]
    url = bare_remote({**FILES, **{n: "name: old\n" for n in names}})
    ws = workspace(url)
    sha, paths = ws.change(lambda tree: {n: f"name: {n!r}\n" for n in names}, author=ALICE,
                           message=MESSAGE)
    assert paths == sorted(names)
    tree = ws.tree(sha)
    assert sorted(set(tree.files()) - set(FILES)) == sorted(names)
    assert all(tree.read(n) == f"name: {n!r}\n" for n in names)


def test_nothing_is_ever_checked_out_and_a_change_is_two_git_processes(
        bare_remote, workspace, monkeypatch, external_commit):
    """The clone holds objects and refs only; a change right after a head() is one fast-import
    (blobs, trees, commit) and one push: no fetch, no index, no rev-parse, no update-ref."""
    url = bare_remote(FILES)
    ws = workspace(url)
    calls = git_calls(monkeypatch)
    ws.tree(ws.head())  # what the core does first: list the tip
    assert calls == ["clone", "rev-parse", "fetch", "ls-tree"]  # fetch_interval=0
    assert sorted(p.name for p in ws.directory.iterdir()) == [".git"]
    ws.whole_history()
    assert sorted(p.name for p in ws.directory.iterdir()) == [".git"]
    calls.clear()
    sha, _ = ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert calls == ["fast-import", "push"]
    assert sha == remote_tip(url) == ws.head(refresh=False)
    assert git("ls-files", cwd=ws.directory) == ""
    assert_consistent(ws, url)
    calls.clear()
    external_commit(url, {"README.md": "theirs\n"})
    ws.tree(ws.head())  # a stale fetch: the fetch, and what differs from the tree in hand
    assert calls == ["fetch", "diff-tree"]
    assert_listed_like_git(ws, ws.head(refresh=False))
    ws.skip_fetch_within = 0  # a fetch too old to build on: one more process, the fetch
    calls.clear()
    ws.change(set_version("apps/dev/podinfo.yaml", "6.5.4"), author=ALICE, message=MESSAGE)
    assert calls == ["fetch", "fast-import", "push"]
    assert ws.tree(ws.head(refresh=False)).read("apps/dev/podinfo.yaml") == "version: 6.5.4\n"
    assert calls == ["fetch", "fast-import", "push"]  # our own commit is known without ls-tree


def test_a_skipped_fetch_on_a_stale_tip_costs_one_rejected_push_not_a_lost_commit(
        bare_remote, workspace, external_commit, monkeypatch):
    url = bare_remote(FILES)
    ws = workspace(url, skip_fetch_within=3600)
    first = ws.head()
    ws.whole_history()
    external = external_commit(url, {"apps/qa/podinfo.yaml": "version: 6.5.0\n"})
    calls = git_calls(monkeypatch)
    planned = []

    def edit(tree):
        planned.append(tree.commit)
        return set_version("apps/dev/podinfo.yaml", "6.5.3")(tree)

    sha, paths = ws.change(edit, author=ALICE, message=MESSAGE)
    assert planned == [first, external]  # planned on what it knew, rejected, planned on theirs
    assert calls.count("push") == 2 and calls.count("fetch") == 1
    assert remote_log(url) == [sha, external, first]  # linear, theirs kept
    assert remote_file(url, "apps/qa/podinfo.yaml") == "version: 6.5.0"
    assert remote_file(url, "apps/dev/podinfo.yaml") == "version: 6.5.3"
    assert_consistent(ws, url)


def test_nothing_to_do_on_an_unfetched_tip_is_checked_against_the_remote(
        bare_remote, workspace, external_commit):
    """The stale tip says the version is already there; the remote moved it since: plan again."""
    url = bare_remote(FILES)
    ws = workspace(url, skip_fetch_within=3600)
    first = ws.head()
    external = external_commit(url, {"apps/dev/podinfo.yaml": "version: 6.6.0\n"})
    planned = []

    def edit(tree):
        planned.append(tree.commit)
        return set_version("apps/dev/podinfo.yaml", "6.5.0")(tree)

    sha, _ = ws.change(edit, author=ALICE, message=MESSAGE)
    assert planned == [first, external]
    assert remote_log(url) == [sha, external, first]
    assert remote_file(url, "apps/dev/podinfo.yaml") == "version: 6.5.0"
    assert ws.change(edit, author=ALICE, message=MESSAGE) is None  # now really nothing to do
    assert_consistent(ws, url)


def test_identities_and_messages_are_written_the_way_git_commit_writes_them(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url, committer=("  Ferry, the bot. ", "<ferry@bot.test>"))
    ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"),
              author=Requester("U1", "'Zoë <Z> \"Q\".'", "zoe@example.com"),
              message="\n\n  deploy\t \n\n\n\nbody  \n#kept\n\n")
    assert remote_log(url, fmt="%an|%ae|%cn|%ce")[0] == "Zoë Z \"Q|zoe@example.com|Ferry, the bot|ferry@bot.test"
    assert git("--git-dir", str(remote_path(url)), "cat-file", "commit", "main").split("\n\n", 1)[1] == (
        "  deploy\n\nbody\n#kept")  # (the helper strips the final newline)


def test_the_clone_gets_a_commit_graph_with_changed_path_filters_that_fetches_keep(
        bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url)
    ws.head()
    ws.whole_history()  # cloned in the background, with its graph
    git_dir = ws.directory / ".git"
    assert has_changed_path_graph(git_dir)
    git("commit-graph", "verify", cwd=ws.directory)
    external_commit(url, {"README.md": "one\n"})
    external_commit(url, {"README.md": "two\n"})
    ws.head()  # fetch.writeCommitGraph adds a layer for what it brought
    chain = git_dir / "objects" / "info" / "commit-graphs" / "commit-graph-chain"
    assert chain.is_file() and has_changed_path_graph(git_dir)  # the clone's was not split
    assert [r.text for r in ws.file_history("README.md", ws.head())] == ["two\n", "one\n", "flux repo\n"]


def test_a_clone_without_a_commit_graph_gets_one_on_first_use(bare_remote, workspace):
    url = bare_remote(FILES)
    old = workspace(url, name="old")
    old.head()
    old.whole_history()
    info = workspace(url, name="old").directory / ".git" / "objects" / "info"
    for graph in [info / "commit-graph", *info.glob("commit-graphs/*")]:
        graph.unlink(missing_ok=True)  # the fetch that took the history in may have split it
    assert not has_changed_path_graph(info.parent.parent)
    workspace(url, name="old").head()
    assert has_changed_path_graph(info.parent.parent)


def test_a_commit_graph_that_cannot_be_written_is_logged_and_reads_go_on(
        bare_remote, workspace, monkeypatch, caplog):
    run = process.run

    def failing(args, *rest):
        if "commit-graph" in args:
            return process.Result(128, b"", "fatal: disk full")
        return run(args, *rest)

    monkeypatch.setattr(process, "run", failing)
    url = bare_remote(FILES)
    ws = workspace(url)
    with caplog.at_level(logging.WARNING):
        head = ws.head()
        ws.whole_history()
    assert "could not write the commit-graph" in caplog.text and "disk full" in caplog.text
    assert ws.file_history("README.md", head)[0].text == "flux repo\n"
    assert ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)


def test_two_threads_changing_different_files_both_land(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    start = threading.Barrier(2)
    results = {}

    def run(path):
        start.wait()
        results[path] = ws.change(set_version(path, "7.0.0"), author=ALICE, message=MESSAGE)

    threads = [threading.Thread(target=run, args=(p,)) for p in ("apps/dev/podinfo.yaml",
                                                                  "apps/qa/podinfo.yaml")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None for r in results.values()) and len(results) == 2
    assert len(remote_log(url)) == 3
    assert remote_file(url, "apps/dev/podinfo.yaml") == remote_file(url, "apps/qa/podinfo.yaml")
    assert_consistent(ws, url)


def test_two_clones_racing_on_one_remote_both_land_through_retries(bare_remote, workspace):
    """Two bot processes (two clones) pushing at once: the loser re-plans, nobody force-pushes."""
    url = bare_remote(FILES)
    clones = [workspace(url, name="one"), workspace(url, name="two")]
    planned = threading.Barrier(2)
    results = []

    def run(ws, path):
        plans = []

        def edit(tree):
            plans.append(tree.commit)
            if len(plans) == 1:
                planned.wait(timeout=10)  # both plan on the same tip before either pushes
            return set_version(path, "7.0.0")(tree)
        results.append(ws.change(edit, author=ALICE, message=MESSAGE))

    threads = [threading.Thread(target=run, args=(ws, p))
               for ws, p in zip(clones, ("apps/dev/podinfo.yaml", "apps/qa/podinfo.yaml"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and all(results)
    assert len(remote_log(url)) == 3
    assert remote_log(url, fmt="%P")[0] == remote_log(url)[1]
    for ws in clones:
        assert_consistent(ws, url)


# ---- failures of the remote and of the clone ----------------------------------------------------

def test_an_unreachable_remote_is_git_unavailable(tmp_path, workspace):
    url = str(tmp_path / "no-such-remote.git")
    ws = workspace(url)
    with pytest.raises(GitUnavailable) as caught:
        ws.head()
    assert url in one_line(caught.value)
    with pytest.raises(GitUnavailable):
        ws.change(set_version("a", "1"), author=ALICE, message=MESSAGE)


def test_a_missing_branch_is_named(bare_remote, workspace):
    ws = workspace(bare_remote(FILES), branch="production")
    with pytest.raises(GitUnavailable, match="no branch `production`"):
        ws.head()


def test_a_deleted_git_directory_is_cloned_again(bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url)
    old = ws.head()
    tree = ws.tree(old)
    git_dir = ws.directory / ".git"
    shutil.rmtree(git_dir)
    newer = external_commit(url, {"README.md": "new\n"})
    assert ws.head() == newer
    assert ws.tree(old).read("README.md") == "flux repo\n"
    assert ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert tree.read("apps/qa/podinfo.yaml") == "version: 6.4.0\n"  # an old tree heals itself too


def test_objects_destroyed_under_a_running_workspace_are_cloned_again_on_read(bare_remote, workspace):
    """The clone's refs still look sound but its objects are garbage: a blob its own tree lists
    reads as missing, and that means a broken clone (cloned again), not a missing file."""
    url = bare_remote(FILES)
    ws = workspace(url)
    tree = ws.tree(ws.head())
    for obj in (ws.directory / ".git" / "objects").rglob("*"):
        if obj.is_file():
            obj.write_bytes(b"garbage")
    assert tree.read("apps/qa/podinfo.yaml") == "version: 6.4.0\n"
    assert ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert remote_file(url, "apps/dev/podinfo.yaml") == "version: 6.5.3"


def test_a_deleted_clone_is_cloned_again_even_for_a_plain_read(bare_remote, workspace):
    url = bare_remote(FILES)
    ws = workspace(url)
    head = ws.head()
    shutil.rmtree(ws.directory)
    assert ws.file_history("README.md", head)[0].text == "flux repo\n"
    assert (ws.directory / ".git").is_dir()


def test_a_corrupted_clone_is_cloned_again_not_mistaken_for_an_enclosing_repo(bare_remote, tmp_path):
    """Garbage in .git/HEAD makes git walk up to any enclosing repository: Ferry must not."""
    url = bare_remote(FILES)
    enclosing = tmp_path / "project"
    git("init", "--quiet", str(enclosing))
    ws = Workspace(url, "main", enclosing / "data" / "repos" / "flux", fetch_interval=0)
    try:
        head = ws.head()
        (ws.directory / ".git" / "HEAD").write_text("garbage\n")
        assert ws.head() == head
        assert ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE,
                         message=MESSAGE)
        assert git("rev-parse", "refs/remotes/origin/main", cwd=ws.directory) == remote_tip(url)
        assert git("rev-list", "--all", cwd=enclosing) == ""  # the enclosing repo was not touched
    finally:
        ws.close()


def test_a_clone_broken_right_before_a_change_is_repaired_by_the_change(bare_remote, workspace):
    """Nothing checked the clone since the head() a moment ago (the fetch is skipped too): the
    commit fails, the change re-clones once and plans again on the fresh clone."""
    url = bare_remote(FILES)
    ws = workspace(url, skip_fetch_within=3600)
    ws.tree(ws.head())
    (ws.directory / ".git" / "HEAD").write_text("garbage\n")
    planned = []

    def edit(tree):  # reads nothing: a read would find the clone broken and repair it first
        planned.append(tree.commit)
        return {"apps/dev/podinfo.yaml": "version: 6.5.3\n"}

    sha, _ = ws.change(edit, author=ALICE, message=MESSAGE)
    assert sha == remote_tip(url) and len(planned) == 2
    assert_consistent(ws, url)


def test_a_commit_that_fails_on_a_sound_clone_is_not_retried(bare_remote, workspace, monkeypatch):
    url = bare_remote(FILES)
    ws = workspace(url)
    before = ws.head()
    monkeypatch.setattr(commit_module, "SCRATCH_REF", "refs/bad..name")  # a bug of ours
    with pytest.raises(GitCommandFailed):
        ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert remote_tip(url) == before
    assert_consistent(ws, url)


def test_a_clone_of_another_remote_is_replaced(bare_remote, workspace):
    first, second = bare_remote(FILES), bare_remote({"other.yaml": "x: 1\n"})
    workspace(first, name="shared").head()
    ws = workspace(second, name="shared")
    assert ws.head() == remote_tip(second)
    assert ws.tree(ws.head()).files() == ["other.yaml"]


# ---- history -----------------------------------------------------------------------------------

def test_file_history_is_newest_first_with_trailers_and_deletions(
        bare_remote, workspace, external_commit):
    url = bare_remote(FILES)
    ws = workspace(url)
    path = "apps/dev/podinfo.yaml"
    ws.change(set_version(path, "6.5.1"), author=ALICE, message=(
        "deploy podinfo 6.5.1 to dev\n\nRequested-by: Alice Liddell <U024BE7LH>\n"
        "Approved-by: Bob\nApproved-by: Carol\n"))
    external_commit(url, {"README.md": "unrelated\n"})
    external_commit(url, {path: None}, message="remove podinfo from dev")
    external_commit(url, {path: "version: 7.0.0\n"}, message="bring it back")
    history = ws.file_history(path, ws.head())
    assert [r.subject for r in history] == ["bring it back", "remove podinfo from dev",
                                            "deploy podinfo 6.5.1 to dev", "Seed the repository"]
    assert [r.text for r in history] == ["version: 7.0.0\n", None, "version: 6.5.1\n",
                                         "version: 6.5.0\n"]
    ours = history[2]
    assert isinstance(ours, FileRevision)
    assert (ours.author_name, ours.author_email) == ("Alice Liddell", "alice@example.com")
    assert ours.trailers == {"Requested-by": "Alice Liddell <U024BE7LH>", "Approved-by": "Bob, Carol"}
    assert history[0].trailers == {}
    assert "T" in ours.when and ours.sha == remote_log(url)[3]
    assert len(ws.file_history(path, ws.head(), limit=2)) == 2
    assert ws.file_history(path, history[2].sha)[0].sha == history[2].sha


def _fast_import(bare: Path, files: int, commits: int, tracked: str, every: int) -> None:
    """A big repository in one process: ``files`` files, then ``commits`` commits touching a
    noise file, and ``tracked`` every ``every`` commits."""
    def data(text: str) -> str:
        return "data %d\n%s\n" % (len(text.encode()), text)

    def commit(when: int, message: str, path: str, text: str) -> str:
        return ("commit refs/heads/main\ncommitter Seed <seed@example.test> %d +0000\n" % when
                + data(message) + "M 100644 inline %s\n" % path + data(text))

    out = [commit(1700000000, "seed", "noise.txt", "0")]
    out += ["M 100644 inline apps/f%05d.yaml\n" % i + data("n: %d\n" % i) for i in range(files)]
    for c in range(1, commits + 1):
        if c % every == 0:
            out.append(commit(1700000000 + c, "deploy %d\n\nRequested-by: U%d" % (c, c), tracked,
                              "version: %d\n" % c))
        else:
            out.append(commit(1700000000 + c, "noise %d" % c, "noise.txt", str(c)))
    git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
    git("--git-dir", str(bare), "fast-import", "--quiet", input="".join(out))


def test_large_trees_and_long_histories_stay_fast(tmp_path, workspace):
    bare = tmp_path / "big.git"
    _fast_import(bare, files=10_000, commits=10_000, tracked="apps/dev/podinfo.yaml", every=300)
    ws = workspace(bare.as_uri())
    head = ws.head()
    started = time.monotonic()
    tree = ws.tree(head)
    assert len(tree.files()) == 10_002 and tree.read("apps/f09999.yaml") == "n: 9999\n"
    history = ws.file_history("apps/dev/podinfo.yaml", head)
    elapsed = time.monotonic() - started
    assert len(history) == 33 and history[0].trailers == {"Requested-by": "U9900"}
    assert history[0].text == "version: 9900\n"
    assert elapsed < 3, f"tree + history took {elapsed:.2f} s"


# ---- credentials, secrets, time bounds -----------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An HTTP Git server that answers 401 to everything and notes the credentials it was sent."""

    seen: list = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="ferry-test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_server():
    _Refusing.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/flux.git", _Refusing.seen
    server.shutdown()
    server.server_close()


def test_git_environment_hands_the_token_through_askpass_only(tmp_path, bare_remote, workspace):
    token = "ghp_s3cretT0kenValue"
    env = git_environment(token, helper_dir=tmp_path / "helper")
    assert env["GIT_TERMINAL_PROMPT"] == "0" and token not in env["GIT_ASKPASS"]
    script = Path(env["GIT_ASKPASS"])
    assert stat.S_IMODE(script.stat().st_mode) == 0o700 and token not in script.read_text()
    ws = workspace(bare_remote(FILES), git_env=env, secrets=[token])
    ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    for file in (ws.directory / ".git").rglob("*"):
        if file.is_file():
            assert token.encode() not in file.read_bytes(), file


def test_the_token_reaches_the_server_but_never_a_message(refusing_server, workspace, caplog):
    url, seen = refusing_server
    token = "glpat-Sup3rS3cret"
    ws = workspace(url, git_env=git_environment(token), secrets=[token], timeout=20)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(GitUnauthorized) as caught:
            ws.head()
    assert url in one_line(caught.value) and token not in str(caught.value)
    sent = [base64.b64decode(h.split()[1]).decode() for h in seen if h]
    assert sent and all(s == f"x-access-token:{token}" for s in sent)
    assert token not in caplog.text


def test_no_credentials_and_a_refusing_server_is_unauthorized_without_a_prompt(
        refusing_server, workspace):
    url, _ = refusing_server
    with pytest.raises(GitUnauthorized):
        workspace(url, git_env=git_environment(), timeout=20).head()


def test_a_closed_port_is_unavailable_and_the_token_stays_secret(workspace):
    token = "ghp_NeverShowMe"
    url = f"http://127.0.0.1:{closed_port()}/flux.git"
    ws = workspace(url, git_env=git_environment(token), secrets=[token])
    with pytest.raises(GitUnavailable) as caught:
        ws.head()
    text = one_line(caught.value)
    assert url in text and "connection refused" in text and token not in text


def test_secrets_and_url_credentials_are_scrubbed_from_messages_and_logs(workspace, caplog):
    port = closed_port()
    url = f"https://robot:hunter2pass@127.0.0.1:{port}/team-xyzzy/flux.git"
    ws = workspace(url, secrets=["team-xyzzy"])
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(GitUnavailable) as caught:
            ws.head()
    text = one_line(caught.value)
    assert f"https://127.0.0.1:{port}/***/flux.git" in text
    for secret in ("hunter2pass", "robot", "team-xyzzy"):
        assert secret not in text and secret not in caplog.text


def test_a_remote_that_never_answers_is_cut_off(workspace):
    with socket.socket() as silent:  # accepts connections into its backlog, never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        ws = workspace(f"http://127.0.0.1:{silent.getsockname()[1]}/flux.git", timeout=1)
        started = time.monotonic()
        with pytest.raises(GitUnavailable, match="did not answer within 1 s"):
            ws.head()
        assert time.monotonic() - started < 5


def test_ssh_key_environment_bounds_and_isolates_ssh():
    env = git_environment(ssh_key_file="/run/secrets/flux key")
    command = env["GIT_SSH_COMMAND"]
    assert "-i '/run/secrets/flux key'" in command and "IdentitiesOnly=yes" in command
    assert "StrictHostKeyChecking=yes" in command and "ConnectTimeout=10" in command
    assert "GIT_ASKPASS" not in env
    # Trust on first use only when the settings ask for it; their known_hosts, not the machine's.
    trusting = git_environment(known_hosts="/etc/ferry/known_hosts", accept_new_host_keys=True)
    assert "StrictHostKeyChecking=accept-new" in trusting["GIT_SSH_COMMAND"]
    assert "UserKnownHostsFile=/etc/ferry/known_hosts" in trusting["GIT_SSH_COMMAND"]


def test_the_machine_s_ssh_command_cannot_turn_host_key_checks_off(monkeypatch):
    from gitops.workspace.process import process_env

    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -o StrictHostKeyChecking=no")
    monkeypatch.setenv("GIT_SSH", "/usr/local/bin/any-ssh")
    env = process_env({}, "git@github.com:acme/flux.git")
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"] and "GIT_SSH" not in env


# ---- a clone changed behind Ferry's back ----------------------------------------------------------

@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("restarted", [False, True], ids=["running", "restarted"])
def test_a_clone_changed_behind_ferry_s_back_is_repaired_before_it_is_used(
        bare_remote, workspace, external_commit, tmp_path, kind, restarted):
    """Nothing the clone's config or refs say is taken on trust: the next read answers with the
    remote's tip, and the next change lands on the remote on top of it, nowhere else."""
    url = bare_remote(FILES)
    ours = external_commit(url, {"README.md": "second\n"})  # so that an older commit exists
    evil = evil_copy(url, tmp_path, external_commit, {"apps/dev/podinfo.yaml": "version: 9.9.9\n"})
    evil_log = remote_log(evil)
    ws = workspace(url, fetch_interval=3600, skip_fetch_within=3600)  # no fetch would hide it
    assert ws.head() == ours
    ws.whole_history()  # an older commit to point the ref at
    damage(ws.directory, kind, url, evil)
    if restarted:
        ws.close()
        ws = workspace(url, fetch_interval=3600, skip_fetch_within=3600)
    assert ws.head(refresh=False) == ours and ws.head() == ours
    assert ws.tree(ws.head()).read("apps/dev/podinfo.yaml") == "version: 6.5.0\n"
    sha, _ = ws.change(set_version("apps/dev/podinfo.yaml", "6.5.3"), author=ALICE, message=MESSAGE)
    assert remote_log(url) == [sha, ours, remote_log(url)[-1]]  # on top of the remote's tip
    assert remote_log(evil) == evil_log  # the other remote never saw a thing
    assert git("config", "--get-regexp", "^remote[.]origin[.]|^url[.]", cwd=ws.directory).split("\n")[0] \
        .endswith(remote_path(url).as_posix())
    assert_consistent(ws, url)
