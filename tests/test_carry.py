"""Carrying an inventory forward across version-only commits must equal discovering again."""
import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.changes.carry import carry_forward, discover
from gitops.flux.discovery import DirTree
from gitops.settings import parse_settings
from tests.carry_fleet import FLEET_SETTINGS, NOT_VERSIONS, VERSIONS_ONLY, fleet

SETTINGS = parse_settings(demo_settings("file:///fleet.git"), environ={})
REGISTRY = "oci://127.0.0.1:5000/charts"


def tree(tmp_path, name, files):
    root = tmp_path / name
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return DirTree(root)


def carried(tmp_path, change):
    old_files = demo_files(REGISTRY)
    new_files = dict(old_files)
    change(new_files)
    old, new = tree(tmp_path, "old", old_files), tree(tmp_path, "new", new_files)
    return carry_forward(discover(old, SETTINGS), old, new), discover(new, SETTINGS)


@pytest.mark.parametrize("change", [
    lambda f: f.update({"apps/qa/redis.yaml": f["apps/qa/redis.yaml"].replace("version: 18.1.0", "version: 19.0.0")}),
    lambda f: f.update({"apps/prod/podinfo-values.yaml": f["apps/prod/podinfo-values.yaml"].replace('"6.5.0"', '">=6.5.0"')}),
    lambda f: f.update({"apps/dev/cert-manager.yaml": f["apps/dev/cert-manager.yaml"].replace("tag: v1.15.0", "tag: v1.16.0"),
                        "apps/dev/redis.yaml": f["apps/dev/redis.yaml"].replace("19.0.0", "18.0.0"),
                        "README.md": "# changed too\n"}),
    lambda f: f.update({"README.md": "# only prose\n"}),
    # written by hand, in another quoting than Ferry's editor would keep
    lambda f: f.update({"apps/prod/podinfo-values.yaml": f["apps/prod/podinfo-values.yaml"].replace('"6.5.0"', "'6.6.0'")}),
])
def test_version_bumps_are_carried_exactly(tmp_path, change):
    result, fresh = carried(tmp_path, change)
    assert result is not None
    assert result == fresh


@pytest.mark.parametrize("change", [
    lambda f: f.update({"apps/qa/redis.yaml": f["apps/qa/redis.yaml"].replace("architecture: replication", "architecture: standalone")}),
    lambda f: f.update({"apps/qa/new.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}),
    lambda f: f.pop("apps/qa/cert-manager.yaml"),
    lambda f: f.update({"apps/base/podinfo/release.yaml": f["apps/base/podinfo/release.yaml"].replace("interval: 50m", "interval: 5m")}),
    lambda f: f.update({"apps/qa/redis.yaml": f["apps/qa/redis.yaml"].replace("version: 18.1.0", "version: [1]")}),
    # a bump with a comment on its line: the comment is no version
    lambda f: f.update({"apps/qa/redis.yaml": f["apps/qa/redis.yaml"].replace("version: 18.1.0", "version: 19.0.0 # x")}),
])
def test_anything_else_asks_for_discovery(tmp_path, change):
    result, _ = carried(tmp_path, change)
    assert result is None


@pytest.mark.parametrize("change", [
    # a comment, a blank line: the same documents, markers and references
    lambda f: f.update({"apps/qa/redis.yaml": "# redis for qa, see the runbook\n\n" + f["apps/qa/redis.yaml"]}),
    # a value quoted now, and a comment on a kustomization's resource list
    lambda f: f.update({"apps/qa/redis.yaml": f["apps/qa/redis.yaml"].replace(
        "architecture: replication", 'architecture: "replication"'),
        "apps/qa/kustomization.yaml": f["apps/qa/kustomization.yaml"].replace("resources:", "resources:  # all of qa")}),
    # a comment in a file no kind discovery looks for is named in, nor is after
    lambda f: f.update({"apps/base/podinfo/namespace.yaml": f["apps/base/podinfo/namespace.yaml"] + "# owned by web\n"}),
])
def test_a_text_discovery_reads_alike_is_carried_as_it_was(tmp_path, change):
    """Discovery reads a text through its documents, setter markers and variable references: when
    the three read the same, the inventory is carried as it was (no environment built again)."""
    result, fresh = carried(tmp_path, change)
    assert result is not None and result == fresh


@pytest.mark.parametrize("change", [
    # a kind discovery looks for, named in a comment: the file is parsed now, its Namespace kept
    lambda f: f.update({"apps/base/podinfo/namespace.yaml": f["apps/base/podinfo/namespace.yaml"]
                        + "# the HelmRelease lives here\n"}),
    # a variable named in a comment: Flux substitutes in the whole text
    lambda f: f.update({"apps/qa/redis.yaml": "# ${REDIS_TIER}\n" + f["apps/qa/redis.yaml"]}),
    # a comment and a bump in one file: neither read alike nor only a version
    lambda f: f.update({"apps/qa/redis.yaml": "# bumped\n" + f["apps/qa/redis.yaml"].replace(
        "version: 18.1.0", "version: 19.0.0")}),
])
def test_a_text_read_otherwise_is_not_carried(tmp_path, change):
    result, _ = carried(tmp_path, change)
    assert result is None


def test_cluster_entry_bumps_are_carried_exactly(tmp_path):
    """A Flux Kustomization patch line and a ConfigMap variable: carried as discovery would read them."""
    from tests.flux_clusters import cluster_files, cluster_settings
    settings = parse_settings(cluster_settings("file:///fleet.git"), environ={})
    old_files = cluster_files(REGISTRY)
    new_files = dict(old_files)
    new_files["clusters/staging/apps.yaml"] = old_files["clusters/staging/apps.yaml"].replace(
        "value: 6.5.1", "value: 6.5.3")
    new_files["clusters/production/cluster-vars.yaml"] = old_files["clusters/production/cluster-vars.yaml"].replace(
        "CERT_MANAGER_VERSION: v1.14.0", "CERT_MANAGER_VERSION: v1.15.0")
    old, new = tree(tmp_path, "old", old_files), tree(tmp_path, "new", new_files)
    result = carry_forward(discover(old, settings), old, new)
    assert result is not None and result == discover(new, settings)
    # The variable that also feeds an image tag, or another op in the same inline patch: discover again.
    for path, old_text, new_text in (
            ("clusters/staging/apps.yaml", 'METRICS_VERSION: "6.5.0"', 'METRICS_VERSION: "6.5.1"'),
            ("clusters/staging/apps.yaml", "path: /spec/chart/spec/version", "path: /spec/chart/spec/version\n"
             "            - op: add\n              path: /spec/values/x\n              value: 1")):
        changed = dict(old_files)
        changed[path] = old_files[path].replace(old_text, new_text)
        assert changed[path] != old_files[path]
        other = tree(tmp_path, f"other-{len(new_text)}", changed)
        assert carry_forward(discover(old, settings), old, other) is None


# ---- what discovery reads, whatever its name: each carried as discovery reads it, or not at all --

def fleet_trees(tmp_path, *changes):
    """The fleet's trees before and after each change in turn."""
    files = fleet("127.0.0.1:5000")
    trees = [tree(tmp_path, "0", files)]
    for i, change in enumerate(changes, 1):
        files = {**files, **change(files)}
        trees.append(tree(tmp_path, str(i), files))
    return trees


@pytest.mark.parametrize("kind", sorted(NOT_VERSIONS))
def test_a_change_discovery_reads_under_any_name_is_not_carried(tmp_path, kind):
    settings = parse_settings(FLEET_SETTINGS, environ={})
    old, new = fleet_trees(tmp_path, NOT_VERSIONS[kind])
    before, after = discover(old, settings), discover(new, settings)
    assert before.pins != after.pins  # the change matters to what Flux applies
    assert carry_forward(before, old, new) is None


@pytest.mark.parametrize("kind", sorted(VERSIONS_ONLY))
def test_a_version_rewritten_under_any_name_is_carried_exactly(tmp_path, kind):
    settings = parse_settings(FLEET_SETTINGS, environ={})
    marked = NOT_VERSIONS["marker added"] if kind == "marked tag" else (lambda f: {})
    _, old, new = fleet_trees(tmp_path, marked, VERSIONS_ONLY[kind])
    before, after = discover(old, settings), discover(new, settings)
    assert before.pins != after.pins
    carried = carry_forward(before, old, new)
    assert carried is not None and carried == after


def test_a_setter_marker_that_reads_the_line_as_a_repository_is_not_carried(tmp_path):
    """`…:name` on a tag's own line: the line is the image's repository too."""
    settings = parse_settings(FLEET_SETTINGS, environ={})
    mark = lambda f: {"apps/base/podinfo/helm-release": f["apps/base/podinfo/helm-release"].replace(
        "replicaCount: 1\n", "replicaCount: 1\n    image:\n      repository: ghcr.io/acme/podinfo\n"
        '      tag: 9.0.0 # {"$imagepolicy": "flux-system:x:name"}\n')}
    _, old, new = fleet_trees(tmp_path, mark, lambda f: {
        "apps/base/podinfo/helm-release": f["apps/base/podinfo/helm-release"].replace("tag: 9.0.0", "tag: 9.0.1")})
    before, after = discover(old, settings), discover(new, settings)
    assert any(p.location and p.location.path[-1] == "tag" and p.source_url == "9.0.0" for p in before.pins)
    assert any(p.source_url == "9.0.1" for p in after.pins)
    assert carry_forward(before, old, new) is None


def test_a_tag_rewritten_with_its_digest_is_not_carried(tmp_path):
    """A tag written with its digest is a line discovery refuses (never rewritten without its
    digest): the carry must not take it for a version bump (the property test found it with a
    kustomize `images:` newTag)."""
    base = "apps/base/podinfo/"
    files = {
        base + "kustomization.yaml": "resources:\n  - release.yaml\n  - repository.yaml\n",
        base + "release.yaml": ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
                                "  name: podinfo\n  namespace: podinfo\nspec:\n  chart:\n    spec:\n"
                                "      chart: podinfo\n      version: \"6.5.0\"\n      sourceRef:\n"
                                "        kind: HelmRepository\n        name: charts\n"),
        base + "repository.yaml": ("apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
                                   "metadata:\n  name: charts\n  namespace: podinfo\nspec:\n  type: oci\n"
                                   "  url: oci://127.0.0.1:5000/charts\n"),
        "apps/prod/kustomization.yaml": ("resources:\n  - ../base/podinfo\nimages:\n"
                                         "  - name: ghcr.io/acme/podinfo\n    newTag: 3.1.0\n"),
    }
    settings = parse_settings({"repo": {"url": "file:///fleet.git"},
                               "environments": [{"name": "prod", "path": "apps/prod"}]}, environ={})
    digest = "sha256:" + "a" * 64
    old = tree(tmp_path, "0", files)
    new = tree(tmp_path, "1", {**files, "apps/prod/kustomization.yaml": files["apps/prod/kustomization.yaml"]
                               .replace("newTag: 3.1.0", f"newTag: 1.0.0@{digest}")})
    before, after = discover(old, settings), discover(new, settings)
    assert any(p.version == f"1.0.0@{digest}" and p.refusal for p in after.pins)
    assert carry_forward(before, old, new) is None
