"""The one loader for YAML and JSON from outside (gitops/safeyaml.py): its bounds, its one-line
errors, and its readers (discovery, Helm indexes, values, the editor, event bodies) behind them.
Bombs run in a child process with a memory limit (tests/bounded.py)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gitops import safeyaml
from gitops.changes.editing import set_version
from gitops.errors import FerryError, UnreadableDocument
from gitops.flux.helmvalues import release_values_text
from gitops.flux.manifests import DirTree, DocumentCache
from gitops.model import Pin, PinLocation
from gitops.sources.helmindex import parse_index
from gitops.safeyaml import Limits, json_depth, load_json, load_typed, load_yaml, parse_documents
from tests.bounded import run_bounded
from tests.test_chat_safeyaml import BOMB_LINES

BOMB = "".join(line + "\n" for line in BOMB_LINES)
EXPANDED = ("repeats more than 1,000,000 nodes and characters through YAML aliases (Ferry's bound: "
            "an alias bomb?)")
RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  chart:
    spec:
      chart: web
      version: 1.0.0
  values:
"""
VERSION_AT = PinLocation("web.yaml", 0, ("spec", "chart", "spec", "version"))


def web_release(root, values: list) -> tuple:
    """(its text, a tree of it, the pin) of a HelmRelease ``web.yaml`` in ``root`` setting ``values``."""
    text = RELEASE + "".join(f"    {line}\n" for line in values)
    (Path(root) / "web.yaml").write_text(text)
    pin = Pin(app="web/web", environment="dev", version="1.0.0", is_range=False, location=VERSION_AT,
              kind="helmrelease", chart="web", namespace="web", release_file="web.yaml",
              values_files=("web.yaml",))
    return text, DirTree(root), pin


def bomb_answers(root: str) -> dict:
    """What each reader says of the 0.6 KB alias bomb; each answer is also printed in full, as a
    chat reply would be, so an expansion that got through would exhaust the memory limit."""
    def said(read) -> str:
        try:
            return f"read: {str(read())[:200]}"
        except FerryError as e:
            return str(e)

    release, tree, pin = web_release(root, BOMB_LINES)
    return {
        "parse_documents": str(parse_documents(BOMB)),
        "discovery": str(DocumentCache().get(tree, "web.yaml").error),
        "load_yaml": said(lambda: load_yaml(BOMB, "`bomb.yaml`")),
        "load_typed": said(lambda: load_typed(BOMB, "`bomb.yaml`")),
        "load_round_trip": said(lambda: safeyaml.load_round_trip(BOMB, "`bomb.yaml`")),
        "index": said(lambda: parse_index(("apiVersion: v1\n" + BOMB + "entries:\n  web:\n"
                                          "  - version: *i\n").encode(), "The index of x")),
        "values": said(lambda: release_values_text(tree, pin)),
        "edit": said(lambda: set_version(release, VERSION_AT, "1.0.1")),
    }


def test_an_alias_bomb_is_one_line_from_every_reader(tmp_path):
    assert len(BOMB) < 600
    answers = run_bounded("tests.test_safeyaml:bomb_answers", str(tmp_path), memory_mb=768, timeout=60)
    assert answers == {
        "parse_documents": f"([], \"{EXPANDED}\")",
        "discovery": EXPANDED,
        "load_yaml": f"`bomb.yaml` {EXPANDED}: Ferry cannot read it.",
        "load_typed": f"`bomb.yaml` {EXPANDED}: Ferry cannot read it.",
        "load_round_trip": f"`bomb.yaml` {EXPANDED}: Ferry cannot read it.",
        "index": f"The index of x {EXPANDED}: Ferry cannot read its versions.",
        "values": f"`web.yaml` {EXPANDED}: the Helm values it sets cannot be read. Fix it, then ask again.",
        "edit": f"`web.yaml` {EXPANDED}: fix it first.",
    }


def test_expansion_is_priced_by_what_an_alias_repeats_nested_aliases_included():
    # `a` is 1 node + 2 scalars of 1 character (1 + 2 + 2 = 5); `b` holds two aliases of it (1 + 10).
    text = "a: &a [x, y]\nb: &b [*a, *a]\nc: *b\n"
    assert parse_documents(text, Limits(expansion=10 + 11))[1] is None
    assert parse_documents(text, Limits(expansion=10 + 10))[1] == (
        "repeats more than 20 nodes and characters through YAML aliases (Ferry's bound: an alias bomb?)")
    assert parse_documents(text, Limits(aliases=3))[0][0]["c"] == [["x", "y"], ["x", "y"]]
    assert parse_documents(text, Limits(aliases=2))[1] == "uses more than 2 YAML aliases (Ferry's bound)"


def test_ten_thousand_aliases_are_read_and_one_more_is_refused():
    uses = "".join(f"- *v\n" for _ in range(10_000))
    docs, problem = parse_documents("- &v 1\n" + uses)
    assert problem is None and len(docs[0]) == 10_001
    assert parse_documents("- &v 1\n- *v\n" + uses)[1] == "uses more than 10,000 YAML aliases (Ferry's bound)"


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",  # a sequence holding itself
    "a: &a\n  b: *a\n",  # a mapping holding itself
    "x: &a 1\na: &a {b: *a}\n",  # redefined, then used inside the new definition
])
def test_an_alias_inside_its_own_anchor_is_refused(text):
    with pytest.raises(UnreadableDocument, match=r"^`f` has the YAML alias \*a inside its own anchor: "
                                                 r"data that contains itself: Ferry cannot read it\.$"):
        load_yaml(text, "`f`")


@pytest.mark.parametrize("text", [
    "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v: 1\n",  # 101 mappings
    "[" * 200_000,  # flow style past libyaml's own bound
])
def test_nesting_past_the_bound_is_refused_in_one_line(text):
    assert parse_documents(text)[1] == "nests deeper than 100 levels (Ferry's bound)"
    with pytest.raises(UnreadableDocument) as e:
        load_typed(text, "`deep.yaml`")
    assert str(e.value) == "`deep.yaml` nests deeper than 100 levels (Ferry's bound): Ferry cannot read it."


def test_nesting_up_to_the_bound_is_read():
    text = "".join("  " * i + f"k{i}:\n" for i in range(98)) + "  " * 98 + "v: [1]\n"  # 99 + 1
    docs, problem = parse_documents(text)
    assert problem is None
    node = docs[0]
    for i in range(98):
        node = node[f"k{i}"]
    assert node == {"v": ["1"]}


def test_size_past_the_bound_is_refused_before_parsing():
    small = Limits(bytes=100)
    assert parse_documents("a: " + "x" * 100, small)[1] == "is larger than 100 bytes (Ferry's bound)"
    with pytest.raises(UnreadableDocument, match=r"^The body is larger than 100 bytes"):
        load_json(b'"' + b"x" * 100 + b'"', "The body", small)
    assert safeyaml.MAX_BYTES == 16 * 1024 * 1024


def test_an_anchor_defined_twice_reads_as_flux_reads_it():
    """go-yaml (Flux's parser) lets a later anchor of the same name win for the aliases after it;
    libyaml's composer refused the file."""
    text = "a: &x 1\nb: *x\nc: &x [2]\nd: *x\n"
    assert parse_documents(text) == ([{"a": "1", "b": "1", "c": ["2"], "d": ["2"]}], None)
    assert load_typed(text, "`f`") == [{"a": 1, "b": 1, "c": [2], "d": [2]}]


def test_values_with_an_anchor_defined_twice_are_shown_as_flux_reads_them(tmp_path):
    _, tree, pin = web_release(tmp_path, ["a: &size 1", "b: *size", "c: &size 2", "d: *size"])
    assert release_values_text(tree, pin) == "a: 1\nb: 1\nc: 2\nd: 2\n"


def test_anchors_are_per_document_and_merge_keys_still_merge():
    docs, problem = parse_documents("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n---\nc: *b\n")
    assert docs == [{"base": {"x": "1"}, "m": {"x": "1", "y": "2"}}]
    assert problem == "found undefined alias *b"


def test_plain_urls_in_flow_sequences_are_read_as_flux_reads_them():
    # ruamel.yaml.clib's libyaml (0.1.7) refused this; discovery read through it before.
    assert parse_documents("urls: [https://x/a-1.0.tgz]\n") == ([{"urls": ["https://x/a-1.0.tgz"]}], None)


@pytest.mark.parametrize("text, depth", [
    ('{"a": [1, {"b": "]]][[[{"}]}', 3),
    ('["\\"[[[", {"k\\\\": []}]', 3),
    ('"[[["', 0),
    ("[]" * 1000, 1),
    ("[" * 5000 + "]" * 5000, 5000),
    ('"\\"' * 10_000, 0),  # unclosed strings: linear, never a rescan from each quote
])
def test_json_depth_ignores_strings(text, depth):
    assert json_depth(text) == depth


def test_json_is_bounded_and_says_what_is_wrong_in_one_line():
    assert load_json('{"a": [1, "x"]}', "The body") == {"a": [1, "x"]}
    assert load_json('{"a": 1}'.encode("utf-16"), "The body") == {"a": 1}
    deep = b'{"a": ' + b"[" * 101 + b"]" * 101 + b"}"
    assert json_depth(json.dumps(load_json(deep, "The body", replace(safeyaml.LIMITS, depth=102)))) == 102
    with pytest.raises(UnreadableDocument) as e:
        load_json(deep, "The body")
    assert str(e.value) == "The body nests deeper than 100 levels (Ferry's bound): Ferry cannot read it."
    with pytest.raises(UnreadableDocument) as e:
        load_json(b"[1,\n 2,,]", "The body")
    assert str(e.value) == ("The body is not valid JSON (line 2 column 4: Expecting value): "
                            "Ferry cannot read it.")


def test_a_token_realm_answering_deeply_nested_json_is_a_refusal_not_a_crash():
    """A registry's token realm (Docker's token auth: a JSON body with ``token``) answering JSON
    nested past Python's parser: no token, so the registry's 401 stands, in one line."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gitops.errors import RegistryUnauthorized
    from gitops.model import ChartLocation
    from gitops.sources.registry import RegistryClient
    from tests.serving import serving

    deep = b'{"token": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/token"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(deep)))
                self.end_headers()
                self.wfile.write(deep)
                return
            self.send_response(401)
            self.send_header("Www-Authenticate", f'Bearer realm="http://{self.server.host}/token",'
                                                 'service="x",scope="repository:charts/web:pull"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    server.host = f"127.0.0.1:{server.server_address[1]}"
    with serving(server):
        with pytest.raises(RegistryUnauthorized) as e:
            RegistryClient(timeout=3).versions(ChartLocation(server.host, "charts/web", True))
    assert str(e.value).startswith(f"Registry {server.host} wants credentials (401): ") and \
        "\n" not in str(e.value)
