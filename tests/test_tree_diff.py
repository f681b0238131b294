"""A commit's listing made from another's by what ``git diff-tree`` says differs (``GitTree.diffed``,
what a bot does after a fetch instead of listing 50,000 files again) equals the listing ``git
ls-tree`` gives from nothing, over generated commit sequences (Hypothesis, a real Git repository):
files written, removed, made executable, turned into symlinks and back, folders emptied; and the
change discovery reads from it (``units.change``) equals the one of two fresh listings."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from gitops.flux import units
from gitops.workspace.objects import parse_diff, parse_tree
from gitops.workspace.trees import GitTree, Listing
from tests.fixtures_git import _env, git

PATHS = ("a.yaml", "apps/dev/web.yaml", "apps/dev/api.yaml", "apps/qa/web.yaml", "apps/qa/deep/x.yml",
         "run.sh")
STEPS = st.lists(st.tuples(st.sampled_from(("write", "remove", "executable", "symlink")),
                           st.sampled_from(PATHS), st.sampled_from(("one\n", "two\n", "three\n"))),
                 min_size=1, max_size=6)


def raw_git(*args: str, cwd: Path) -> bytes:
    """git's output as bytes, NUL separators and all."""
    return subprocess.run(["git", *args], cwd=cwd, env=_env(), capture_output=True, check=True).stdout


def listed(repo: Path, commit: str) -> GitTree:
    blobs, modes = parse_tree(raw_git("ls-tree", "-r", "-z", "--full-tree", commit, "--", cwd=repo))
    return GitTree(commit, blobs, lambda sha: None, modes)


def apply(repo: Path, step: tuple) -> None:
    action, path, text = step
    target = repo / path
    if target.is_symlink() or target.exists():
        target.unlink()
    if action == "remove":
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if action == "symlink":
        os.symlink("a.yaml", target)
        return
    target.write_text(text)
    if action == "executable":
        target.chmod(0o755)


EXAMPLES = int(os.environ.get("FERRY_TREE_DIFF_EXAMPLES", "40"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, min_size=1, max_size=4))
def test_a_listing_made_from_a_diff_equals_a_fresh_one(commits):
    made_along(commits)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, min_size=2, max_size=4))
def test_a_listing_flattened_along_the_way_equals_a_fresh_one(commits):
    """What differs from the shared listing made whole again (past ``Listing.FLATTEN`` paths; here
    past two) reads the same."""
    flatten, Listing.FLATTEN = Listing.FLATTEN, 2
    try:
        made_along(commits)
    finally:
        Listing.FLATTEN = flatten


def made_along(commits: list) -> None:
    """Each commit of ``commits`` (lists of steps) listed from the one before by its diff, and
    checked against ``ls-tree`` of it."""
    with tempfile.TemporaryDirectory(prefix="tree-diff-") as folder:
        repo = Path(folder)
        git("init", "-q", "-b", "main", cwd=repo)
        (repo / "a.yaml").write_text("seed\n")
        git("add", "--all", cwd=repo)
        git("commit", "-q", "-m", "seed", cwd=repo)
        previous = listed(repo, git("rev-parse", "HEAD", cwd=repo))
        for steps in commits:
            for step in steps:
                apply(repo, step)
            git("add", "--all", cwd=repo)
            git("commit", "-q", "--allow-empty", "-m", "step", cwd=repo)
            commit = git("rev-parse", "HEAD", cwd=repo)
            diff = raw_git("diff-tree", "-r", "-z", "--no-renames", previous.commit, commit, "--", cwd=repo)
            made, fresh = previous.diffed(commit, parse_diff(diff)), listed(repo, commit)
            assert made.files() == fresh.files()
            assert {p: (made.blob_id(p), made.mode(p)) for p in made.files()} == \
                {p: (fresh.blob_id(p), fresh.mode(p)) for p in fresh.files()}
            assert units.change(previous, made) == units.change(listed(repo, previous.commit), fresh)
            previous = made
