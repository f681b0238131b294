"""Discovery: which HelmReleases run in which environment, and where their chart versions live."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gitops.changes.editing import read_version, set_version, unified_diff
from gitops.flux.discovery import DirTree, discover, discover_environments, qualify_clashes
from gitops.flux.manifests import DocumentCache, parse_documents
from gitops.model import ChartLocation, Pin, PinLocation, Problem
from gitops.settings import parse_settings

from tests.refs import FLUX_LAYOUTS as REFS
NEWEST = "flux2-kustomize-helm-example"
VERSION = ("spec", "chart", "spec", "version")


# ---- helpers ---------------------------------------------------------------------------------

def copy_fixture(name: str, dst: Path) -> Path:
    """Copy a read-only fixture snapshot as plain writable files."""
    src = REFS / name
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dst


def write(root: Path, files: dict) -> DirTree:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return DirTree(root)


def settings(envs: dict, **extra):
    """Settings for environments given as {name: path or [paths]}, in order."""
    raw = {"repo": "file:///srv/flux.git",
           "environments": [{"name": n, "path": p} for n, p in envs.items()], **extra}
    return parse_settings(raw, environ={})


def by_key(pins) -> dict:
    return {(p.environment, p.app): p for p in pins}


TWO_ENVS = {"staging": ["apps/staging", "infrastructure/controllers"],
            "production": ["apps/production", "infrastructure/controllers"]}

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def release(name: str, namespace: str = "apps", version: str = "", chart: str = "",
            repo: str = "charts", values: str = "", api: str = "v2") -> str:
    version_line = f"\n      version: {version}" if version else ""
    values_block = f"\n  values:\n{textwrap.indent(textwrap.dedent(values), '    ')}" if values else ""
    return (f"apiVersion: helm.toolkit.fluxcd.io/{api}\nkind: HelmRelease\nmetadata:\n"
            f"  name: {name}\n  namespace: {namespace}\nspec:\n  interval: 10m\n  chart:\n"
            f"    spec:\n      chart: {chart or name}{version_line}\n      sourceRef:\n"
            f"        kind: HelmRepository\n        name: {repo}{values_block}\n")


def oci_helm_repository(name: str = "charts", namespace: str = "apps",
                        url: str = "oci://registry.local:5000/charts", insecure: bool = False,
                        api: str = "v1") -> str:
    extra = "\n  insecure: true" if insecure else ""
    return (f"apiVersion: source.toolkit.fluxcd.io/{api}\nkind: HelmRepository\nmetadata:\n"
            f"  name: {name}\n  namespace: {namespace}\nspec:\n  type: oci{extra}\n"
            f"  interval: 5m\n  url: {url}\n")


# ---- the real Flux example repository --------------------------------------------------------

def test_newest_example_patch_and_oci_repository_pins(tmp_path):
    tree = DirTree(copy_fixture(NEWEST, tmp_path))
    warnings = []
    pins = discover(tree, settings(TWO_ENVS), warnings=warnings)

    assert [(p.environment, p.app) for p in pins] == [
        ("staging", "cert-manager"), ("staging", "envoy-gateway"), ("staging", "podinfo"),
        ("production", "cert-manager"), ("production", "envoy-gateway"), ("production", "podinfo")]
    assert warnings == []
    found = by_key(pins)
    assert found["staging", "podinfo"] == Pin(
        app="podinfo", environment="staging", version=">=1.0.0-alpha", is_range=True,
        location=PinLocation("apps/staging/podinfo-values.yaml", 0, VERSION), kind="patch",
        chart="podinfo", namespace="podinfo", release_file="apps/base/podinfo/release.yaml",
        # An HTTPS HelmRepository: the chart in its index.yaml.
        source=ChartLocation("stefanprodan.github.io", "podinfo/podinfo", scheme="https"),
        source_url="https://stefanprodan.github.io/podinfo", shared_with=(),
        values_files=("apps/base/podinfo/release.yaml", "apps/staging/podinfo-values.yaml"))
    assert found["production", "podinfo"].version == ">=1.0.0"
    assert found["production", "podinfo"].location.file == "apps/production/podinfo-values.yaml"
    assert found["staging", "cert-manager"] == Pin(
        app="cert-manager", environment="staging", version="1.x", is_range=True,
        location=PinLocation("infrastructure/controllers/cert-manager.yaml", 1, ("spec", "ref", "semver")),
        kind="ocirepository", chart="cert-manager", namespace="cert-manager",
        release_file="infrastructure/controllers/cert-manager.yaml",
        source=ChartLocation("quay.io", "jetstack/charts/cert-manager"),
        source_url="oci://quay.io/jetstack/charts/cert-manager", shared_with=("staging", "production"),
        values_files=("infrastructure/controllers/cert-manager.yaml",))
    gateway = found["production", "envoy-gateway"]
    assert (gateway.version, gateway.chart, gateway.source, gateway.values_files) == (
        ">= 1.8.0-rc.0", "gateway-helm", ChartLocation("docker.io", "envoyproxy/gateway-helm"), ())


@pytest.mark.parametrize("snapshot, api, with_weave", [
    ("flux2-kustomize-helm-example@1d4cec0", "v2beta1", True),
    ("flux2-kustomize-helm-example@f249b51", "v2beta2", True),
    ("flux2-kustomize-helm-example@386ef74", "v2", False),
])
def test_older_examples_helmrelease_versions(tmp_path, snapshot, api, with_weave):
    root = copy_fixture(snapshot, tmp_path)
    assert f"helm.toolkit.fluxcd.io/{api}" in (root / "apps/base/podinfo/release.yaml").read_text()
    pins = by_key(discover(DirTree(root), settings(TWO_ENVS)))

    expected_apps = {"cert-manager", "ingress-nginx", "podinfo"} | ({"weave-gitops"} if with_weave else set())
    assert {app for _, app in pins} == expected_apps
    assert pins["staging", "podinfo"].version == ">=1.0.0-alpha"
    assert pins["production", "podinfo"].kind == "patch"
    cert = pins["production", "cert-manager"]
    assert (cert.version, cert.is_range, cert.kind, cert.location, cert.shared_with, cert.source,
            cert.source_url) == (
        "1.x", True, "helmrelease",
        PinLocation("infrastructure/controllers/cert-manager.yaml", 2, VERSION),
        ("staging", "production"), ChartLocation("charts.jetstack.io", "cert-manager", scheme="https"),
        "https://charts.jetstack.io")
    assert pins["staging", "ingress-nginx"].version == "*"
    if with_weave:
        weave = pins["staging", "weave-gitops"]
        assert weave.source == ChartLocation("ghcr.io", "weaveworks/charts/weave-gitops")
        assert weave.namespace == "flux-system"
        assert weave.location == PinLocation("infrastructure/controllers/weave-gitops.yaml", 1, VERSION)


def test_demo_repository_of_the_project(tmp_path):
    from devtools.fluxrepo import demo_files, demo_settings, write_files
    write_files(tmp_path, demo_files("oci://127.0.0.1:5000/charts"))
    pins = by_key(discover(DirTree(tmp_path), parse_settings(demo_settings("file:///x"), environ={})))
    assert len(pins) == 12
    podinfo, redis, cert = pins["qa", "podinfo"], pins["prod", "redis"], pins["stag", "cert-manager"]
    assert (podinfo.version, podinfo.kind, podinfo.location.file) == ("6.5.2", "patch", "apps/qa/podinfo-values.yaml")
    assert podinfo.source == ChartLocation("127.0.0.1:5000", "charts/podinfo", True)
    assert (redis.version, redis.location) == ("18.0.0", PinLocation("apps/prod/redis.yaml", 1, VERSION))
    assert (cert.version, cert.kind, cert.location.path) == ("v1.14.0", "ocirepository", ("spec", "ref", "tag"))
    assert cert.source == ChartLocation("127.0.0.1:5000", "charts/cert-manager", True)


# ---- where the version lives ----------------------------------------------------------------

def test_helmrelease_next_to_oci_helm_repository_in_one_file(tmp_path):
    tree = write(tmp_path, {"apps/dev/redis.yaml": "---\n" + oci_helm_repository(insecure=True)
                            + "---\n# the release\n" + release(
                                "redis", version="v1.2.0", values="image:\n  tag: 9.9.9\nredis:\n  tag: 8.6.2\n")})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert pin == Pin(app="redis", environment="dev", version="v1.2.0", is_range=False,
                      location=PinLocation("apps/dev/redis.yaml", 1, VERSION), kind="helmrelease",
                      chart="redis", namespace="apps", release_file="apps/dev/redis.yaml",
                      source=ChartLocation("registry.local:5000", "charts/redis", True),
                      source_url="oci://registry.local:5000/charts", values_files=("apps/dev/redis.yaml",))


@pytest.mark.parametrize("text, is_range", [
    ('">=1.0.0"', True), ("'1.x'", True), ('"~1.2"', True), ('"*"', True), ('">=1.0.0 <2.0.0"', True),
    ("6.5.3", False), ("v1.2.0", False), ("1.10", False), ('"7.0.0-rc.1"', False)])
def test_version_text_as_written_and_ranges(tmp_path, text, is_range):
    tree = write(tmp_path, {"apps/dev/r.yaml": oci_helm_repository() + "---\n" + release("r", version=text)})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert pin.version == text.strip("'\"")
    assert pin.is_range is is_range


def test_no_version_means_none(tmp_path):
    tree = write(tmp_path, {"apps/dev/r.yaml": oci_helm_repository() + "---\n" + release("r")})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.location, pin.is_range, pin.kind) == (None, None, False, "helmrelease")


OCI_REPOSITORY = """\
apiVersion: source.toolkit.fluxcd.io/{api}
kind: OCIRepository
metadata:
  name: podinfo-chart
  namespace: {namespace}
spec:
  interval: 10m
  url: oci://ghcr.io/stefanprodan/charts/podinfo{insecure}
  ref:
    {ref}
"""

CHART_REF_RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  interval: 10m
  chartRef:
    kind: OCIRepository
    name: podinfo-chart{namespace}
"""


@pytest.mark.parametrize("ref, version, is_range, path", [
    ("tag: 6.5.3", "6.5.3", False, ("spec", "ref", "tag")),
    ('semver: ">=6.0.0"', ">=6.0.0", True, ("spec", "ref", "semver")),
    ("tag: 6.5.3\n    semver: 6.x", "6.x", True, ("spec", "ref", "semver")),  # Flux prefers semver
])
def test_oci_repository_ref_through_chart_ref(tmp_path, ref, version, is_range, path):
    tree = write(tmp_path, {
        "apps/dev/source.yaml": OCI_REPOSITORY.format(api="v1beta2", namespace="apps", insecure="", ref=ref),
        "apps/dev/release.yaml": CHART_REF_RELEASE.format(namespace="")})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.is_range, pin.kind, pin.location) == (
        version, is_range, "ocirepository", PinLocation("apps/dev/source.yaml", 0, path))
    assert (pin.chart, pin.source, pin.source_url) == (
        "podinfo", ChartLocation("ghcr.io", "stefanprodan/charts/podinfo"),
        "oci://ghcr.io/stefanprodan/charts/podinfo")
    assert pin.release_file == "apps/dev/release.yaml"


def test_oci_repository_digest_is_reported_but_not_editable(tmp_path):
    digest = "sha256:" + "a" * 64
    tree = write(tmp_path, {
        "apps/dev/source.yaml": OCI_REPOSITORY.format(api="v1", namespace="charts", insecure="\n  insecure: true",
                                                      ref=f"tag: 6.5.3\n    digest: {digest}"),
        "apps/dev/release.yaml": CHART_REF_RELEASE.format(namespace="\n    namespace: charts")})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.is_range, pin.location, pin.kind) == (digest, False, None, "ocirepository")
    assert pin.source == ChartLocation("ghcr.io", "stefanprodan/charts/podinfo", True)


def test_chart_ref_to_a_missing_oci_repository(tmp_path):
    tree = write(tmp_path, {"apps/dev/release.yaml": CHART_REF_RELEASE.format(namespace="")})
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.location, pin.chart, pin.source) == (None, None, "podinfo-chart", None)


# ---- kustomize overlays ----------------------------------------------------------------------

BASE = {
    "apps/base/podinfo/kustomization.yaml": KUSTOMIZATION + "namespace: podinfo\nresources:\n"
                                            "  - repository.yaml\n  - release.yaml\n",
    "apps/base/podinfo/repository.yaml": oci_helm_repository("podinfo", namespace="flux-system"),
    "apps/base/podinfo/release.yaml": release("podinfo", namespace="default", repo="podinfo",
                                              version="6.0.0", values="replicaCount: 1\n"),
}


def overlay(kustomization_tail: str, **files) -> dict:
    out = dict(BASE)
    out["apps/dev/kustomization.yaml"] = KUSTOMIZATION + "resources:\n  - ../base/podinfo\n" + \
        textwrap.dedent(kustomization_tail)
    out.update({f"apps/dev/{name.replace('_', '-')}.yaml": text for name, text in files.items()})
    return out


VERSION_PATCH = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: podinfo
spec:
  chart:
    spec:
      version: "{version}"
"""
JSON_PATCH = "- op: replace\n  path: /spec/chart/spec/version\n  value: {version}\n"


def test_base_outside_environment_path_with_its_own_version(tmp_path):
    tree = write(tmp_path, overlay(""))
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.kind, pin.location) == (
        "6.0.0", "helmrelease", PinLocation("apps/base/podinfo/release.yaml", 0, VERSION))
    # kustomize's `namespace:` moves the release (and its source) to podinfo
    assert pin.namespace == "podinfo"
    assert pin.source == ChartLocation("registry.local:5000", "charts/podinfo")


@pytest.mark.parametrize("tail, files, version, location", [
    ("patches:\n  - path: version.yaml\n    target:\n      kind: HelmRelease\n      name: podinfo\n",
     {"version": VERSION_PATCH.format(name="podinfo", version="6.1.0")},
     "6.1.0", PinLocation("apps/dev/version.yaml", 0, VERSION)),
    ("patches:\n  - path: version.yaml\n",  # no target: matched by the patch's kind and name
     {"version": VERSION_PATCH.format(name="podinfo", version="6.1.1")},
     "6.1.1", PinLocation("apps/dev/version.yaml", 0, VERSION)),
    ("patches:\n  - path: version.yaml\n    target:\n      kind: HelmRelease\n",  # name ignored with a target
     {"version": VERSION_PATCH.format(name="anything", version="6.1.2")},
     "6.1.2", PinLocation("apps/dev/version.yaml", 0, VERSION)),
    ("patchesStrategicMerge:\n  - version.yaml\n",
     {"version": "---\n" + VERSION_PATCH.format(name="other", version="9.9.9") + "---\n"
      + VERSION_PATCH.format(name="podinfo", version="6.2.0")},
     "6.2.0", PinLocation("apps/dev/version.yaml", 1, VERSION)),
    ("patchesJson6902:\n  - target:\n      group: helm.toolkit.fluxcd.io\n      version: v2\n"
     "      kind: HelmRelease\n      name: podinfo\n    path: version.yaml\n",
     {"version": JSON_PATCH.format(version="6.3.0")},
     "6.3.0", PinLocation("apps/dev/version.yaml", 0, (0, "value"))),
    ("patches:\n  - path: version.yaml\n    target:\n      kind: HelmRelease\n      name: pod.*\n",
     {"version": "- op: test\n  path: /spec/interval\n  value: 10m\n" + JSON_PATCH.format(version="6.3.1")},
     "6.3.1", PinLocation("apps/dev/version.yaml", 0, (1, "value"))),
    ("patches:\n  - path: chart.yaml\n    target:\n      kind: HelmRelease\n",  # a parent path set whole
     {"chart": '- op: replace\n  path: /spec/chart/spec\n  value:\n    chart: podinfo\n    version: "6.3.2"\n'
               "    sourceRef: {kind: HelmRepository, name: podinfo, namespace: flux-system}\n"},
     "6.3.2", PinLocation("apps/dev/chart.yaml", 0, (0, "value", "version"))),
])
def test_overlay_patch_sets_the_version(tmp_path, tail, files, version, location):
    tree = write(tmp_path, overlay(tail, **files))
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert (pin.version, pin.kind, pin.location) == (version, "patch", location)
    assert pin.release_file == "apps/base/podinfo/release.yaml"


def test_inline_patch_is_the_pin_and_one_line_of_it_changes(tmp_path):
    tail = """\
    patches:
      - target:
          kind: HelmRelease
          name: podinfo
        patch: |
          - op: replace
            path: /spec/chart/spec/version
            value: 6.4.0
    patchesStrategicMerge:
      - |
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: podinfo
        spec:
          values:
            replicaCount: 3
    """
    tree = write(tmp_path, overlay(tail))
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    inline = PinLocation("apps/dev/kustomization.yaml", 0, ("patches", 0, "patch"), inner=(0, (0, "value")))
    assert (pin.version, pin.location, pin.kind, pin.is_range) == ("6.4.0", inline, "patch", False)
    assert pin.values_files == ("apps/base/podinfo/release.yaml", "apps/dev/kustomization.yaml")
    before = tree.read("apps/dev/kustomization.yaml")
    after = set_version(before, inline, "6.5.0")
    assert unified_diff("k.yaml", before, after).count("\n-") == 1
    assert "-        value: 6.4.0\n+        value: 6.5.0\n" in unified_diff("k.yaml", before, after)
    assert read_version(after, inline) == "6.5.0"
    [again] = discover(write(tmp_path, {"apps/dev/kustomization.yaml": after}), settings({"dev": "apps/dev"}))
    assert again.version == "6.5.0"


def test_later_patches_win_and_overlay_wins_over_base(tmp_path):
    files = overlay("patches:\n  - path: first.yaml\n  - path: second.yaml\n    target:\n      kind: HelmRelease\n",
                    first=VERSION_PATCH.format(name="podinfo", version="7.0.0"),
                    second=VERSION_PATCH.format(name="podinfo", version="7.1.0"))
    files["apps/base/podinfo/kustomization.yaml"] += "patches:\n  - path: base-version.yaml\n"
    files["apps/base/podinfo/base-version.yaml"] = VERSION_PATCH.format(name="podinfo", version="6.9.0")
    [pin] = discover(write(tmp_path, files), settings({"dev": "apps/dev"}))
    assert (pin.version, pin.location) == ("7.1.0", PinLocation("apps/dev/second.yaml", 0, VERSION))

    # without the overlay's patches, the base's own patch wins over the release
    files["apps/dev/kustomization.yaml"] = KUSTOMIZATION + "resources:\n  - ../base/podinfo\n"
    [pin] = discover(write(tmp_path, files), settings({"dev": "apps/dev"}), cache=DocumentCache())
    assert (pin.version, pin.location.file) == ("6.9.0", "apps/base/podinfo/base-version.yaml")


def test_a_patch_removing_the_version(tmp_path):
    tail = "patches:\n  - path: unpin.yaml\n    target:\n      kind: HelmRelease\n"
    files = overlay(tail, unpin="- op: remove\n  path: /spec/chart/spec/version\n")
    [pin] = discover(write(tmp_path, files), settings({"dev": "apps/dev"}))
    assert (pin.version, pin.location) == (None, None)


def test_patch_on_the_oci_repository_wins(tmp_path):
    files = {
        "apps/base/kustomization.yaml": KUSTOMIZATION + "resources:\n  - source.yaml\n  - release.yaml\n",
        "apps/base/source.yaml": OCI_REPOSITORY.format(api="v1", namespace="apps", insecure="", ref="tag: 6.5.0"),
        "apps/base/release.yaml": CHART_REF_RELEASE.format(namespace=""),
        "apps/dev/kustomization.yaml": KUSTOMIZATION + "resources:\n  - ../base\npatches:\n"
                                       "  - path: tag.yaml\n    target:\n      kind: OCIRepository\n",
        "apps/dev/tag.yaml": "- op: replace\n  path: /spec/ref/tag\n  value: 6.5.9\n",
        "apps/prod/kustomization.yaml": KUSTOMIZATION + "resources:\n  - ../base\n",
    }
    pins = by_key(discover(write(tmp_path, files), settings({"dev": "apps/dev", "prod": "apps/prod"})))
    assert (pins["dev", "podinfo"].version, pins["dev", "podinfo"].kind, pins["dev", "podinfo"].location) == (
        "6.5.9", "patch", PinLocation("apps/dev/tag.yaml", 0, (0, "value")))
    assert (pins["prod", "podinfo"].version, pins["prod", "podinfo"].kind, pins["prod", "podinfo"].location) == (
        "6.5.0", "ocirepository", PinLocation("apps/base/source.yaml", 0, ("spec", "ref", "tag")))


def test_patches_of_a_sibling_kustomization_do_not_apply(tmp_path):
    files = {
        "apps/dev/kustomization.yaml": KUSTOMIZATION + "resources:\n  - one\n  - two\n",
        "apps/dev/one/kustomization.yaml": KUSTOMIZATION + "resources:\n  - r.yaml\npatches:\n"
                                           "  - path: p.yaml\n    target:\n      kind: HelmRelease\n",
        "apps/dev/one/r.yaml": oci_helm_repository() + "---\n" + release("one", version="1.0.0"),
        "apps/dev/one/p.yaml": JSON_PATCH.format(version="1.5.0"),
        "apps/dev/two/kustomization.yaml": KUSTOMIZATION + "resources:\n  - r.yaml\n",
        "apps/dev/two/r.yaml": release("two", version="2.0.0"),
    }
    pins = by_key(discover(write(tmp_path, files), settings({"dev": "apps/dev"})))
    assert pins["dev", "one"].version == "1.5.0"
    assert pins["dev", "two"].version == "2.0.0"
    assert pins["dev", "two"].source == ChartLocation("registry.local:5000", "charts/two")


def test_values_files_in_order(tmp_path):
    values_patch = VERSION_PATCH.format(name="podinfo", version="6.1.0") + "  values:\n    replicaCount: 2\n"
    tail = ("patches:\n  - path: values.yaml\n  - path: more.yaml\n    target:\n      kind: HelmRelease\n"
            "  - path: unrelated.yaml\n    target:\n      kind: HelmRelease\n")
    files = overlay(tail, values=values_patch,
                    more="- op: add\n  path: /spec/values/ui\n  value: {message: hi}\n",
                    unrelated="- op: replace\n  path: /spec/interval\n  value: 5m\n")
    [pin] = discover(write(tmp_path, files), settings({"dev": "apps/dev"}))
    assert pin.values_files == ("apps/base/podinfo/release.yaml", "apps/dev/values.yaml", "apps/dev/more.yaml")
    assert pin.location == PinLocation("apps/dev/values.yaml", 0, VERSION)


# ---- environments, globs, sharing ------------------------------------------------------------

def test_shared_pin_reached_from_two_of_three_environments(tmp_path):
    files = {
        "infra/cert-manager.yaml": oci_helm_repository() + "---\n" + release("cert-manager", version="v1.14.0"),
        "clusters/dev/kustomization.yaml": KUSTOMIZATION + "resources:\n  - ../../infra\n",
        "clusters/qa/kustomization.yaml": KUSTOMIZATION + "resources:\n  - ../../infra/cert-manager.yaml\n",
        "clusters/prod/cert-manager.yaml": oci_helm_repository() + "---\n" + release("cert-manager", version="v1.13.0"),
    }
    pins = by_key(discover(write(tmp_path, files),
                           settings({"dev": "clusters/dev", "qa": "clusters/qa", "prod": "clusters/prod"})))
    assert pins["dev", "cert-manager"].shared_with == ("dev", "qa")
    assert pins["qa", "cert-manager"].shared_with == ("dev", "qa")
    assert pins["qa", "cert-manager"].shared
    assert pins["prod", "cert-manager"].shared_with == ()
    assert pins["prod", "cert-manager"].version == "v1.13.0"


def test_glob_paths_and_folders_without_kustomization(tmp_path):
    files = {
        "components/web/staging/release.yaml": oci_helm_repository() + "---\n" + release("web", version="1.0.0"),
        "components/web/production/release.yaml": oci_helm_repository() + "---\n" + release("web", version="0.9.0"),
        "components/api/staging/nested/deeper/release.yaml": oci_helm_repository() + "---\n"
                                                              + release("api", version="2.0.0"),
        "components/api/staging/notes.txt": "not yaml",
        "components/api/staging/README.md": "# api",
        "components/db/production/release.yaml": release("db", version="3.0.0"),
    }
    s = settings({"staging": "components/*/staging", "production": "components/*/production"})
    pins = discover(write(tmp_path, files), s)
    assert [(p.environment, p.app, p.version) for p in pins] == [
        ("staging", "api", "2.0.0"), ("staging", "web", "1.0.0"),
        ("production", "db", "3.0.0"), ("production", "web", "0.9.0")]


def test_discover_only_some_environments(tmp_path):
    files = {f"apps/{e}/r.yaml": oci_helm_repository() + "---\n" + release("r", version=v)
             for e, v in (("dev", "1.0.0"), ("qa", "0.9.0"), ("prod", "0.8.0"))}
    s = settings({"dev": "apps/dev", "qa": "apps/qa", "prod": "apps/prod"})
    tree = write(tmp_path, files)
    pins = discover_environments(tree, s, [s.environments[2], s.environments[0]])
    assert [(p.environment, p.version) for p in pins] == [("dev", "1.0.0"), ("prod", "0.8.0")]
    assert [p.environment for p in discover(tree, s, ["qa"])] == ["qa"]


# ---- chart location overrides ----------------------------------------------------------------

def _https_and_oci(tmp_path):
    files = {"apps/dev/web.yaml": "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
                                  "metadata:\n  name: public\n  namespace: apps\nspec:\n"
                                  "  url: https://charts.example.com\n---\n"
                                  + release("web", version="1.0.0", repo="public"),
             "apps/dev/api.yaml": oci_helm_repository(insecure=True) + "---\n" + release("api", version="2.0.0")}
    return write(tmp_path, files)


def test_sources_without_overrides(tmp_path):
    pins = by_key(discover(_https_and_oci(tmp_path), settings({"dev": "apps/dev"})))
    assert (pins["dev", "web"].source, pins["dev", "web"].source_url) == (
        ChartLocation("charts.example.com", "web", scheme="https"), "https://charts.example.com")
    assert pins["dev", "api"].source == ChartLocation("registry.local:5000", "charts/api", True)


def test_registry_override_and_per_app_override(tmp_path):
    s = settings({"dev": "apps/dev"}, registry={"url": "oci://mirror.local:5000/mirror"},
                 apps={"api": {"chart": "api-chart",
                               "registry": {"url": "oci://other.local/team", "insecure": True}}})
    pins = by_key(discover(_https_and_oci(tmp_path), s))
    web, api = pins["dev", "web"], pins["dev", "api"]
    assert (web.source, web.source_url, web.chart) == (
        ChartLocation("mirror.local:5000", "mirror/web", False), "https://charts.example.com", "web")
    assert (api.source, api.chart) == (ChartLocation("other.local", "team/api-chart", True), "api-chart")


def test_chart_override_keeps_the_flux_oci_host(tmp_path):
    s = settings({"dev": "apps/dev"}, apps={"api": {"chart": "renamed"}})
    pins = by_key(discover(_https_and_oci(tmp_path), s))
    assert pins["dev", "api"].source == ChartLocation("registry.local:5000", "charts/renamed", True)


# ---- clashes, broken files, odd documents ----------------------------------------------------

def test_name_clash_is_qualified_with_the_namespace_everywhere(tmp_path):
    files = {
        "apps/dev/a.yaml": oci_helm_repository(namespace="team-a") + "---\n"
                           + release("podinfo", namespace="team-a", version="1.0.0"),
        "apps/dev/b.yaml": oci_helm_repository(namespace="team-b") + "---\n"
                           + release("podinfo", namespace="team-b", version="2.0.0"),
        "apps/prod/a.yaml": oci_helm_repository(namespace="team-a") + "---\n"
                            + release("podinfo", namespace="team-a", version="0.9.0"),
    }
    pins = discover(write(tmp_path, files), settings({"dev": "apps/dev", "prod": "apps/prod"}))
    assert [(p.environment, p.app, p.version) for p in pins] == [
        ("dev", "team-a/podinfo", "1.0.0"), ("dev", "team-b/podinfo", "2.0.0"),
        ("prod", "team-a/podinfo", "0.9.0")]
    assert qualify_clashes(pins) == pins  # idempotent


def test_broken_yaml_is_skipped_with_a_warning(tmp_path):
    files = {
        "apps/dev/good.yaml": oci_helm_repository() + "---\n" + release("good", version="1.0.0"),
        "apps/dev/broken.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: [oops\n",
        "apps/dev/late-break.yaml": oci_helm_repository(name="late") + "---\n"
                                    + release("late", version="3.0.0", repo="late") + "---\nkey: [unclosed\n",
        "apps/dev/list.yaml": "- just\n- a list\n",
        "apps/dev/notes.yaml": "just a string\n",
        "apps/dev/other-group.yaml": "apiVersion: example.com/v1\nkind: HelmRelease\nmetadata:\n  name: fake\n",
    }
    warnings = []
    pins = discover(write(tmp_path, files), settings({"dev": "apps/dev"}), warnings=warnings)
    assert [(p.app, p.version) for p in pins] == [("good", "1.0.0"), ("late", "3.0.0")]
    assert len(warnings) == 2
    broken = next(w for w in warnings if w.path == "apps/dev/broken.yaml")
    assert broken.environment == "dev" and broken.reason.startswith("not valid YAML (line 4: ")


def test_unreadable_file_is_skipped_with_a_warning(tmp_path):
    tree = write(tmp_path, {"apps/dev/good.yaml": oci_helm_repository() + "---\n" + release("good", version="1.0.0")})
    (tmp_path / "apps/dev/latin1.yaml").write_bytes(b"kind: HelmRelease\nname: caf\xe9\n")
    warnings = []
    pins = discover(tree, settings({"dev": "apps/dev"}), warnings=warnings)
    assert [p.app for p in pins] == ["good"]
    assert len(warnings) == 1
    assert (warnings[0].environment, warnings[0].path) == ("dev", "apps/dev/latin1.yaml")
    assert warnings[0].reason.startswith("not valid YAML (cannot be read")


def test_missing_files_and_cycles_do_not_crash(tmp_path):
    files = {
        "apps/dev/kustomization.yaml": KUSTOMIZATION + "resources:\n  - r.yaml\n  - gone.yaml\n  - ../loop\n"
                                       "  - https://github.com/org/repo//base?ref=v1\npatches:\n  - path: nope.yaml\n",
        "apps/dev/r.yaml": oci_helm_repository() + "---\n" + release("r", version="1.0.0"),
        "apps/loop/kustomization.yaml": KUSTOMIZATION + "resources:\n  - ../dev\n",
    }
    warnings = []
    pins = discover(write(tmp_path, files), settings({"dev": "apps/dev", "qa": "apps/none"}), warnings=warnings)
    assert [(p.environment, p.app) for p in pins] == [("dev", "r")]
    said = [str(w) for w in warnings]
    assert any("gone.yaml" in w for w in said)
    assert any("nope.yaml" in w for w in said)
    assert any("includes itself" in w for w in said)
    assert Problem("qa", "apps/none", "matches nothing in the repository.") in warnings
    assert Problem("qa", "apps/none", "no HelmRelease found there.") in warnings
    assert "qa · `apps/none`: no HelmRelease found there." in said


def test_source_found_outside_the_environment_paths(tmp_path):
    files = {
        "infrastructure/sources/charts.yaml": oci_helm_repository(namespace="flux-system"),
        "apps/dev/r.yaml": release("r", version="1.0.0").replace(
            "name: charts", "name: charts\n        namespace: flux-system"),
    }
    [pin] = discover(write(tmp_path, files), settings({"dev": "apps/dev"}))
    assert pin.source == ChartLocation("registry.local:5000", "charts/r")


# ---- speed: the cache ------------------------------------------------------------------------

class CountingTree(DirTree):
    def __init__(self, root):
        super().__init__(root)
        self.reads = []

    def read(self, path):
        self.reads.append(path)
        return super().read(path)


def test_rediscovery_parses_only_the_changed_file(tmp_path):
    files = {f"apps/dev/app{i}.yaml": oci_helm_repository() + "---\n" + release(f"app{i}", version="1.0.0")
             for i in range(20)}
    tree = CountingTree(tmp_path)
    write(tmp_path, files)
    cache = DocumentCache()
    s = settings({"dev": "apps/dev"})
    discover(tree, s, cache=cache)
    assert len(tree.reads) == 20
    tree.reads.clear()
    discover(tree, s, cache=cache)
    assert tree.reads == []
    (tmp_path / "apps/dev/app7.yaml").write_text(files["apps/dev/app7.yaml"].replace("1.0.0", "1.0.1"))
    pins = by_key(discover(tree, s, cache=cache))
    assert tree.reads == ["apps/dev/app7.yaml"]
    assert pins["dev", "app7"].version == "1.0.1"


def test_fast_parser_matches_ruamel_safe_loader():
    from ruamel.yaml import YAML
    text = "a: &x {b: c}\nd: *x\ne:\n  <<: *x\n  f: [1, 'g', null, true, ~]\n---\n---\n- \"q\"\n"
    docs, error = parse_documents(text)
    assert error is None
    # numbers stay text; everything else as the safe loader reads it
    assert docs == [{"a": {"b": "c"}, "d": {"b": "c"}, "e": {"b": "c", "f": ["1", "g", None, True, None]}},
                    None, ["q"]]
    assert len(docs) == len(list(YAML(typ="safe").load_all(text)))
    docs, error = parse_documents("a: 1\n---\nb: [\n")
    assert docs == [{"a": "1"}] and error.startswith("line ")


# ---- the values a release gets, for `!diff <app> <envA> <envB>` -------------------------------

def test_release_values_text_of_the_real_example(tmp_path):
    from gitops.flux.discovery import release_values_text
    tree = DirTree(copy_fixture(NEWEST, tmp_path))
    pins = by_key(discover(tree, settings(TWO_ENVS)))
    staging = release_values_text(tree, pins["staging", "podinfo"])
    production = release_values_text(tree, pins["production", "podinfo"])
    assert staging == production.replace("podinfo.production", "podinfo.staging")
    assert staging.startswith("httpRoute:\n  enabled: true\n  hostnames:\n  - podinfo.staging\n")
    assert staging.endswith("redis:\n  enabled: true\n  repository: public.ecr.aws/docker/library/redis\n"
                            "  tag: 8.6.2\n")
    assert release_values_text(tree, pins["staging", "envoy-gateway"]) == ""


def test_release_values_text_replays_every_kind_of_patch(tmp_path):
    from gitops.flux.discovery import release_values_text
    tail = """\
    patches:
      - path: values.yaml
        target:
          kind: HelmRelease
      - path: ops.yaml
        target:
          kind: HelmRelease
          name: podinfo
      - target:
          kind: HelmRelease
          name: pod.*
        patch: |
          - op: add
            path: /spec/values/inline
            value: yes
    """
    files = overlay(tail,
                    values="---\n" + VERSION_PATCH.format(name="other", version="1.0.0")
                    + "  values:\n    ignored: true\n---\n" + VERSION_PATCH.format(name="podinfo", version="6.1.0")
                    + "  values:\n    replicaCount: 2\n    ui: {color: blue}\n",
                    ops="- op: replace\n  path: /spec/values/ui/color\n  value: green\n")
    tree = write(tmp_path, files)
    [pin] = discover(tree, settings({"dev": "apps/dev"}))
    assert pin.values_files == ("apps/base/podinfo/release.yaml", "apps/dev/values.yaml",
                                "apps/dev/ops.yaml", "apps/dev/kustomization.yaml")
    assert release_values_text(tree, pin) == "inline: yes\nreplicaCount: 2\nui:\n  color: green\n"
