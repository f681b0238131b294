"""Discovery of environments given by their cluster entry: Flux Kustomizations followed the way
kustomize-controller applies them (paths, patches, postBuild variables, namespaces, prefixes)."""
from __future__ import annotations

import textwrap

import pytest

from gitops.flux import kustomizations as flux, substitution
from gitops.flux.discovery import DirTree, discover
from gitops.changes.editing import read_version, set_version, unified_diff
from gitops.model import PinLocation, Problem
from gitops.settings import parse_settings
from tests.flux_clusters import cluster_files, cluster_settings

REGISTRY = "oci://registry.test:5000"


def write(root, files: dict) -> DirTree:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n") if text.startswith("\n") else text)
    return DirTree(root)


def settings(envs: dict, url: str = "file:///srv/fleet.git", branch: str = "main"):
    return parse_settings({"repo": {"url": url, "branch": branch},
                           "environments": [{"name": n, "path": p} for n, p in envs.items()]}, environ={})


def pins_of(tree, envs: dict, **kw):
    problems = []
    pins = discover(tree, settings(envs, **kw), warnings=problems)
    return {(p.environment, p.app): p for p in pins}, problems


@pytest.fixture
def fleet(tmp_path):
    tree = write(tmp_path, cluster_files(REGISTRY))
    problems = []
    pins = discover(tree, parse_settings(cluster_settings("file:///srv/fleet.git"), environ={}),
                    warnings=problems)
    return tree, {(p.environment, p.app): p for p in pins}, problems


# ---- the cluster entry ------------------------------------------------------------------------

def test_cluster_entry_is_followed_to_every_release(fleet):
    _, pins, problems = fleet
    assert sorted(a for e, a in pins if e == "staging") == [
        "auth/dragonfly", "cache/dragonfly", "cert-manager", "metrics", "podinfo", "redis"]
    assert (pins["staging", "podinfo"].namespace, pins["staging", "auth/dragonfly"].namespace) == ("apps", "auth")
    assert pins["production", "cert-manager"].namespace == "cert-manager"
    # The other source is listed, with its reason, once per environment.
    assert [str(p) for p in problems] == [
        f"{env} · `clusters/{env}/tenants.yaml`: Kustomization flux-system/tenants is not followed: its "
        f"manifests come from an OCI artifact (OCIRepository flux-system/tenants)." for env in ("staging", "production")]


def test_a_kustomization_patch_is_the_pin_and_the_base_is_left_alone(fleet):
    tree, pins, _ = fleet
    pin = pins["staging", "podinfo"]
    assert (pin.version, pin.kind) == ("6.5.1", "patch")
    assert pin.location == PinLocation("clusters/staging/apps.yaml", 0, ("spec", "patches", 0, "patch"),
                                       inner=(0, (0, "value")))
    before = tree.read(pin.location.file)
    after = set_version(before, pin.location, "6.5.2")
    diff = unified_diff(pin.location.file, before, after)
    assert "-          value: 6.5.1\n+          value: 6.5.2\n" in diff
    assert sum(1 for line in diff.splitlines() if line.startswith(("-", "+")) and line[1:2] != line[0]) == 2
    assert read_version(after, pin.location) == "6.5.2"


def test_inline_and_config_map_variables_are_pins_where_they_are_defined(fleet):
    _, pins, _ = fleet
    redis = pins["production", "redis"]
    assert (redis.version, redis.kind, redis.shared) == ("18.0.0", "substitute", False)
    assert redis.location == PinLocation("clusters/production/apps.yaml", 0,
                                         ("spec", "postBuild", "substitute", "REDIS_VERSION"))
    assert "`${REDIS_VERSION}`" in redis.origin
    cert = pins["staging", "cert-manager"]
    assert (cert.version, cert.kind) == ("v1.14.0", "substitute")
    assert cert.location == PinLocation("clusters/staging/cluster-vars.yaml", 0, ("data", "CERT_MANAGER_VERSION"))
    assert "ConfigMap flux-system/cluster-vars" in cert.origin


def test_a_variable_used_for_more_than_the_version_is_shared(fleet):
    _, pins, _ = fleet
    metrics = pins["staging", "metrics"]
    assert metrics.version == "6.5.0" and metrics.shared
    assert metrics.shared_by == ("`${METRICS_VERSION}` elsewhere in `apps/base/metrics/release.yaml`",)


def test_one_oci_repository_read_by_two_releases_is_shared_and_named(fleet):
    _, pins, _ = fleet
    auth = pins["staging", "auth/dragonfly"]
    assert auth.version == "18.1.0" and auth.kind == "ocirepository"
    assert "staging/cache/dragonfly" in auth.shared_by
    assert auth.shared_with == ("staging", "production")


# ---- substitution as Flux does it -------------------------------------------------------------

def _kustomization(name: str, path: str, extra: str = "", source: str = "flux-system",
                   kind: str = "GitRepository") -> str:
    return (f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  path: {path}\n  sourceRef:\n"
            f"    kind: {kind}\n    name: {source}\n" + extra)


def _release(name: str, version: str, namespace: str = "apps", labels: str = "") -> str:
    meta = f"  labels:\n{labels}" if labels else ""
    return (f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {name}\n"
            f"  namespace: {namespace}\n{meta}spec:\n  chart:\n    spec:\n      chart: {name}\n"
            f"      version: \"{version}\"\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n")


def test_escapes_disabled_resources_secrets_and_defaults(tmp_path):
    vars_ = ("  postBuild:\n    substitute:\n      A: \"1.0.0\"\n    substituteFrom:\n"
             "      - kind: Secret\n        name: secret-vars\n")
    tree = write(tmp_path, {
        "clusters/dev/apps.yaml": _kustomization("apps", "./apps", vars_),
        "apps/escaped.yaml": _release("escaped", "$${A}"),
        "apps/disabled.yaml": _release("disabled", "${A}",
                                       labels="    kustomize.toolkit.fluxcd.io/substitute: disabled\n"),
        "apps/secret.yaml": _release("secret", "${FROM_SECRET}"),
        "apps/inline.yaml": _release("inline", "${A}"),
        "apps/parts.yaml": _release("parts", "${A}-${A}"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    escaped = pins["dev", "escaped"]
    assert escaped.version == "${A}" and escaped.refusal  # Flux writes `${A}`: never edited
    disabled = pins["dev", "disabled"]
    assert disabled.version == "${A}" and "does not substitute" in disabled.refusal
    secret = pins["dev", "secret"]
    assert secret.unknown and "Secret flux-system/secret-vars" in secret.refusal
    assert pins["dev", "inline"].version == "1.0.0" and not pins["dev", "inline"].refusal
    parts = pins["dev", "parts"]
    assert parts.version == "1.0.0-1.0.0" and parts.location is None and "more than one variable" in parts.refusal


def test_defaults_only_when_flux_substitutes(tmp_path):
    tree = write(tmp_path, {
        "clusters/dev/apps.yaml": _kustomization("apps", "./apps", "  postBuild:\n    substitute:\n      X: y\n"),
        "clusters/dev/bare.yaml": _kustomization("bare", "./bare"),
        "apps/r.yaml": _release("r", "${R_VERSION:=2.0.0}"),
        "bare/s.yaml": _release("s", "${S_VERSION:=3.0.0}", namespace="other"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    r = pins["dev", "r"]
    assert r.version == "2.0.0" and r.location is None and "nothing defines" in r.refusal
    s = pins["dev", "s"]  # no variable at all: Flux does not substitute (WithVariables)
    assert s.version == "${S_VERSION:=3.0.0}" and "does not substitute" in s.refusal


def test_substitute_values():
    variables = substitution.Variables({"A": substitution.Variable("A", "1", None, "x"), "E": substitution.Variable("E", "", None, "x")})
    assert substitution.substitute("${A}", variables).text == "1"
    assert substitution.substitute("${B:=2}", variables).text == "2"
    assert substitution.substitute("${E:=3}", variables).text == "3"
    assert substitution.substitute("${E=3}", variables).text == ""
    assert substitution.substitute("${B}", variables).text == ""
    assert substitution.substitute("$${A}", variables).text == "${A}"
    assert substitution.substitute("$A", variables).text == "$A"
    assert substitution.substitute("${A:0:1}", variables).text is None


# ---- names, namespaces, prefixes --------------------------------------------------------------

def test_prefix_suffix_and_target_namespace_name_the_release(tmp_path):
    tree = write(tmp_path, {
        "clusters/dev/apps.yaml": _kustomization(
            "apps", "./apps", "  targetNamespace: team-a\n  namePrefix: a-\n  patches:\n"
            "    - target:\n        kind: HelmRelease\n        name: a-web-x\n      patch: |\n"
            "        - op: replace\n          path: /spec/chart/spec/version\n          value: 9.9.9\n"),
        "apps/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                   "nameSuffix: -x\nresources:\n  - web.yaml\n",
        "apps/web.yaml": _release("web", "1.0.0"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    pin = pins["dev", "a-web-x"]
    assert (pin.namespace, pin.version, pin.kind) == ("team-a", "9.9.9", "patch")


def test_sources_are_resolved_in_their_namespace(tmp_path):
    repo = ("apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n"
            "  namespace: {ns}\nspec:\n  type: oci\n  url: oci://{host}/charts\n")
    tree = write(tmp_path, {
        "clusters/dev/apps.yaml": _kustomization("apps", "./apps"),
        "apps/one.yaml": _release("one", "1.0.0", namespace="a") + "---\n" + repo.format(ns="a", host="a.test"),
        "apps/two.yaml": _release("two", "1.0.0", namespace="b") + "---\n" + repo.format(ns="b", host="b.test"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    assert pins["dev", "one"].source.host == "a.test" and pins["dev", "two"].source.host == "b.test"


# ---- which Kustomizations are followed --------------------------------------------------------

def test_only_the_managed_repository_and_branch_are_followed(tmp_path):
    git_repo = ("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {name}\n"
                "  namespace: flux-system\nspec:\n  url: {url}\n  ref:\n    branch: {branch}\n")
    tree = write(tmp_path, {
        "clusters/dev/sources.yaml": "---\n".join([
            git_repo.format(name="same", url="ssh://git@github.com/acme/fleet.git", branch="main"),
            git_repo.format(name="other", url="https://github.com/acme/other", branch="main"),
            git_repo.format(name="release", url="https://github.com/acme/fleet", branch="release")]),
        "clusters/dev/ks.yaml": "---\n".join([
            _kustomization("same", "./same", source="same"), _kustomization("other", "./other", source="other"),
            _kustomization("release", "./rel", source="release"),
            _kustomization("bucket", "./b", source="b", kind="Bucket"),
            _kustomization("missing", "./nowhere")]),
        "same/r.yaml": _release("same", "1.0.0"),
        "other/r.yaml": _release("other", "1.0.0"),
        "rel/r.yaml": _release("rel", "1.0.0"),
    })
    pins, problems = pins_of(tree, {"dev": "clusters/dev"}, url="https://github.com/acme/fleet")
    assert [a for _, a in pins] == ["same"]
    said = " ".join(p.reason for p in problems)
    assert "GitRepository flux-system/other (https://github.com/acme/other)" in said
    assert "follows branch release, not main" in said
    assert "come from a bucket" in said
    assert "applies `nowhere`, which is not in the repository" in said


def test_same_repository_forms():
    assert flux.same_repository("ssh://git@github.com/acme/fleet", "https://github.com/acme/fleet.git")
    assert flux.same_repository("git@github.com:acme/fleet.git", "https://GitHub.com/acme/fleet/")
    assert not flux.same_repository("https://github.com/acme/fleet", "https://github.com/acme/fleet2")
    assert not flux.same_repository("", "https://github.com/acme/fleet")


def test_nested_kustomizations_patched_by_their_parent(tmp_path):
    # The home-lab pattern: a cluster Kustomization applies one Kustomization per app and patches
    # them all to take the cluster's variables.
    parent_patch = ("  patches:\n    - target:\n        kind: Kustomization\n      patch: |\n"
                    "        apiVersion: kustomize.toolkit.fluxcd.io/v1\n        kind: Kustomization\n"
                    "        metadata:\n          name: not-used\n        spec:\n          postBuild:\n"
                    "            substituteFrom:\n              - kind: ConfigMap\n                name: cluster-settings\n")
    tree = write(tmp_path, {
        "kubernetes/flux/cluster/ks.yaml": _kustomization("cluster-apps", "./kubernetes/apps", parent_patch),
        "kubernetes/flux/cluster/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                 "  name: cluster-settings\n  namespace: flux-system\n"
                                                 "data:\n  WEB_VERSION: 4.0.0\n",
        "kubernetes/apps/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                                              "kind: Kustomization\nresources:\n  - web/ks.yaml\n",
        "kubernetes/apps/web/ks.yaml": _kustomization("web", "./kubernetes/apps/web/app"),
        "kubernetes/apps/web/app/r.yaml": _release("web", "${WEB_VERSION}"),
    })
    pins, problems = pins_of(tree, {"home": "kubernetes/flux/cluster"})
    web = pins["home", "web"]
    assert (web.version, web.kind) == ("4.0.0", "substitute")
    assert web.location == PinLocation("kubernetes/flux/cluster/settings.yaml", 0, ("data", "WEB_VERSION"))
    assert problems == []


PARENT_WRITES = {  # the patch of `clusters/dev` (indented as its `patch: |` text) -> what it writes
    "the same patches": "- op: replace\n  path: /spec/patches/0/patch\n  value: |\n"
                        "    - {op: replace, path: /spec/chart/spec/version, value: 2.0.0}\n",
    "other patches": "- op: replace\n  path: /spec/patches/0/patch\n  value: |\n"
                     "    - {op: replace, path: /spec/chart/spec/version, value: 3.0.0}\n",
    "the same, merged": "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n"
                        "spec:\n  patches:\n    - target: {kind: HelmRelease, name: web}\n      patch: |\n"
                        "        - {op: replace, path: /spec/chart/spec/version, value: 2.0.0}\n",
    "another field": "- op: replace\n  path: /spec/interval\n  value: 5m\n",
}


@pytest.mark.parametrize("writes", sorted(PARENT_WRITES))
def test_patches_a_parent_writes_are_not_the_files(tmp_path, writes):
    """`clusters/dev` patches the `apps` Kustomization: where it writes `spec.patches`, Flux
    applies its value, not the file's, even one equal to the file's (an edit of the file would
    change nothing): the version is refused, said where to edit."""
    own = ("  patches:\n    - target:\n        kind: HelmRelease\n        name: web\n"
           "      patch: |\n        - {op: replace, path: /spec/chart/spec/version, value: 2.0.0}\n")
    body = "".join(f"      {line}\n" for line in PARENT_WRITES[writes].splitlines())
    tree = write(tmp_path, {
        "clusters/dev/kustomization.yaml": "resources:\n  - apps.yaml\npatches:\n  - target:\n"
                                           "      kind: Kustomization\n    patch: |\n" + body,
        "clusters/dev/apps.yaml": _kustomization("apps", "./apps", own),
        "apps/web.yaml": _release("web", "1.0.0"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    web = pins["dev", "web"]
    if writes == "another field":
        assert (web.version, web.refusal, web.location.file) == ("2.0.0", "", "clusters/dev/apps.yaml")
    else:
        assert web.version == ("3.0.0" if writes == "other patches" else "2.0.0")
        assert web.refusal == "a patch its parent Kustomization rewrites" and web.location is None


def test_resource_sets_and_empty_environments_are_said(tmp_path):
    tree = write(tmp_path, {
        "clusters/dev/rs.yaml": "apiVersion: fluxcd.controlplane.io/v1\nkind: ResourceSet\nmetadata:\n"
                                "  name: apps\n  namespace: flux-system\nspec:\n  resources:\n"
                                "    - apiVersion: helm.toolkit.fluxcd.io/v2\n      kind: HelmRelease\n"
                                "      metadata:\n        name: x\n",
        "clusters/dev/broken.yaml": "kind: Kustomization\nspec: [oops\n",
    })
    _, problems = pins_of(tree, {"dev": "clusters/dev"})
    said = [str(p) for p in problems]
    assert any("ResourceSet flux-system/apps (Flux Operator) generates HelmReleases" in s for s in said)
    assert any(s.startswith("dev · `clusters/dev/broken.yaml`: not valid YAML") for s in said)
    assert Problem("dev", "clusters/dev", "no HelmRelease found there.") in problems


def test_values_flux_changes_are_not_replayed_as_if_they_were_files(fleet, tmp_path):
    _, pins, _ = fleet
    metrics = pins["staging", "metrics"]
    assert "substitutes" in metrics.values_unknown  # `${METRICS_VERSION}` in its values
    assert pins["staging", "podinfo"].values_unknown == ""  # its Flux patch sets only the version
    tree = write(tmp_path / "v", {
        "clusters/dev/apps.yaml": _kustomization(
            "apps", "./apps", "  patches:\n    - target:\n        kind: HelmRelease\n      patch: |\n"
            "        - op: add\n          path: /spec/values/replicas\n          value: 3\n"),
        "apps/web.yaml": _release("web", "1.0.0"),
    })
    pins, _ = pins_of(tree, {"dev": "clusters/dev"})
    assert pins["dev", "web"].values_unknown == "a patch of Kustomization flux-system/apps (`clusters/dev/apps.yaml`) changes them"
