"""A file's history reads each text by the blob id its one ``git log`` names, each distinct text
once, against real bare remotes: no ``<commit>:<path>`` lookups (they walk a fleet's big trees once
per revision), whatever the history holds (merges, deletions, a folder of that name, a user's git
configuration), and the texts are exactly what Git holds."""
from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.changes import editing
from gitops.core import GitOps
from gitops.flux.manifests import DEFAULT_CACHE
from gitops.model import PinLocation
from gitops.reports import _version_at
from gitops.settings import parse_settings
from gitops.workspace import Workspace
from gitops.workspace.objects import ObjectReader, parse_file_log
from tests.fixtures_git import git, remote_file

PATH = "apps/dev/podinfo.yaml"
FILES = {PATH: "version: 6.5.0\n", "README.md": "flux repo\n"}
BLOB_ID = re.compile(r"[0-9a-f]{40}")


@pytest.fixture
def asked(monkeypatch):
    """Every object name asked of the persistent cat-file, in batches or one by one."""
    names: list = []
    blobs, read = ObjectReader.blobs, ObjectReader.read

    def batch(self, wanted):
        names.extend(wanted)
        return blobs(self, wanted)

    def one(self, name):
        names.append(name)
        return read(self, name)

    monkeypatch.setattr(ObjectReader, "blobs", batch)
    monkeypatch.setattr(ObjectReader, "read", one)
    return names


@pytest.fixture
def workspace(tmp_path):
    made = []

    def make(url: str) -> Workspace:
        ws = Workspace(url, "main", tmp_path / f"clone{len(made)}", fetch_interval=0)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


def in_a_clone(url: str, *commands: tuple) -> None:
    """Run git ``commands`` in a fresh clone of ``url`` (a merge, a folder made a file: what
    ``external_commit`` cannot say), then push main."""
    with tempfile.TemporaryDirectory(prefix="history-") as folder:
        clone = Path(folder) / "clone"
        git("clone", "--quiet", url, str(clone))
        for command in commands:
            if callable(command):
                command(clone)
            else:
                git(*command, cwd=clone)
        git("push", "--quiet", "origin", "main", cwd=clone)


def write(path: str, text: str):
    def step(clone: Path) -> None:
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text(text)
    return step


def test_a_text_seen_before_is_read_once_and_every_text_by_its_blob_id(
        bare_remote, workspace, external_commit, asked):
    url = bare_remote(FILES)
    for version in ("6.5.1", "6.5.0", "6.5.1", "6.5.0"):  # back and forth: two texts, five revisions
        external_commit(url, {PATH: f"version: {version}\n"})
    external_commit(url, {"README.md": "unrelated\n"})
    ws = workspace(url)
    head = ws.head()
    asked.clear()
    history = ws.file_history(PATH, head)
    assert [r.text for r in history] == [f"version: {v}\n"
                                         for v in ("6.5.0", "6.5.1", "6.5.0", "6.5.1", "6.5.0")]
    assert [r.blob for r in history] == [git("rev-parse", f"{r.sha}:{PATH}", cwd=ws.directory)
                                         for r in history]
    assert all(BLOB_ID.fullmatch(name) for name in asked), asked  # never <commit>:<path>
    assert sorted(asked) == sorted({r.blob for r in history})  # each text once


def test_a_merge_is_read_as_it_left_the_file_on_the_branch_s_line(bare_remote, workspace, asked):
    url = bare_remote(FILES)
    in_a_clone(url, ("checkout", "--quiet", "-b", "side"), write(PATH, "version: 7.0.0\n"),
               ("commit", "--quiet", "-am", "on the side"), ("checkout", "--quiet", "main"),
               write("README.md", "meanwhile\n"), ("commit", "--quiet", "-am", "meanwhile"),
               ("merge", "--quiet", "--no-ff", "-m", "Merge side", "side"))
    ws = workspace(url)
    head = ws.head()
    asked.clear()
    history = ws.file_history(PATH, head)
    assert [(r.subject, r.text, len(r.parents)) for r in history] == [
        ("Merge side", "version: 7.0.0\n", 2), ("Seed the repository", "version: 6.5.0\n", 0)]
    assert all(BLOB_ID.fullmatch(name) for name in asked), asked


def test_a_path_that_was_a_folder_has_no_text_there(bare_remote, workspace):
    url = bare_remote({**FILES, "apps/dev/redis/release.yaml": "version: 18.0.0\n"})
    in_a_clone(url, ("rm", "--quiet", "-r", "apps/dev/redis"), write("apps/dev/redis", "version: 19.0.0\n"),
               ("add", "apps/dev/redis"), ("commit", "--quiet", "-m", "a file now"))
    ws = workspace(url)
    history = ws.file_history("apps/dev/redis", ws.head())
    assert [(r.subject, r.text) for r in history] == [
        ("a file now", "version: 19.0.0\n"), ("Seed the repository", None)]


def test_a_user_s_git_configuration_changes_no_history(bare_remote, workspace, external_commit,
                                                       asked, tmp_path, monkeypatch):
    odd = "apps/dev/pod info é.yaml"  # quoted by git unless -z
    url = bare_remote({**FILES, "apps/dev/before.yaml": "version: 0.9.0\n"})
    external_commit(url, {"apps/dev/before.yaml": None, odd: "version: 0.9.0\n"})  # a rename
    external_commit(url, {odd: "version: 1.0.0\n"})
    external_commit(url, {odd: "version: 1.1.0\n", "apps/dev/copy.yaml": "version: 1.0.0\n"})
    config = tmp_path / "gitconfig"
    config.write_text("[log]\n\tshowRoot = false\n\tdiffMerges = separate\n\tfollow = true\n"
                      "[diff]\n\trenames = copies\n\tnoprefix = true\n[core]\n\tquotePath = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    ws = workspace(url)
    head = ws.head()
    asked.clear()
    history = ws.file_history(odd, head)  # not followed back through the rename (log.follow)
    assert [r.text for r in history] == ["version: 1.1.0\n", "version: 1.0.0\n", "version: 0.9.0\n"]
    assert all(BLOB_ID.fullmatch(name) for name in asked), asked
    root = ws.file_history("apps/dev/before.yaml", head)  # the root commit's text too (log.showRoot)
    assert [r.text for r in root] == [None, "version: 0.9.0\n"]
    assert all(BLOB_ID.fullmatch(name) for name in asked), asked


# ---- the log as git prints it -------------------------------------------------------------------

def record(sha: str, parents: str, subject: str, body: str = "") -> bytes:
    return "\x1f".join((sha, parents, "Alice", "alice@example.com", "2026-01-01T00:00:00+00:00",
                        subject, body)).encode() + b"\0"


def raw(old_mode: str, new_mode: str, old: str, new: str, status: str, path: str) -> bytes:
    return f"\n:{old_mode} {new_mode} {old} {new} {status}\0{path}\0".encode()


A, B, C, ZERO = "a" * 40, "b" * 40, "c" * 40, "0" * 40


def test_the_log_names_each_revision_s_blob_or_says_it_does_not():
    out = b"".join([
        record(C, A, "gone", "Requested-by: Alice <U1>\n"), raw("100644", "000000", A, ZERO, "D", PATH),
        record(B, A, "a submodule now"), raw("100644", "160000", A, B, "T", PATH),
        record(A, "", "a folder of that name"), raw("000000", "100644", ZERO, C, "A", f"{PATH}/x"),
        record("d" * 40, C + " " + B, "merged"), raw("100644", "100644", A, B, "M", "other.yaml"),
        record("e" * 40, "", "first"), raw("000000", "100644", ZERO, A, "A", PATH),
    ])
    revisions = parse_file_log(out, PATH)
    assert [(r.subject, r.blob) for r in revisions] == [
        ("gone", ""), ("a submodule now", ""), ("a folder of that name", None), ("merged", None),
        ("first", A)]
    assert revisions[0].trailers == {"Requested-by": "Alice <U1>"}
    assert revisions[3].parents == (C, B)


def test_a_rename_into_the_file_names_the_file_second():
    moved = f"\n:100644 100644 {A} {C} R090\0old.yaml\0{PATH}\0".encode()  # -z: source, then the file
    seed = record(A, "", "seed") + raw("000000", "100644", ZERO, A, "A", "old.yaml")
    out = record(B, A, "moved") + moved + seed
    assert [(r.subject, r.blob) for r in parse_file_log(out, PATH)] == [("moved", C), ("seed", None)]


def test_a_path_beyond_utf_8_is_matched_as_git_wrote_it():
    path = b"apps/dev/\xff.yaml".decode("utf-8", errors="surrogateescape")  # as the tree listing reads it
    out = record(A, "", "seed") + f"\n:000000 100644 {ZERO} {B} A\0".encode() + b"apps/dev/\xff.yaml\0"
    assert [r.blob for r in parse_file_log(out, path)] == [B]


# ---- the versions read from those texts ----------------------------------------------------------

RELEASE = "apps/qa/redis.yaml"  # redis in qa: a HelmRelease, `spec.chart.spec.version`


@pytest.fixture
def fleet(tmp_path, bare_remote):
    """A core over the demo fleet (history asks no registry), and its remote."""
    url = bare_remote(demo_files("oci://127.0.0.1:9/charts"))
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data")}
    DEFAULT_CACHE.clear()  # the process's parse cache: what this test parses, it counts
    core = GitOps(parse_settings(raw, environ={}), fetch_interval=0)
    yield url, core
    for ws in core._workspaces.values():  # their persistent cat-file processes
        ws.close()


@pytest.fixture
def parses(monkeypatch):
    """The texts a version is read from, one entry per parse."""
    texts: list = []
    read_version = editing.read_version

    def counting(text, location):
        texts.append(text)
        return read_version(text, location)

    monkeypatch.setattr(editing, "read_version", counting)
    return texts


def release_text(url: str, version: str, note: str = "") -> str:
    text = remote_file(url, RELEASE) + "\n"
    text = re.sub(r"(\n      version: )\S+", rf"\g<1>{version}", text)
    return re.sub(r"(\n  interval: 30m)[^\n]*", rf"\1{note}", text)


def test_a_history_asked_again_parses_no_text_and_a_text_seen_before_once(fleet, external_commit, parses):
    url, core = fleet
    for version, note in (("18.2.0", ""), ("18.1.0", ""), ("18.1.0", " # a comment"), ("18.2.0", "")):
        external_commit(url, {RELEASE: release_text(url, version, note)})
    core.inventory()
    parses.clear()
    first = core.history("redis", "qa")
    assert [h.version for h in first] == ["18.2.0", "18.1.0", "18.2.0", "18.1.0"]
    assert len(parses) == len(set(parses)) == 3  # five revisions, three texts: two came back
    parses.clear()
    assert core.history("redis", "qa") == first and parses == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_history_kept_by_blob_is_the_history_computed_afresh(fleet, external_commit, seed):
    url, core = fleet
    rng = random.Random(seed)
    for _ in range(6):
        version = rng.choice(("18.0.0", "18.1.0", "18.2.0"))
        text = release_text(url, version, rng.choice(("", " # a", " # b")))
        if text == remote_file(url, RELEASE) + "\n":
            external_commit(url, {"README.md": f"{rng.random()}\n"})  # a commit the file is not in
        else:
            external_commit(url, {RELEASE: text})
        kept = core.history("redis", "qa")
        assert kept[0].version == version  # the text written last
        DEFAULT_CACHE.clear()
        assert kept == core.history("redis", "qa")


def test_a_version_kept_by_blob_is_kept_for_its_place_in_the_file(fleet):
    url, core = fleet
    chart, tag = core.pin("redis", "qa").location, PinLocation(RELEASE, 1, ("spec", "values", "image", "tag"))
    ws = core._workspace("qa")
    seed = ws.file_history(RELEASE, ws.head())[0]
    assert [_version_at(seed, place) for place in (chart, tag, chart)] == ["18.1.0", "7.2.4", "18.1.0"]
