"""Editing: one version changes on exactly one line, every other byte stays as it was."""
from __future__ import annotations

import difflib

import pytest

from gitops.flux.discovery import DirTree, discover
from gitops.changes.editing import read_version, set_version, unified_diff
from gitops.errors import NotEditable
from gitops.flux.manifests import parse_documents
from gitops.model import PinLocation
from gitops.settings import parse_settings

from tests.refs import FLUX_LAYOUTS as REFS
VERSION = ("spec", "chart", "spec", "version")
F = "apps/dev/release.yaml"


def loc(path=VERSION, document=0, file=F) -> PinLocation:
    return PinLocation(file, document, tuple(path))


def changed_lines(old: str, new: str) -> list:
    """(old line, new line) pairs of what changed; lines keep their endings."""
    a, b = old.split("\n"), new.split("\n")
    assert len(a) == len(b), "the number of lines changed"
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    pairs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            pairs.extend(zip(a[i1:i2], b[j1:j2]))
    return pairs


def assert_one_line(old: str, new: str, before: str, after: str) -> None:
    assert changed_lines(old, new) == [(before, after)]


# ---- every real fixture file that holds a version --------------------------------------------

def _fixture_locations():
    environments = [{"name": "staging", "path": ["apps/staging", "infrastructure/controllers"]},
                    {"name": "production", "path": ["apps/production", "infrastructure/controllers"]}]
    s = parse_settings({"repo": "file:///x", "environments": environments}, environ={})
    found = {}
    for snapshot in sorted(p.name for p in REFS.iterdir()):
        for pin in discover(DirTree(REFS / snapshot), s):
            if pin.location is not None:
                found[(snapshot, pin.location)] = pin.version
    return sorted(found.items(), key=lambda item: (item[0][0], item[0][1].file))


FIXTURE_LOCATIONS = _fixture_locations()


def test_fixtures_hold_the_expected_number_of_versions():
    # 4 snapshots: podinfo ×2 patches each; plus cert-manager, ingress-nginx / envoy-gateway, weave-gitops
    assert len(FIXTURE_LOCATIONS) == 4 * 2 + 2 + 3 + 3 + 2


@pytest.mark.parametrize("key, old", FIXTURE_LOCATIONS,
                         ids=[f"{s}:{l.file}:{l.document}" for (s, l), _ in FIXTURE_LOCATIONS])
def test_every_real_fixture_version_changes_on_one_line(key, old):
    snapshot, location = key
    text = (REFS / snapshot / location.file).read_text(encoding="utf-8")
    assert read_version(text, location) == old

    new = set_version(text, location, "6.5.4")
    assert read_version(new, location) == "6.5.4"
    [(before, after)] = changed_lines(text, new)
    quote = '"' if f'"{old}"' in before else ""
    assert after == before.replace(f"{quote}{old}{quote}", f"{quote}6.5.4{quote}")
    # everything else byte for byte
    assert new.replace(after, before) == text


# ---- synthetic files with everything that must survive ---------------------------------------

NASTY = """\
# Managed by Ferry; edit with care
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: apps}   # flow style on one line
spec:
  type: oci
  url: "oci://registry.local/charts"
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
    interval: 5m   # odd indentation on purpose
    chart:
        spec:
            chart: podinfo
            version: 6.5.3 # {"$imagepolicy": "flux-system:podinfo:tag"}
            sourceRef:
                kind: HelmRepository
                name: charts
    values:
        image:
            tag: 6.5.3
        list:
        -   a
        -   b
"""


def test_comments_setter_markers_indentation_and_separators_survive():
    assert len(parse_documents(NASTY)[0]) == 2  # a comment before the first `---` is no document
    new = set_version(NASTY, loc(document=1), "6.5.4")
    assert_one_line(NASTY, new,
                    '            version: 6.5.3 # {"$imagepolicy": "flux-system:podinfo:tag"}',
                    '            version: 6.5.4 # {"$imagepolicy": "flux-system:podinfo:tag"}')
    assert read_version(new, loc(("spec", "values", "image", "tag"), 1)) == "6.5.3"


@pytest.mark.parametrize("line, new, expected", [
    ('      version: "6.5.3"', "6.5.4", '      version: "6.5.4"'),
    ("      version: '6.5.3'", "6.5.4", "      version: '6.5.4'"),
    ("      version: 6.5.3", "6.5.4", "      version: 6.5.4"),
    ("      version: v6.5.3   # pinned", "v6.6.0", "      version: v6.6.0   # pinned"),
    ('      version: ">=1.0.0" # range', "1.2.0", '      version: "1.2.0" # range'),
    # a plain value that YAML would read as something else gets quoted
    ("      version: 6.5.3", "1.10", '      version: "1.10"'),
    ("      version: 6.5.3", "true", '      version: "true"'),
    ("      version: 6.5.3", "on", '      version: "on"'),  # a boolean in YAML 1.1, as Kubernetes reads
    ("      version: 6.5.3", "null", '      version: "null"'),
    ("      version: 6.5.3", "1e3", '      version: "1e3"'),
    ("      version: 6.5.3", ">=2.0.0", '      version: ">=2.0.0"'),
    ("      version: 6.5.3", "1.2.3+build.1", "      version: 1.2.3+build.1"),
    ("      version: '6.5.3'", "it's", "      version: 'it''s'"),
    ("      version: 1.10", "1.11", '      version: "1.11"'),
    ("      version: !!str 1.10", "1.2.0", "      version: !!str 1.2.0"),
])
def test_quoting_style_is_kept_unless_the_value_needs_quotes(line, new, expected):
    text = f"spec:\n  chart:\n    spec:\n{line}\n      chart: podinfo\n"
    out = set_version(text, loc(), new)
    assert_one_line(text, out, line, expected)
    assert read_version(out, loc()) == new


def test_crlf_line_endings_are_kept():
    text = NASTY.replace("\n", "\r\n")
    new = set_version(text, loc(document=1), "7.0.0")
    assert new == text.replace("version: 6.5.3 #", "version: 7.0.0 #")
    assert new.count("\r\n") == text.count("\r\n")
    assert "\n" not in new.replace("\r\n", "")


@pytest.mark.parametrize("ending", ["", "\n", "\n\n", "   "])
def test_trailing_newline_or_not(ending):
    text = "spec:\n  chart:\n    spec:\n      version: 6.5.3" + ending
    new = set_version(text, loc(), "6.5.4")
    assert new == "spec:\n  chart:\n    spec:\n      version: 6.5.4" + ending


def test_flow_mappings():
    text = "spec: {chart: {spec: {version: 1.0.0, chart: podinfo}}}  # all on one line\n"
    assert set_version(text, loc(), "1.1.0") == \
        "spec: {chart: {spec: {version: 1.1.0, chart: podinfo}}}  # all on one line\n"
    assert set_version(text, loc(), "1.10") == \
        'spec: {chart: {spec: {version: "1.10", chart: podinfo}}}  # all on one line\n'
    text = "spec:\n  chart: {spec: {chart: podinfo, version: '1.0.0'}}\n"
    assert set_version(text, loc(), "2.0.0") == "spec:\n  chart: {spec: {chart: podinfo, version: '2.0.0'}}\n"


def test_only_the_addressed_document_changes():
    doc = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  chart:\n    spec:\n      version: 1.0.0\n"
    text = doc + "---\n" + doc + "...\n---\n" + doc
    new = set_version(text, loc(document=2), "3.0.0")
    assert [read_version(new, loc(document=i)) for i in range(3)] == ["1.0.0", "1.0.0", "3.0.0"]
    assert new == text[:-len("1.0.0\n")] + "3.0.0\n"


def test_json6902_patch_list():
    text = ("- op: replace\n  path: /spec/interval\n  value: 5m\n"
            "- op: replace\n  path: /spec/chart/spec/version\n  value: 1.2.3   # bumped by Ferry\n")
    location = loc((1, "value"))
    assert read_version(text, location) == "1.2.3"
    new = set_version(text, location, "1.2.4")
    assert_one_line(text, new, "  value: 1.2.3   # bumped by Ferry", "  value: 1.2.4   # bumped by Ferry")
    whole = '- op: replace\n  path: /spec/chart/spec\n  value: {chart: podinfo, version: "1.0.0"}\n'
    assert set_version(whole, loc((0, "value", "version")), "1.1.0") == whole.replace("1.0.0", "1.1.0")


def test_same_version_changes_nothing():
    text = "spec:\n  chart:\n    spec:\n      version: '1.0.0'\n"
    assert set_version(text, loc(), "1.0.0") == text


def test_byte_order_mark_is_kept():
    text = "\ufeffspec: {chart: {spec: {version: 1.0.0}}}\n"
    assert set_version(text, loc(), "1.0.1") == "\ufeffspec: {chart: {spec: {version: 1.0.1}}}\n"


def test_escaped_double_quotes_are_read_right():
    text = 'spec:\n  chart:\n    spec:\n      version: "1.0.\\u0030" # escaped 0\n'
    assert read_version(text, loc()) == "1.0.0"
    assert set_version(text, loc(), "1.0.1") == 'spec:\n  chart:\n    spec:\n      version: "1.0.1" # escaped 0\n'


def test_a_file_defining_an_anchor_twice_is_edited_as_flux_reads_it():
    """Flux's parser (go-yaml) reads an anchor defined again, the later one naming the aliases after
    it; the check of the edit refused such a file as invalid YAML (issue 18, item 6)."""
    text = ("common: &labels {team: a}\nmetadata:\n  labels: *labels\nother: &labels {team: b}\n"
            "spec:\n  chart:\n    spec:\n      version: 1.0.0\n  podLabels: *labels\n")
    new = set_version(text, loc(), "1.0.1")
    assert_one_line(text, new, "      version: 1.0.0", "      version: 1.0.1")
    assert parse_documents(new)[0][0]["spec"]["podLabels"] == {"team": "b"}


# ---- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, location, message", [
    ("spec:\n  chart:\n    spec:\n      version: |\n        1.0.0\n", loc(), "is a block scalar"),
    ("spec:\n  chart:\n    spec:\n      version: >-\n        1.0.0\n", loc(), "is a block scalar"),
    ("v: &v 1.0.0\nspec:\n  chart:\n    spec:\n      version: *v\n", loc(), "YAML anchor `&v`"),
    ("spec:\n  chart:\n    spec:\n      version: &v 1.0.0\nother: *v\n", loc(), "YAML anchor `&v`"),
    ("spec:\n  chart:\n    spec:\n      version: 1.0.0\n        -rc.1\n", loc(), "spans several lines"),
    ('spec:\n  chart:\n    spec:\n      version: "1.0.0\n        -rc.1"\n', loc(), "spans several lines"),
    ("spec:\n  chart:\n    spec:\n      chart: podinfo\n", loc(),
     "`spec.chart.spec.version` is not in `apps/dev/release.yaml` any more."),
    ("spec:\n  chart: {}\n", loc(), "any more"),
    ("spec:\n  chart:\n    spec:\n      version: 1.0.0\n", loc(document=1), "any more"),
    ("- op: remove\n  path: /spec/chart/spec/version\n", loc((0, "value")), "any more"),
    ("- op: add\n  path: /x\n  value: 1\n", loc((3, "value")), "any more"),
    ("spec:\n  chart:\n    spec:\n      version:\n", loc(), "is empty"),
    ("spec:\n  chart:\n    spec:\n      version: {a: b}\n", loc(), "holds a mapping"),
    ("spec:\n  chart: [\n", loc(), "is not valid YAML"),
    ("base: &b {version: 1.0.0}\nspec:\n  chart:\n    spec:\n      <<: *b\n", loc(), "merge key"),
])
def test_not_editable(text, location, message):
    with pytest.raises(NotEditable) as error:
        set_version(text, location, "2.0.0")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_version_with_a_line_break_is_refused():
    with pytest.raises(NotEditable, match="one line"):
        set_version("spec:\n  chart:\n    spec:\n      version: 1.0.0\n", loc(), "1.0.1\nx: y")


# ---- reading and diffs -----------------------------------------------------------------------

def test_read_version_keeps_text_and_never_raises():
    assert read_version("spec:\n  chart:\n    spec:\n      version: 1.10\n", loc()) == "1.10"
    assert read_version("spec:\n  chart:\n    spec:\n      version: v2\n", loc()) == "v2"
    assert read_version("spec: {}\n", loc()) is None
    assert read_version("spec:\n  chart:\n    spec:\n      version: true\n", loc()) is None
    assert read_version("spec: [broken\n", loc()) is None
    assert read_version("", loc()) is None
    assert read_version("a: 1\n---\n- {value: 1.2.3}\n", loc((0, "value"), 1)) == "1.2.3"


def test_unified_diff_format():
    old = "a: 1\nspec:\n  version: 1.0.0\nz: 2\n"
    new = set_version(old, loc(("spec", "version")), "1.1.0")
    assert unified_diff("apps/dev/x.yaml", old, new) == (
        "--- a/apps/dev/x.yaml\n+++ b/apps/dev/x.yaml\n@@ -1,4 +1,4 @@\n a: 1\n spec:\n"
        "-  version: 1.0.0\n+  version: 1.1.0\n z: 2\n")
    assert unified_diff("x.yaml", old, old) == ""


def test_unified_diff_without_trailing_newline():
    old, new = "version: 1.0.0", "version: 1.1.0"
    assert unified_diff("x.yaml", old, new) == (
        "--- a/x.yaml\n+++ b/x.yaml\n@@ -1 +1 @@\n-version: 1.0.0\n\\ No newline at end of file\n"
        "+version: 1.1.0\n\\ No newline at end of file\n")
