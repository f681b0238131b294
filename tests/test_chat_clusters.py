"""Environments given by their cluster entry, through a real Errbot, a real bare remote and a real
registry: what `!versions` says, the one line each deploy changes, and the refusals that leave the
remote as it was."""
import pytest

from tests.ferrybot import ask, started_bot
from tests.fixtures_git import changed_lines, remote_file, remote_tip
from tests.flux_clusters import cluster_files, cluster_settings


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(cluster_files(registry.url))


@pytest.fixture
def bot(tmp_path, fleet_url):
    with started_bot(tmp_path, cluster_settings(fleet_url)) as testbot:
        yield testbot


def test_versions_show_what_flux_applies_and_what_it_cannot_follow(bot):
    text = ask(bot, "!versions")[0]
    rows = {l.split()[0]: l.split()[1:] for l in text.splitlines() if l and l.split()[0] in
            ("podinfo", "redis", "cert-manager", "metrics")}
    assert rows["podinfo"][:2] == ["6.5.1*", "6.5.0*"]  # from each cluster's Kustomization patch
    assert rows["redis"][:2] == ["18.0.0*", "18.0.0*"]  # `${REDIS_VERSION}`, substituted
    assert rows["cert-manager"][:2] == ["v1.14.0*", "v1.14.0*"]  # from ConfigMap cluster-vars
    assert "auth/dragonfly" in text and "cache/dragonfly" in text
    # (the test backend shows Markdown as plain text: no backticks)
    assert ("⚠ staging · clusters/staging/tenants.yaml: Kustomization flux-system/tenants is not "
            "followed: its manifests come from an OCI artifact") in text


def test_deploy_changes_the_kustomization_patch_line(bot, fleet_url):
    base = remote_file(fleet_url, "apps/base/podinfo/release.yaml")
    intent, result = ask(bot, "!deploy podinfo 6.5.2 to staging", replies=2)
    assert "6.5.1 → 6.5.2" in result and "clusters/staging/apps.yaml" in result
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tclusters/staging/apps.yaml"
    assert lines == ["-          value: 6.5.1", "+          value: 6.5.2"]
    assert remote_file(fleet_url, "apps/base/podinfo/release.yaml") == base
    assert "6.5.2" in ask(bot, "!versions podinfo")[0]


def test_deploy_changes_the_variable_definition_in_the_registry_spelling(bot, fleet_url):
    # The registry tags cert-manager `v1.15.0`; the person types 1.15.0.
    intent, result = ask(bot, "!deploy cert-manager 1.15.0 to staging", replies=2)
    assert "v1.14.0 → v1.15.0" in result
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tclusters/staging/cluster-vars.yaml"
    assert lines == ["-  CERT_MANAGER_VERSION: v1.14.0", "+  CERT_MANAGER_VERSION: v1.15.0"]
    intent, result = ask(bot, "!deploy redis 18.1.0 to staging", replies=2)
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tclusters/staging/apps.yaml"
    assert lines == ['-      REDIS_VERSION: "18.0.0"', '+      REDIS_VERSION: "18.1.0"']
    text = ask(bot, "!versions redis")[0]
    assert "${REDIS_VERSION} from spec.postBuild.substitute of Kustomization flux-system/apps" in text


def test_refusals_name_what_else_reads_the_pin_and_leave_the_remote(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy metrics 6.5.1 to staging")[0]
    assert "clusters/staging/apps.yaml, which is also read by ${METRICS_VERSION} elsewhere in " \
           "apps/base/metrics/release.yaml" in text
    text = ask(bot, "!deploy auth/dragonfly 19.0.0 to staging")[0]
    assert "also read by staging/cache/dragonfly" in text
    text = ask(bot, "!deploy podinfo 9.9.9 to staging")[0]
    assert "9.9.9" in text and "6.5.3" in text  # not in the registry: the nearest ones
    text = ask(bot, "!diff metrics staging production")[0]
    assert text.startswith("Ferry cannot show the Helm values Flux gives metrics in staging: they hold")
    assert remote_tip(fleet_url) == before
    shown = ask(bot, "!versions auth/dragonfly")[0]
    assert "the pin is shared with staging/cache/dragonfly" in shown
