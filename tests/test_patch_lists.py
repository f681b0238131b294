"""A kustomization's patches changed (a patch added, edited or taken away, a patch file named or
no more) read again on their own: the releases they select, inside the builds that hold them
(``flux.patch_lists``). What the bot then holds equals a fresh discovery, the fold reads again
only the pins that differ, and each case the proof cannot cover is refused (the environment is
built again, and that equals a fresh discovery too). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

import pytest

from gitops.changes.carry import repatch
from gitops.settings import parse_settings
from tests import following
from tests.carry_layouts import flux_entry
from tests.test_refold import ENVIRONMENTS, fleet, settings

APPS = {env: [(f"app{i}", f"app{i}") for i in range(4)] for env in ENVIRONMENTS}
QA = "apps/qa/kustomization.yaml"


def patch(name: str, path: str = "/spec/chart/spec/version", value: str = "7.1.0", kind: str = "HelmRelease") -> str:
    """A `patches:` entry: an inline JSON 6902 patch of the release ``name``."""
    return (f"  - target:\n      kind: {kind}\n      name: {name}\n    patch: |\n      - op: replace\n"
            f"        path: {path}\n        value: {value}\n")


def followed(before: dict, after: dict, config=None):
    """What ``repatch`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(repatch, before, after, config or settings())


def test_a_patch_added_reads_the_release_it_selects_and_folds_its_pins_again():
    files = fleet(APPS)
    after = {**files, QA: files[QA] + "patches:\n" + patch("app2")}
    held = followed(files, after)
    assert held is not None
    _, moves, (gone, anew) = held.carried_from
    assert {p.app for p in anew} == {"app2"}  # the app's pins (its name in every environment), not the fleet's
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("qa", "app2", "chart")] == ["7.1.0"]
    # and taken away again, the version back in the release
    assert followed(after, files) is not None


def test_a_patch_file_named_and_then_let_go():
    files = {**fleet(APPS), "apps/qa/kustomization.yaml": fleet(APPS)[QA] + "patches:\n" + patch("app1")}
    merge = ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app3\n"
             "  namespace: app3\nspec:\n  values:\n    image: ghcr.io/acme/app3:2.0.0\n")
    after = {**files, "apps/qa/app3-values.yaml": merge,
             QA: files[QA].replace("patches:\n", "patches:\n  - path: app3-values.yaml\n")}
    held = followed(files, after)
    assert held is not None and "apps/qa/app3-values.yaml" in held.read
    taken = {p: t for p, t in after.items() if p != "apps/qa/app3-values.yaml"}
    taken[QA] = files[QA]
    held = followed(after, taken)
    assert held is not None and "apps/qa/app3-values.yaml" not in held.read
    # named no more but left in the repository: no longer read
    assert followed(after, {**after, QA: files[QA]}) is not None


def test_an_inline_patch_edited_moves_the_version_back_to_its_release():
    files = fleet(APPS)
    files[QA] += "patches:\n" + patch("app0") + patch("app1")
    held = followed(files, {**files, QA: files[QA].replace("/spec/chart/spec/version", "/spec/values/replicaCount", 1)})
    assert held is not None
    app0 = next(p for p in held.pins if (p.environment, p.app, p.part) == ("qa", "app0", "chart"))
    assert (app0.version, app0.location.file) == ("6.5.0", "apps/qa/app0-app0.yaml")


def test_a_first_patch_of_a_release_another_route_patches_too_builds_it_again():
    """qa lists `patched`, then `bare`, both listing app1's file (one object: the patches of both
    apply to it, in the order kustomize walks them). A first patch added to `bare` comes after
    `patched`'s: where it goes among another route's patches is the walk's, so it is built again."""
    files = fleet(APPS)
    for folder in ("patched", "bare"):
        files[f"apps/qa/{folder}/kustomization.yaml"] = "resources:\n  - ../app1-app1.yaml\n"
    files["apps/qa/patched/kustomization.yaml"] += "patches:\n" + patch("app1", value="7.2.0")
    files[QA] = files[QA].replace("resources:\n", "resources:\n  - patched\n  - bare\n")
    path = "apps/qa/bare/kustomization.yaml"
    assert followed(files, {**files, path: files[path] + "patches:\n" + patch("app1", value="7.3.0")}) is None


def test_a_components_patch_is_its_users_and_builds_it_again():
    files = fleet(APPS)
    files["apps/qa/comp/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
    files[QA] += "components:\n  - comp\n"
    path = "apps/qa/comp/kustomization.yaml"
    assert followed(files, {**files, path: files[path] + "patches:\n" + patch("app1")}) is None
    # and the kustomization that lists components: their patches share its scope
    assert followed(files, {**files, QA: files[QA] + "patches:\n" + patch("app1")}) is None


def flux_fleet() -> tuple:
    """qa applied by a Flux Kustomization that substitutes `${APP1_VERSION}`."""
    files = fleet(APPS)
    for env in ENVIRONMENTS:
        files.update(flux_entry(env, {"APP1_VERSION": "7.5.0"} if env == "qa" else {}, "", False))
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": f"clusters/{e}"} for e in ENVIRONMENTS]},
                            environ={})
    return files, config


def test_a_patch_naming_a_variable_builds_it_again():
    """qa's app1 reads its version from `${APP1_VERSION}`: a patch of app2 naming it too (its
    replicas) makes that line feed more than app1's version, which only a build counts."""
    files, config = flux_fleet()
    files["apps/qa/app1-app1.yaml"] = files["apps/qa/app1-app1.yaml"].replace('"6.5.0"', '"${APP1_VERSION}"')
    assert followed(files, {**files, QA: files[QA] + "patches:\n" + patch("app2")}, config) is not None
    for path in ("/spec/values/replicaCount", "/spec/chart/spec/version"):
        named = {**files, QA: files[QA] + "patches:\n" + patch("app2", path, "${APP1_VERSION}")}
        assert followed(files, named, config) is None


def test_a_file_added_beside_that_nothing_names_is_read_by_none():
    files = fleet(APPS)
    after = {**files, "apps/qa/notes.yaml": "kind: HelmRelease\n", QA: files[QA] + "patches:\n" + patch("app2")}
    held = followed(files, after)
    assert held is not None and "apps/qa/notes.yaml" not in held.read


REFUSED = {
    "a patch of a ConfigMap": lambda files: {QA: files[QA] + "patches:\n" + patch("app2", kind="ConfigMap")},
    "a patch file that is not there": lambda files: {QA: files[QA] + "patches:\n  - path: nowhere.yaml\n"},
    "a release file named as a patch": lambda files: {
        QA: files[QA] + "patches:\n  - path: app2-app2.yaml\n"},
    "a patch file in another folder added": lambda files: {
        "apps/qa/team/extra.yaml": "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n",
        QA: files[QA] + "patches:\n  - path: team/extra.yaml\n" + "    target:\n      kind: HelmRelease\n      name: app1\n"},
    "another key of the kustomization": lambda files: {QA: files[QA] + "patches:\n" + patch("app2") + "namePrefix: x-\n"},
    "a text taken for a file first": lambda files: {QA: files[QA] + "patchesStrategicMerge:\n  - nowhere.yaml\n"},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_proof_does_not_cover_builds_the_environment_again(case):
    files = fleet(APPS)
    assert followed(files, {**files, **REFUSED[case](files)}) is None


def test_a_patch_file_another_environment_looked_for_builds_that_one_again():
    files = fleet(APPS)
    dev = "apps/dev/kustomization.yaml"
    files[dev] = files[dev].replace("resources:\n", "resources:\n  - ../qa/extra.yaml\n")  # missing: a problem
    after = {**files, "apps/qa/extra.yaml": "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n",
             QA: files[QA] + "patches:\n  - path: extra.yaml\n    target:\n      kind: HelmRelease\n      name: app1\n"}
    assert followed(files, after) is None


def test_a_patch_file_removed_that_is_still_read_builds_it_again():
    files = fleet(APPS)
    files["apps/qa/extra.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n"
    files["apps/qa/more/kustomization.yaml"] = ("resources:\n  - ../app3-app3.yaml\npatches:\n  - path: ../extra.yaml\n"
                                                "    target:\n      kind: HelmRelease\n      name: app3\n")
    files[QA] = files[QA].replace("  - app3-app3.yaml\n", "  - more\n") + \
        "patches:\n  - path: extra.yaml\n    target:\n      kind: HelmRelease\n      name: app1\n"
    after = {p: t for p, t in files.items() if p != "apps/qa/extra.yaml"}
    after[QA] = files[QA].split("patches:\n")[0]
    assert followed(files, after) is None


def test_a_patch_file_another_environment_reads_removed_builds_that_one_again():
    files = fleet(APPS)
    files["apps/qa/extra.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n"
    dev = "apps/dev/kustomization.yaml"
    files[dev] = files[dev].replace("resources:\n", "resources:\n  - ../qa/extra.yaml\n")  # read, builds nothing
    with_patch = {**files, QA: files[QA] + "patches:\n  - path: extra.yaml\n    target:\n      kind: HelmRelease\n"
                  "      name: app1\n"}
    after = {p: t for p, t in files.items() if p != "apps/qa/extra.yaml"}
    assert followed(with_patch, after) is None
    assert followed(with_patch, files) is not None  # named no more, still there: dev reads it on
