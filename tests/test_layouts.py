"""Layouts real teams use (``tests/flux_layouts``), end to end: a real Errbot (its test backend), a
real bare remote and the real registry. Each case of issue 18 (items 5 and 6) is answered as
kustomize and Flux build it: what `!versions` shows, the one line a deploy changes, and the
refusals that leave the remote as it was."""
import pytest

from tests import flux_layouts
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import changed_lines, remote_file, remote_tip


@pytest.fixture
def fleet_url(registry, charts, images, bare_remote):
    return bare_remote(flux_layouts.files(registry.host, registry.url))


@pytest.fixture
def bot(tmp_path, fleet_url):
    with started_bot(tmp_path, flux_layouts.settings(fleet_url)) as testbot:
        yield testbot


def rows(text):
    return {l.split()[0]: l.split()[1:] for l in text.splitlines() if l.split()}


def test_versions_show_every_layout_as_kustomize_and_flux_build_it(bot):
    text = ask(bot, "!versions")[0]
    table = rows(text)
    # A Component in every namespace folder: one copy per namespace, each with its chart version.
    assert table["alpha"][:2] == ["6.5.0*", "-"] and table["beta"][:2] == ["6.5.0*", "-"]
    assert table["team-a/cache"][:2] == ["18.0.0*", "-"] and table["team-b/cache"][:2] == ["18.0.0*", "-"]
    # The overlay's `images:` decides, not the base's 0.0.1 (kustomize: static:1.1.0 in dev).
    assert table["static"] == ["1.1.0*", "1.0.0*", "1.2.0", "image"]
    assert table["worker"] == ["1.1.0*", "1.0.0*", "1.2.0", "image"]
    # Replacements: targetNamespace from ConfigMap cluster-settings, a version from it too.
    assert table["east/queue"][:2] == ["18.0.0*", "18.0.0*"] and "west/queue" in table
    assert table["mail"][:2] == ["6.5.1*", "6.5.0*"]
    # Followed through the ExternalArtifact the ArtifactGenerator copies from shop/.
    assert table["shop"][:2] == ["6.5.2*", "6.5.0*"]
    # An OCI chart named with a path under its HelmRepository: the registry answers.
    assert table["runner"][:3] == ["18.0.0*", "18.0.0*", "19.0.0"]
    assert "placeholder/queue" not in text and "set-by-replacements" not in text
    assert ("⚠ dev · clusters/dev/artifacts.yaml: Kustomization flux-system/odd is not followed: "
            "ExternalArtifact flux-system/odd (ArtifactGenerator flux-system/flux-system, "
            "clusters/dev/artifacts.yaml): its copies move files to other folders") in text
    assert "No chart registry" not in ask(bot, "!versions runner")[0]


def test_a_file_reached_twice_refuses_as_shared_and_the_remote_stays(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy alpha 6.5.1 to dev")[0]
    assert "pinned in components/podinfo-source/ocirepository.yaml, which is also read by dev/beta" in text
    text = ask(bot, "!deploy team-a/cache 18.1.0 to dev")[0]  # the edit would move team-b's cache too
    assert "components/cache/cache.yaml, which is also read by dev/team-b/cache" in text
    assert remote_tip(fleet_url) == before


@pytest.mark.parametrize("app, file", [("static", "apps/dev/static/kustomization.yaml"),
                                       ("worker", "apps/dev/worker/kustomization.yaml")])
def test_an_overlays_images_is_the_line_a_deploy_changes(bot, fleet_url, app, file):
    base = remote_file(fleet_url, f"apps/base/{app}/kustomization.yaml")
    intent, result = ask(bot, f"!deploy {app} 1.2.0 to dev", replies=2)
    assert "1.1.0 → 1.2.0" in result and file in result
    stat, lines = changed_lines(fleet_url)
    assert stat == f"1\t1\t{file}"
    assert lines == ["-    newTag: 1.1.0", "+    newTag: 1.2.0"]
    assert remote_file(fleet_url, f"apps/base/{app}/kustomization.yaml") == base


def test_a_tag_written_with_its_digest_is_refused(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy web image 1.1.0 to dev")[0]
    assert text.startswith("web image in dev gets 1.0.0@sha256:abab")
    assert "a digest (spec.values.image.tag: 1.0.0@sha256:" in text and "Edit it by hand" in text
    assert remote_tip(fleet_url) == before


def test_versions_of_an_app_tracked_by_its_image_lists_the_images_tags(bot, registry):
    text = ask(bot, "!versions api")[0]
    assert (f"Newest in the registry (image {registry.host}/images/api): 1.2.0 (no date), "
            "1.1.0 (no date), 1.0.0 (no date).") in text
    assert "6.6.0" not in text and "6.5.3" not in text  # the chart's newest are not the answer
    assert "1.1.0*" in text  # behind the image's newest tag


def test_a_replaced_version_is_refused_naming_its_source(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy mail 6.5.2 to dev")[0]
    assert text.startswith("mail in dev gets 6.5.1 from a kustomize replacement in "
                           "clusters/dev/kustomization.yaml, from ConfigMap cluster-settings "
                           "data.mail_version (clusters/dev/settings.yaml)")
    assert remote_tip(fleet_url) == before


def test_a_deploy_through_an_external_artifact_changes_its_folder_in_git(bot, fleet_url):
    intent, result = ask(bot, "!deploy shop 6.5.3 to dev", replies=2)
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tshop/dev/version.yaml"
    assert lines == ["-      version: 6.5.2", "+      version: 6.5.3"]


def test_a_deploy_of_an_oci_chart_named_with_a_path_changes_one_line(bot, fleet_url):
    intent, result = ask(bot, "!deploy runner 18.1.0 to dev", replies=2)
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tapps/dev/releases/runner.yaml"
    assert lines == ['-      version: "18.0.0"', '+      version: "18.1.0"']
