"""A commit of several kinds (an app listed and patched at once, a squash-merged pull request)
followed one kind at a time through the trees between (``flux.split_commits``): what the bot then
holds equals a fresh discovery, each step proven as its own kind's step proves it, and what a tree
between cannot be is refused (the environment is built again, and that equals a fresh discovery
too). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

import pytest

from gitops.changes.carry import in_steps
from gitops.flux.split_commits import _spliced
from tests import following
from tests.test_flux_patches import APPS_YAML, flux_fleet, with_patches, patch as flux_patch
from tests.test_patch_lists import patch
from tests.test_refold import fleet, settings
from tests.test_resource_lists import APPS, base, entries, listed

QA = "apps/qa/kustomization.yaml"


def followed(before: dict, after: dict, config=None):
    """What ``in_steps`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(in_steps, before, after, config or settings())


def chart(held, app: str, env: str = "qa"):
    return next(p for p in held.pins if (p.environment, p.app, p.part) == (env, app, "chart"))


def test_an_app_promoted_with_a_patch_of_its_own():
    """`../base/new` listed by qa and its version patched there, in one commit."""
    files = {**fleet(APPS), **base("new", "fresh")}
    after = listed(files, "qa", ["../base/new"] + entries(files, "qa"))
    after[QA] += "patches:\n" + patch("new", value="7.9.0")
    held = followed(files, after)
    assert held is not None and chart(held, "new").version == "7.9.0"
    _, _, (gone, anew) = held.carried_from
    assert {p.app for p in anew} == {"new"}  # that app's pins, not the fleet's
    # taken away again, patch and all
    assert followed(after, files) is not None


def test_a_patch_file_added_with_them_comes_in_the_second_half():
    """The commit adds the app's folder and a patch file beside the overlay: the folder's files
    come with the listing, the patch file with the patches."""
    files = {**fleet(APPS), **base("new", "fresh")}
    after = listed({**files, "apps/qa/new-values.yaml": "- op: replace\n  path: /spec/values/replicaCount\n  value: 3\n"},
                   "qa", entries(files, "qa") + ["../base/new"])
    after[QA] += "patches:\n  - path: new-values.yaml\n    target:\n      kind: HelmRelease\n      name: new\n"
    held = followed(files, after)
    assert held is not None and "apps/qa/new-values.yaml" in held.read


def test_an_app_file_listed_and_another_app_patched():
    files = fleet(APPS)
    after = listed({**files, "apps/qa/new.yaml": files["apps/qa/app0-app0.yaml"].replace("name: app0", "name: new")},
                   "qa", entries(files, "qa") + ["new.yaml"])
    after[QA] += "patches:\n" + patch("app2", value="7.4.0")
    held = followed(files, after)
    assert held is not None and (chart(held, "new").version, chart(held, "app2").version) == ("6.5.0", "7.4.0")


def test_an_app_listed_and_patched_by_its_flux_kustomization():
    files, config = flux_fleet()
    files = {**files, **base("new", "fresh")}
    after = with_patches(listed(files, "qa", entries(files, "qa") + ["../base/new"]), flux_patch("new", value="7.8.0"))
    held = followed(files, after, config)
    assert held is not None and (chart(held, "new").version, chart(held, "new").location.file) == ("7.8.0", APPS_YAML)


@pytest.mark.parametrize("case", ["resources written as a flow list over lines", "no `resources:` before",
                                  "another key too"])
def test_what_the_tree_between_cannot_be_builds_it_again(case):
    files = {**fleet(APPS), **base("new", "fresh")}
    after = listed(files, "qa", entries(files, "qa") + ["../base/new"])
    after[QA] += "patches:\n" + patch("app1")
    if case == "resources written as a flow list over lines":
        after[QA] = after[QA].replace("resources:\n", "resources: [\n  ", 1).replace("\n  - ", ",\n  ").replace(
            "\npatches:", "]\npatches:", 1)
    elif case == "no `resources:` before":
        files[QA] = files[QA].split("resources:\n")[0] + "namePrefix: ''\n"
        after[QA] = "namePrefix: ''\n" + after[QA]
    else:
        after[QA] += "namespace: team\n"
    assert followed(files, after) is None


def test_the_text_between_takes_only_the_resources_block():
    old = "# qa\nresources:\n  - a.yaml  # first\n- b.yaml\n\n# patches below\npatches: []\nnamePrefix: x-\n"
    new = "# qa (edited)\nresources:\n  - a.yaml\n  - c.yaml\npatches:\n  - path: p.yaml\nnamePrefix: x-\n"
    assert _spliced(old, new, "resources") == "# qa\nresources:\n  - a.yaml\n  - c.yaml\npatches: []\nnamePrefix: x-\n"
    assert _spliced("resources: [a.yaml]\nnamePrefix: x-\n", "resources: [a.yaml, b.yaml]  # two\n", "resources") == \
        "resources: [a.yaml, b.yaml]  # two\nnamePrefix: x-\n"
    # a key the parent has not: added last; one the commit has not: taken out
    assert _spliced("resources: [a.yaml]\n", "images:\n  - name: x\n    newTag: 1\nresources: [a.yaml]\n", "images") == \
        "resources: [a.yaml]\nimages:\n  - name: x\n    newTag: 1\n"
    assert _spliced("images: []\nresources: [a.yaml]\n", "resources: [a.yaml]\n", "images") == "resources: [a.yaml]\n"
    assert _spliced("resources: [\n  a.yaml]\n", "resources: [a.yaml, b.yaml]\n", "resources") is None


def test_a_squashed_pull_request_of_every_kind():
    """One commit: an app promoted (listed), another patched, a cluster variable given another
    value, a label on a third release: each kind followed in turn."""
    from tests.test_variable_values import cluster_fleet, valued
    files, config = cluster_fleet()
    files = {**files, **base("new", "fresh")}
    after = valued(files, REPLICAS="5")
    after[QA] = after[QA].replace("resources:\n", "resources:\n  - ../base/new\n", 1) + \
        patch("app0", value="7.3.0")  # one more patch of qa's (it has app3's)
    release = "apps/qa/app2-app2.yaml"
    after[release] = after[release].replace("  namespace: app2\n", "  namespace: app2\n  labels:\n    tier: canary\n", 1)
    held = followed(files, after, config)
    assert held is not None and (chart(held, "new").version, chart(held, "app0").version) == ("7.0.0", "7.3.0")
    # and each kind alone is still its own step's: not this one's
    assert followed(files, valued(files, REPLICAS="5"), config) is None


def test_an_app_listed_with_an_image_override_and_a_patch_in_one_kustomization():
    """qa's kustomization lists `../base/new`, sets an image and patches app0, in one commit: its
    `resources:`, then its `images:`, then its patches."""
    files = {**fleet(APPS), **base("new", "fresh")}
    files[QA] += "images:\n  - name: ghcr.io/acme/other\n    newTag: 1.0.0\n"
    after = {**files, QA: files[QA].replace("resources:\n", "resources:\n  - ../base/new\n", 1).replace(
        "    newTag: 1.0.0\n", "    newTag: 1.0.0\n  - name: ghcr.io/acme/new\n    newTag: 2.0.0\n") +
        "patches:\n" + patch("app0", value="7.3.0")}
    held = followed(files, after)
    assert held is not None and chart(held, "app0").version == "7.3.0"
    assert [p.version for p in held.pins if (p.environment, p.kind) == ("qa", "kustomize-image")
            and p.app.endswith("new")] == ["2.0.0"]  # (`/new`: the release `fresh/new` has the name too)
