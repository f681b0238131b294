"""A tree read from Git file after file (a first discovery) reads ahead in batches through the one
cat-file: the texts are what Git holds, whatever the order of the reads, and a cold read of a
whole tree is a few batches, not a round trip per file."""
from __future__ import annotations

import random

import pytest

from gitops.workspace import Workspace
from gitops.workspace.objects import READ_AHEAD, READ_AHEAD_AFTER, ObjectReader
from tests.fixtures_git import git

FILES = {f"apps/{env}/app{n:03d}/release.yaml": f"name: app{n}\nenv: {env}\nversion: 1.{n}.0\n"
         for env in ("dev", "qa") for n in range(300)}
FILES.update({"README.md": "fleet\n", "apps/dev/app000/same.yaml": FILES["apps/qa/app000/release.yaml"]})


@pytest.fixture
def workspace(bare_remote, tmp_path):
    ws = Workspace(bare_remote(FILES), "main", tmp_path / "clone", fetch_interval=0)
    yield ws
    ws.close()


@pytest.fixture
def tree(workspace):
    return workspace.tree(workspace.head())


@pytest.fixture
def single_reads(monkeypatch):
    """How many objects are asked for one by one."""
    asked = []
    read = ObjectReader.read

    def counting(self, name):
        asked.append(name)
        return read(self, name)

    monkeypatch.setattr(ObjectReader, "read", counting)
    return asked


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_every_text_is_what_git_holds_whatever_the_order(workspace, tree, single_reads, seed):
    paths = sorted(FILES)
    if seed is not None:
        random.Random(seed).shuffle(paths)
    assert {p: tree.read(p) for p in paths} == FILES
    for path in paths[:5] + paths[-5:]:
        assert tree.read(path) == git("cat-file", "blob", tree.blob_id(path),
                                      cwd=workspace.directory) + "\n"  # (the helper strips it)
    if seed is None:  # in order: one file at a time until it reads ahead, then batches
        assert len(single_reads) < READ_AHEAD_AFTER + len(FILES) // READ_AHEAD + 2


def test_a_few_reads_are_one_by_one(tree, single_reads):
    paths = sorted(FILES)[:READ_AHEAD_AFTER - 1]
    assert [tree.read(p) for p in paths] == [FILES[p] for p in paths]
    assert len(single_reads) == len(paths)  # a restart reads only what it has not parsed


def test_a_file_s_history_reads_its_texts_in_one_batch(workspace, external_commit, single_reads):
    path = "apps/dev/app007/release.yaml"
    for n in range(5):
        external_commit(workspace.url, {path: f"version: 2.{n}.0\n"})
    external_commit(workspace.url, {"README.md": "unrelated\n"})
    history = workspace.file_history(path, workspace.head())
    assert [r.text for r in history] == [f"version: 2.{n}.0\n" for n in reversed(range(5))] + [FILES[path]]
    assert single_reads == []  # the six texts came in one exchange with cat-file
