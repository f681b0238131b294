"""The parse cache on disk (``gitops.flux.parsestore``): what it gives back is what a fresh parse
gives, it forgets what another parser wrote, stays bounded, never reads back half an entry, and a
restart reads from Git only the blobs it has not seen."""
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from devtools.fluxrepo import demo_files, demo_settings
from gitops.core import GitOps
from gitops.flux.manifests import DEFAULT_CACHE, DocumentCache, git_blob_id
from gitops.flux.parsestore import FILE_NAME, PARSER_VERSION, ParseStore
from gitops.safeyaml import parse_documents
from gitops.settings import parse_settings
from tests.fixtures_git import git, remote_path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "oci://127.0.0.1:5000/charts"
KINDS = ("HelmRelease", "Kustomization")


class Texts:
    """A ``FileTree`` over texts in memory; ``readable=False``: every read fails, so whatever a
    cache gives back came from the cache."""

    def __init__(self, files: dict, readable: bool = True):
        self._files, self.readable, self.reads = files, readable, 0

    def files(self):
        return sorted(self._files)

    def read(self, path):
        self.reads += 1
        if not self.readable:
            raise AssertionError(f"{path} read although cached")
        return self._files[path]

    def blob_id(self, path):
        return git_blob_id(self._files[path].encode("utf-8"))


scalars = st.one_of(st.none(), st.booleans(), st.text(max_size=12), st.integers(-5, 10 ** 6),
                    st.sampled_from(["1.10", "~", "null", "True", "!!str 3", "6.5.0", "\x00pairs"]))
keys = st.one_of(st.text(max_size=8), st.none(), st.booleans(), st.integers(0, 9),
                 st.just("\x00pairs"))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)
dumped = st.lists(documents, min_size=1, max_size=3).map(
    lambda docs: yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False))
# Text the loader refuses or stops in: broken syntax, undefined aliases, anchors, tabs, odd bytes.
broken = st.text(alphabet="ab:-[]{}&*!|>'\"#\n\t ,?%@`\\\x00é", max_size=60)
kinded = st.sampled_from(["kind: HelmRelease\nspec: {chart: {spec: {version: 1.0}}}\n",
                          "kind: Kustomization\nresources: [a.yaml]\n---\n*x\n"])
texts = st.one_of(dumped, broken, kinded, st.tuples(kinded, broken).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, skip=st.booleans())
def test_what_the_cache_gives_back_is_a_fresh_parse(tmp_path, text, skip):
    """Written by one process, read by the next (a new store on the same file, an empty memory):
    the same documents and the same refusal as parsing the text now; a file skipped for holding
    none of the kinds asked for is cached as skipped, and parsed when asked without them."""
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / FILE_NAME  # each example its own file
    keywords = KINDS if skip else ()
    writer = DocumentCache(store=ParseStore(path))
    writer.get(Texts({"f.yaml": text}), "f.yaml", keywords)
    writer.flush()

    docs, error = parse_documents(text)
    fresh_skipped = bool(keywords) and not any(k in text for k in keywords)
    cached = DocumentCache(store=ParseStore(path)).get(Texts({"f.yaml": text}, readable=False),
                                                       "f.yaml", keywords)
    if fresh_skipped:
        assert cached.docs == () and cached.error is None
        # asked without the kinds, the text is read and parsed after all
        again = Texts({"f.yaml": text})
        assert DocumentCache(store=ParseStore(path)).get(again, "f.yaml").docs == tuple(docs)
        assert again.reads == 1
    else:
        # repr: `True` and `1`, `None` and "None" as keys or values are told apart
        assert repr(cached.docs) == repr(tuple(docs))
        assert cached.error == error


def test_a_cache_written_by_another_parser_is_ignored(tmp_path):
    path = tmp_path / FILE_NAME
    cache = DocumentCache(store=ParseStore(path))
    cache.get(Texts({"f.yaml": "a: 1\n"}), "f.yaml")
    cache.flush()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = 'an-older-parser' WHERE key = 'parser'")
    again = Texts({"f.yaml": "a: 1\n"})
    assert DocumentCache(store=ParseStore(path)).get(again, "f.yaml").docs == ({"a": "1"},)
    assert again.reads == 1  # parsed afresh, not read back
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'parser'").fetchone()[0] == PARSER_VERSION


def test_the_cache_stays_bounded_and_keeps_the_newest(tmp_path):
    store = ParseStore(tmp_path / FILE_NAME, max_entries=40)
    cache = DocumentCache(store=store)
    files = {f"f{i}.yaml": f"n: {i}\n" for i in range(100)}
    tree = Texts(files)
    for i in range(100):
        cache.get(tree, f"f{i}.yaml")
        if i % 7 == 0:
            cache.flush()
    cache.flush()
    assert len(ParseStore(tmp_path / FILE_NAME)) <= 40
    assert ParseStore(tmp_path / FILE_NAME).get(tree.blob_id("f99.yaml")) == [[{"n": "99"}], None]
    assert ParseStore(tmp_path / FILE_NAME).get(tree.blob_id("f0.yaml")) is None


def test_a_crash_while_writing_leaves_no_half_entry(tmp_path):
    """A process killed inside its write (rows inserted, not committed): the next one reads the
    entries written before, none of the interrupted ones, and can write again."""
    path = tmp_path / FILE_NAME
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT / 'plugins')!r}, {str(ROOT)!r}]
        from gitops.flux.parsestore import ParseStore
        store = ParseStore({str(path)!r})
        store.put("a" * 40, (({{"kept": "1"}},), None))
        store.flush()
        db = store._db
        class Dying:
            def __getattr__(self, name):
                return getattr(db, name)
            def __enter__(self):
                return db.__enter__()
            def __exit__(self, *exc):
                os._exit(9)  # killed after the rows went in, before the commit
            def executemany(self, *args):
                return db.executemany(*args)
        store._db = Dying()
        store.put("b" * 40, (({{"lost": "1"}},), None))
        store.flush()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    store = ParseStore(path)
    assert store.get("a" * 40) == [[{"kept": "1"}], None]
    assert store.get("b" * 40) is None
    store.put("c" * 40, ((None,), "line 1: x"))
    store.flush()
    assert ParseStore(path).get("c" * 40) == [[None], "line 1: x"]


def test_a_damaged_cache_file_is_a_cache_that_remembers_nothing(tmp_path):
    path = tmp_path / FILE_NAME
    path.write_bytes(b"not a database at all" * 100)
    tree = Texts({"f.yaml": "kind: HelmRelease\n"})
    cache = DocumentCache(store=ParseStore(path))
    assert cache.get(tree, "f.yaml").docs == ({"kind": "HelmRelease"},)
    cache.flush()  # no error either


def _counting_reads(core):
    """The blobs each workspace asks its one `git cat-file --batch` for."""
    asked = []
    for ws in core._workspaces.values():
        reader = ws._clone.reader
        real = reader.read

        def read(name, real=real):
            asked.append(name)
            return real(name)
        reader.read = read
    return asked


def _restart():
    """What a new process starts with: no parse in memory."""
    DEFAULT_CACHE.clear()


def test_a_restart_reads_no_blob_twice(tmp_path, bare_remote, external_commit):
    url = bare_remote(demo_files(REGISTRY))
    settings = parse_settings({**demo_settings(url), "data_dir": str(tmp_path / "data")}, environ={})
    _restart()
    first = GitOps(settings, fetch_interval=0)
    asked = _counting_reads(first)
    pins = first.inventory().pins
    assert asked and len(asked) == len(set(asked))
    assert (tmp_path / "data" / FILE_NAME).exists()

    _restart()
    second = GitOps(settings, fetch_interval=0)
    again = _counting_reads(second)
    assert second.inventory().pins == pins
    assert again == []  # every blob parsed and read before came from the cache on disk

    # Someone changes one file: the next restart reads that blob, and only that one.
    text = demo_files(REGISTRY)["apps/qa/redis.yaml"].replace("version: 18.1.0", "version: 19.0.0")
    external_commit(url, {"apps/qa/redis.yaml": text})
    changed = git("rev-parse", "main:apps/qa/redis.yaml", cwd=remote_path(url))
    _restart()
    third = GitOps(settings, fetch_interval=0)
    after = _counting_reads(third)
    pin = next(p for p in third.inventory().pins if p.app == "redis" and p.environment == "qa")
    assert pin.version == "19.0.0"
    assert after == [changed]


def test_what_exists_by_the_ten_thousand_is_held_compactly():
    """Pins and where they live have no dict each; the keys and values that repeat across
    manifests are one string each, whichever file they were parsed from."""
    from gitops.model import ChartLocation, Pin, PinLocation, Problem
    location = PinLocation("apps/qa/web.yaml", 0, ("spec", "chart", "spec", "version"))
    pin = Pin("web", "qa", "1.0.0", False, location, "helmrelease", "web",
              source=ChartLocation("ghcr.io", "charts/web"))
    for record in (pin, location, pin.source, Problem("qa", "x", "y")):
        assert not hasattr(record, "__dict__")
    one, _ = parse_documents("kind: HelmRelease\nspec:\n  version: '1.2.3'\n")
    other, _ = parse_documents("spec: {version: 1.2.3}\nkind: HelmRelease\n")
    assert one == other
    (a_key, a_version), (b_key, b_version) = (
        (next(k for k in d if k == "spec"), d["spec"]["version"]) for d in (one[0], other[0]))
    assert a_key is b_key and a_version is b_version
    assert one[0]["kind"] is other[0]["kind"]


def test_what_is_read_back_shares_its_keys_and_short_texts_as_a_fresh_parse_does(tmp_path):
    """A restart reads every entry back: keys and short values are one string each, fleet-wide,
    as the loader makes them, not one per document."""
    text = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: a}\n"
    store = ParseStore(tmp_path / FILE_NAME)
    store.put("a" * 40, (tuple(parse_documents(text)[0]), None))
    store.put("b" * 40, (tuple(parse_documents(text.replace("name: a", "name: b"))[0]), None))
    store.flush()
    (first,), _ = ParseStore(tmp_path / FILE_NAME).get("a" * 40)
    (second,), _ = ParseStore(tmp_path / FILE_NAME).get("b" * 40)
    assert first == parse_documents(text)[0][0]
    assert [k for k in first if not any(k is j for j in second)] == []
    assert first["kind"] is second["kind"] is parse_documents(text)[0][0]["kind"]
