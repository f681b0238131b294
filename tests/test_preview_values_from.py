"""`!preview` reads the ConfigMaps in Git a HelmRelease's `spec.valuesFrom` names (issue 23, item
1): merged as helm-controller merges them (refs in order, `valuesKey` default `values.yaml`,
`optional`, `spec.values` last), found the way Flux gets them (the one object of that name in the
release's namespace in the same build); a generator's ConfigMap, a Secret, a `targetPath`, an
object outside the build stay unknown, each named with why."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devtools.artifacts import chart_archive, push_chart
from gitops.flux.discovery import DirTree, discover
from gitops.flux.helmvalues import values_from
from gitops.preview.charts import read_chart
from gitops.preview.compare import preview
from gitops.settings import parse_settings
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_tip
from tests.preview_charts import WEB, release_file

SETTINGS = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                           "environments": [{"name": "qa", "path": "apps/qa"}]}, environ={})


def release(values_from_refs: list, values: dict | None = None) -> str:
    spec = {"interval": "30m",
            "chart": {"spec": {"chart": "web", "version": "6.0.0",
                               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "valuesFrom": values_from_refs}
    if values is not None:
        spec["values"] = values
    return yaml.safe_dump({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                           "metadata": {"name": "web", "namespace": "web"}, "spec": spec})


def config_map(name: str, data: dict, namespace: str = "web") -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": namespace}, "data": data})


def values_text(values: dict) -> str:
    return yaml.safe_dump(values)


def given(tmp_path: Path, files: dict, settings=SETTINGS):
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    tree = DirTree(tmp_path)
    pin = next(p for p in discover(tree, settings) if p.app == "web")
    return values_from(tree, pin, settings.environment("qa"))


def web(version: str):
    files, metadata = WEB[version]
    return read_chart(chart_archive("web", version, files=files, metadata=metadata), f"web {version}")


def test_a_config_map_in_the_same_build_feeds_the_preview(tmp_path):
    given_values = given(tmp_path, {
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values"}],
                                    {"service": {"port": 9090}}),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": values_text(
            {"replicaCount": "3", "ingress": {"hosts": ["web.example.com"]}})})})
    assert given_values.values == {"replicaCount": "3", "ingress": {"hosts": ["web.example.com"]}}
    assert given_values.unknown == () and given_values.problems == ()
    found = preview("web", "qa", web("6.0.0"), web("7.0.0"), (),
                    {**given_values.values, "service": {"port": 9090}}, given_values.unknown)
    assert [f.key for f in found.removed_keys] == ["ingress.hosts"]  # set by the ConfigMap alone
    assert [path for path, _ in found.schema_errors] == ["replicaCount"]


def test_values_from_added_by_a_patch_is_read_and_a_release_without_builds_nothing(tmp_path, monkeypatch):
    """Discovery notes whether the built release takes `spec.valuesFrom` (here only a patch adds
    it); a preview of a release without builds nothing again (not the whole environment per
    deploy), one with reads what it names."""
    from gitops.flux import helmvalues
    builds = []
    build = helmvalues.build_environment
    monkeypatch.setattr(helmvalues, "build_environment", lambda *a, **k: builds.append(a[3]) or build(*a, **k))
    patch = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "web"},
             "spec": {"valuesFrom": [{"kind": "ConfigMap", "name": "web-values"}]}}
    files = {"apps/qa/kustomization.yaml": yaml.safe_dump({"resources": ["web.yaml", "values.yaml", "api.yaml"]}),
             "apps/qa/web.yaml": release([]),
             "apps/qa/api.yaml": release([]).replace("name: web\n", "name: api\n"),
             "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 4\n"})}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    tree = DirTree(tmp_path)
    pins = {p.app: p for p in discover(tree, SETTINGS)}
    assert not pins["web"].values_from and not pins["api"].values_from
    assert values_from(tree, pins["api"], SETTINGS.environment("qa")).values == {} and builds == []
    (tmp_path / "apps/qa/kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": ["web.yaml", "values.yaml", "api.yaml"], "patches": [{"patch": yaml.safe_dump(patch)}]}))
    pins = {p.app: p for p in discover(tree, SETTINGS)}
    assert pins["web"].values_from and not pins["api"].values_from
    assert values_from(tree, pins["web"], SETTINGS.environment("qa")).values == {"replicaCount": 4}
    assert builds == ["qa"]


def test_values_key_names_the_data_key(tmp_path):
    found = given(tmp_path, {
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values", "valuesKey": "qa.yaml"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 1\n",
                                                          "qa.yaml": "replicaCount: 5\n"})})
    assert found.values == {"replicaCount": 5}


def test_references_merge_in_order_later_over_earlier(tmp_path):
    found = given(tmp_path, {
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "base"},
                                     {"kind": "ConfigMap", "name": "qa"}]),
        "apps/qa/values.yaml": config_map("base", {"values.yaml": values_text(
            {"replicaCount": 1, "service": {"port": 80, "type": "ClusterIP"}, "tags": ["a", "b"]})})
        + "---\n" + config_map("qa", {"values.yaml": values_text(
            {"replicaCount": 2, "service": {"port": 8080}, "tags": ["c"]})})})
    # Maps merge key by key; anything else (a list too) is replaced, as Helm's MergeMaps does.
    assert found.values == {"replicaCount": 2, "service": {"port": 8080, "type": "ClusterIP"}, "tags": ["c"]}


def test_a_patch_kustomize_applies_over_the_config_map_is_read(tmp_path):
    found = given(tmp_path, {
        "apps/qa/kustomization.yaml": yaml.safe_dump({
            "resources": ["web.yaml", "values.yaml"],
            "patches": [{"patch": config_map("web-values", {"values.yaml": "replicaCount: 7\n"})}]}),
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 1\n"})})
    assert found.values == {"replicaCount": 7} and found.unknown == ()


def test_an_optional_missing_key_is_skipped_a_required_one_is_a_problem(tmp_path):
    found = given(tmp_path, {
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values", "valuesKey": "extra.yaml",
                                      "optional": True},
                                     {"kind": "ConfigMap", "name": "web-values"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 4\n"})})
    assert found.values == {"replicaCount": 4} and found.unknown == () and found.problems == ()

    required = given(tmp_path / "required", {
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values", "valuesKey": "extra.yaml"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 4\n"})})
    assert required.problems == ("helm-controller refuses the release: ConfigMap web/web-values "
                                 "(apps/qa/values.yaml) has no key `extra.yaml` and the reference is "
                                 "not optional.",)


def test_a_generated_config_map_stays_unknown(tmp_path):
    found = given(tmp_path, {
        "apps/qa/kustomization.yaml": yaml.safe_dump({
            "resources": ["web.yaml"],
            "configMapGenerator": [{"name": "web-values", "namespace": "web",
                                    "files": ["values.yaml=qa-values.yaml"]}]}),
        "apps/qa/qa-values.yaml": "replicaCount: 3\n",
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values"}])})
    assert found.values == {}
    assert len(found.unknown) == 1 and found.unknown[0].startswith(
        "ConfigMap `web-values`: a configMapGenerator in apps/qa/kustomization.yaml makes it"), found.unknown


def test_a_secret_stays_unknown_next_to_a_config_map_read(tmp_path):
    found = given(tmp_path, {
        "apps/qa/web.yaml": release([{"kind": "Secret", "name": "web-secrets"},
                                     {"kind": "ConfigMap", "name": "web-values"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: 4\n"})})
    assert found.values == {"replicaCount": 4}
    assert found.unknown == ("Secret `web-secrets`",)


def test_what_flux_may_not_get_from_this_build_stays_unknown(tmp_path):
    # Another namespace, a name kustomize prefixed, a postBuild variable inside, a targetPath.
    found = given(tmp_path, {
        "apps/qa/kustomization.yaml": yaml.safe_dump({"resources": ["web.yaml", "values.yaml", "prefixed"]}),
        "apps/qa/prefixed/kustomization.yaml": yaml.safe_dump({"namePrefix": "qa-",
                                                               "resources": ["cm.yaml"]}),
        "apps/qa/prefixed/cm.yaml": config_map("prefixed", {"values.yaml": "a: 1\n"}),
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "elsewhere"},
                                     {"kind": "ConfigMap", "name": "prefixed"},
                                     {"kind": "ConfigMap", "name": "qa-prefixed"},
                                     {"kind": "ConfigMap", "name": "web-values", "targetPath": "image.tag"}]),
        "apps/qa/values.yaml": config_map("elsewhere", {"values.yaml": "b: 2\n"}, namespace="other")
        + "---\n" + config_map("web-values", {"values.yaml": "v1\n"})})
    assert found.values == {"a": 1}  # qa-prefixed: the name kustomize gives it
    assert [u.split(":")[0] for u in found.unknown] == ["ConfigMap `elsewhere`", "ConfigMap `prefixed`",
                                                       "ConfigMap `web-values`"]
    assert "it may come from elsewhere" in found.unknown[0]
    assert "`targetPath`" in found.unknown[2]


def test_a_post_build_variable_inside_stays_unknown(tmp_path):
    found = given(tmp_path, {
        "clusters/qa/apps.yaml": yaml.safe_dump({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./apps/qa", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                     "postBuild": {"substitute": {"replicas": "3"}}}}),
        "apps/qa/web.yaml": release([{"kind": "ConfigMap", "name": "web-values"}]),
        "apps/qa/values.yaml": config_map("web-values", {"values.yaml": "replicaCount: ${replicas}\n"})},
        settings=parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                                 "environments": [{"name": "qa", "path": "clusters/qa"}]}, environ={}))
    assert found.values == {}
    assert found.unknown == ("ConfigMap `web-values`: Kustomization flux-system/apps's postBuild "
                             "substitution changes it",)


# ---- through Errbot ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_charts(registry):
    for version, (files, metadata) in WEB.items():
        push_chart(registry.host, "preview/web", version, app_version=f"app-{version}",
                   files=files, metadata=metadata)
    return f"oci://{registry.host}/preview"


def test_preview_in_chat_checks_the_keys_a_config_map_sets(web_charts, bare_remote, tmp_path):
    # qa's HelmRelease sets only service.port; its ConfigMap sets the key 7.0.0 removes and the
    # value 7.0.0's schema refuses; a Secret next to it stays unknown.
    release_text = release_file(web_charts, "6.0.0")
    values_at = release_text.index("  values:\n")
    qa_release = release_text[:values_at] + (
        "  valuesFrom:\n    - kind: ConfigMap\n      name: web-values\n"
        "    - kind: Secret\n      name: web-secrets\n      optional: true\n"
        "  values:\n    service:\n      port: 9090\n")
    url = bare_remote({"apps/qa/web.yaml": qa_release,
                       "apps/qa/web-values.yaml": config_map("web-values", {"values.yaml": values_text(
                           {"replicaCount": "3", "ingress": {"hosts": ["web.example.com"]}})})})
    before = remote_tip(url)
    raw = {"repo": {"url": url, "branch": "main"}, "environments": [{"name": "qa", "path": "apps/qa"}]}
    with started_bot(tmp_path, raw) as bot:
        text = ask(bot, "!preview web 7.0.0 in qa")[0]
    assert "- your ingress.hosts is not in 7.0.0's values" in text, text
    assert "qa's values would fail Helm's schema check of 7.0.0:\n- replicaCount must be of type integer" in text
    assert "Unknown to Ferry (Flux merges them; not read, never guessed): Secret web-secrets." in text
    assert "web-values" not in text and "web.example.com" not in text  # read, and not shown
    assert remote_tip(url) == before
