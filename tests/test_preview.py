"""The pure parts of `!preview` (issue 23): chart archives read safely (every kind of hostile
archive refused in one line), Artifact Hub's notes in both forms, values as key paths, the keys an
environment sets against the new chart, its values against the new schema, CRDs."""
from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from hypothesis import given, strategies as st

from devtools.artifacts import chart_archive
from gitops.errors import PreviewUnavailable, SettingsError, UnsafeArchive
from gitops.preview.charts import ArchiveLimits, read_chart
from gitops.preview.compare import (CRD_ADDED, CRD_CHANGED, CRD_REMOVED, DEFAULT_CHANGED, KEY_REMOVED,
                                    crd_changes, key_findings, major_jump, preview)
from gitops.preview.keys import flatten, key_paths, shown_path, unflatten
from gitops.preview.notes import change_notes, chart_images
from gitops.preview.schema import schema_errors
from gitops.settings import parse_settings
from tests.preview_charts import WEB


def web(version: str):
    files, metadata = WEB[version]
    return read_chart(chart_archive("web", version, files=files, metadata=metadata), f"web {version}")


# ---- archives ----------------------------------------------------------------------------------

def tar_gz(*members) -> bytes:
    """A gzip tar of (TarInfo, data or None) as an attacker would write it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def member(name: str, data: bytes = b"x: 1\n", kind=tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


CHART = member("web/Chart.yaml", b"apiVersion: v2\nname: web\nversion: 1.0.0\n")

HOSTILE = {
    "absolute path": (tar_gz(CHART, member("/etc/cron.d/x")), "a path outside its folder"),
    "parent path": (tar_gz(CHART, member("web/../../x")), "a path outside its folder"),
    "symbolic link": (tar_gz(CHART, member("web/values.yaml", kind=tarfile.SYMTYPE, link="/etc/passwd")),
                      "holds a link"),
    "hard link": (tar_gz(CHART, member("web/values.yaml", kind=tarfile.LNKTYPE, link="web/Chart.yaml")),
                  "holds a link"),
    "device": (tar_gz(CHART, member("web/null", kind=tarfile.CHRTYPE)), "a device or special file"),
    "fifo": (tar_gz(CHART, member("web/pipe", kind=tarfile.FIFOTYPE)), "a device or special file"),
    "second folder": (tar_gz(CHART, member("other/values.yaml")), "outside the chart's folder"),
    "bomb": (tar_gz(CHART, member("web/values.yaml", b"0" * (8 * 1024 * 1024))), "decompression bomb"),
    "not gzip": (b"PK\x03\x04 a zip", "is not a gzip archive"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_in_one_line(kind):
    archive, said = HOSTILE[kind]
    with pytest.raises(UnsafeArchive) as caught:
        read_chart(archive, "web 1.0.0", ArchiveLimits(unpacked=4 * 1024 * 1024))
    message = str(caught.value)
    assert message.startswith("web 1.0.0 ") and said in message and "\n" not in message, message


def test_too_many_members_are_refused():
    archive = tar_gz(CHART, *(member(f"web/templates/t{i}.yaml") for i in range(20)))
    with pytest.raises(UnsafeArchive, match="holds more than 10 files"):
        read_chart(archive, "web 1.0.0", ArchiveLimits(members=10))


def test_an_archive_without_chart_yaml_is_not_a_chart():
    with pytest.raises(PreviewUnavailable, match="holds no `Chart.yaml`"):
        read_chart(tar_gz(member("web/values.yaml")), "web 1.0.0")


def test_a_chart_is_read_into_plain_data():
    chart = web("7.0.0")
    assert chart.version == "7.0.0" and chart.app_version == "1.0.0"
    assert chart.values["service"] == {"port": 8080}
    assert chart.schema["properties"]["replicaCount"]["type"] == "integer"
    assert list(chart.crds) == ["widgets.example.com"] and list(chart.crds["widgets.example.com"]) == ["v1"]
    assert chart.problems == ()


# ---- notes and images ----------------------------------------------------------------------------

def test_change_notes_in_both_forms_security_first_then_newest():
    notes, problems = change_notes([
        ("1.1.0", "- Plain note one\n- Plain note two\n"),
        ("1.2.0", "- kind: fixed\n  description: A fix\n- kind: removed\n  description: Old flag\n"),
        ("1.0.1", "- kind: security\n  description: CVE\n  links:\n    - name: advisory\n      url: https://x.example/a\n"),
    ])
    assert problems == []
    assert [(n.version, n.kind, n.text) for n in notes] == [
        ("1.0.1", "security", "CVE"), ("1.2.0", "removed", "Old flag"), ("1.2.0", "fixed", "A fix"),
        ("1.1.0", "", "Plain note one"), ("1.1.0", "", "Plain note two")]
    assert notes[0].links == (("advisory", "https://x.example/a"),)
    assert [n.breaking for n in notes] == [True, True, False, False, False]


def test_change_notes_that_do_not_load_are_said():
    notes, problems = change_notes([("2.0.0", "- kind: added\n  description: [unclosed\n")])
    assert notes == () and len(problems) == 1 and "2.0.0" in problems[0]


def test_images_annotation():
    assert chart_images({"artifacthub.io/images": "- name: a\n  image: r/a:1\n- image: r/b:2\n"}) == \
        {"a": "r/a:1", "b": "r/b:2"}


# ---- keys --------------------------------------------------------------------------------------

keys = st.text(alphabet="ab.\"[é", min_size=1, max_size=3)
leaves = st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.just({}))
values = st.recursive(st.dictionaries(keys, leaves, max_size=3),
                      lambda inner: st.dictionaries(keys, st.one_of(leaves, inner), max_size=3), max_leaves=12)


@given(values)
def test_flatten_round_trips(tree):
    flat = flatten(tree)
    assert unflatten(flat) == tree
    assert set(flat) <= key_paths(tree)
    assert all(isinstance(v, dict) and not v or not isinstance(v, dict) for v in flat.values())


def test_shown_paths():
    assert shown_path(("ingress", "hosts")) == "ingress.hosts"
    assert shown_path(("podLabels", "app.kubernetes.io/name")) == 'podLabels["app.kubernetes.io/name"]'


def test_keys_the_environment_sets():
    old = {"replicaCount": 1, "ingress": {"hosts": ["a"], "enabled": False}, "podAnnotations": {},
           "image": {"tag": "1"}, "auth": {"password": ""}}
    new = {"replicaCount": 2, "ingress": {"enabled": False}, "podAnnotations": {},
           "image": {"tag": "1"}, "security": {"auth": {"password": ""}}}
    env = {"replicaCount": 3, "ingress": {"hosts": ["b"]}, "podAnnotations": {"team": "a"},
           "image": {"tag": "2"}, "auth": {"password": "p"}, "extra": {"mine": 1}}
    found = {(f.key, f.kind): f for f in key_findings(old, new, env)}
    assert set(found) == {("replicaCount", DEFAULT_CHANGED), ("ingress.hosts", KEY_REMOVED),
                          ("auth.password", KEY_REMOVED)}
    assert (found["replicaCount", DEFAULT_CHANGED].old, found["replicaCount", DEFAULT_CHANGED].new) == (1, 2)
    # A key of that name appeared elsewhere: said as where it may have moved. `extra.mine` and
    # `podAnnotations.team` are in neither chart's defaults: the environment's own, not reported.
    assert found["auth.password", KEY_REMOVED].moved_to == ("security", "auth", "password")
    assert found["ingress.hosts", KEY_REMOVED].moved_to is None


def test_major_jumps():
    assert major_jump("6.5.0", "7.0.0") and major_jump("v1.0.0", "v2.0.0") and major_jump("0.3.1", "0.4.0")
    assert not major_jump("6.5.0", "6.6.0") and not major_jump("0.3.1", "0.3.2") and not major_jump("x", "y")


# ---- schema ------------------------------------------------------------------------------------

def test_values_against_the_new_schema_with_the_defaults_merged():
    schema = {"type": "object", "required": ["service"],
              "properties": {"replicaCount": {"type": "integer", "minimum": 1},
                             "service": {"type": "object", "required": ["port"],
                                         "properties": {"port": {"type": "integer"}}}}}
    errors, problem = schema_errors(schema, {"replicaCount": 0, "service": {"port": "http"}},
                                    {"service": {"port": 80}})
    assert problem == ""
    assert errors == (("replicaCount", "fails `minimum: 1`"), ("service.port", "must be of type integer"))
    assert schema_errors(schema, {}, {"service": {"port": 80}}) == ((), "")  # the defaults provide it


def test_the_draft_the_schema_declares_is_used():
    # `dependentRequired` exists from 2019-09 on: Draft 7 (the default) ignores it.
    rule = {"type": "object", "dependentRequired": {"tls": ["certificate"]}}
    assert schema_errors(rule, {"tls": True}, {}) == ((), "")
    declared = {"$schema": "https://json-schema.org/draft/2020-12/schema", **rule}
    assert schema_errors(declared, {"tls": True}, {}) == (
        (("(top level)", "fails the schema's `dependentRequired` rule"),), "")


def test_a_remote_reference_is_never_fetched():
    errors, problem = schema_errors({"$ref": "https://example.invalid/schema.json"}, {"a": 1}, {})
    assert errors == () and "refers to what Ferry cannot resolve" in problem


# ---- the whole comparison ------------------------------------------------------------------------

def test_crd_changes():
    old = {"a.x": {"v1": "s1"}, "b.x": {"v1": "s1"}, "c.x": {"v1": "s1"}}
    new = {"a.x": {"v1": "s2", "v2": "s3"}, "c.x": {"v1": "s1"}, "d.x": {"v1": "s1"}}
    assert crd_changes(old, new) == (("a.x", CRD_CHANGED, "versions added v2; schema of v1 changed"),
                                     ("b.x", CRD_REMOVED, "v1"), ("d.x", CRD_ADDED, "v1"))


def test_the_preview_of_web_six_to_seven():
    found = preview("web", "qa", web("6.0.0"), web("7.0.0"),
                    [("6.2.0", WEB["6.2.0"][1]["annotations"]["artifacthub.io/changes"]),
                     ("6.1.0", WEB["6.1.0"][1]["annotations"]["artifacthub.io/changes"])],
                    {"replicaCount": "3", "ingress": {"hosts": ["w"]}, "service": {"port": 9090}})
    assert found.major and not found.clean and found.kube_version == ("", ">=1.27.0-0")
    assert [f.key for f in found.removed_keys] == ["ingress.hosts"]
    assert found.schema_errors == (("replicaCount", "must be of type integer"),)
    assert [n.version for n in found.notes] == ["7.0.0", "7.0.0", "6.2.0", "6.2.0", "6.1.0"]
    assert found.crds == (("widgets.example.com", CRD_ADDED, "v1"),)
    assert ("metrics", "", "ghcr.io/example/metrics:1.0.0") in found.images
    clean = preview("web", "qa", web("6.0.0"), web("6.1.0"), (), {"replicaCount": "3"})
    assert clean.clean and not clean.major and clean.findings == ()
    unknown = preview("web", "qa", web("6.0.0"), web("7.0.0"), (), None, ["Secret `s`"])
    assert unknown.findings == () and unknown.schema_errors == () and unknown.unknown == ("Secret `s`",)


# ---- settings ----------------------------------------------------------------------------------

def test_preview_settings_and_policy_are_checked():
    base = {"repo": {"url": "file:///x.git"}, "environments": [{"name": "dev", "path": "apps/dev"}]}
    found = parse_settings(base, {})
    assert (found.preview.max_mb, found.preview.timeout, found.registry_ca_file) == (10.0, 30.0, "")
    assert found.environment("dev").policy.preview == ""
    clean = {**base, "environments": [{"name": "prod", "path": "p", "policy": {"preview": "require_clean"}}]}
    assert parse_settings(clean, {}).environment("prod").policy.preview == "require_clean"
    for raw, said in (({**base, "preview": {"max_mb": 0}}, "`preview.max_mb` must be a number"),
                      ({**base, "environments": [{"name": "p", "path": "p", "policy": {"preview": "yes"}}]},
                       "`environments[0].policy.preview` must be `require_clean`"),
                      ({**base, "registry_ca_file": "/nonexistent.pem"}, "`registry_ca_file` names")):
        with pytest.raises(SettingsError) as caught:
            parse_settings(raw, {})
        assert said in str(caught.value)
