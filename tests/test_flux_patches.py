"""A Flux Kustomization's own patches changed (``spec.patches`` in ``clusters/<env>/apps.yaml``)
read again on their own: the releases they select, inside the build that holds them
(``flux.flux_patches``). What the bot then holds equals a fresh discovery, and each case the
proof cannot cover is refused (the environment is built again, and that equals a fresh discovery
too). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

import pytest

from gitops.changes.carry import carry_forward, discover, repatch, reread
from gitops.changes.editing import set_version
from gitops.settings import parse_settings
from tests import following
from tests.carry_layouts import MemTree, flux_entry
from tests.test_refold import ENVIRONMENTS, fleet

APPS = {env: [(f"app{i}", f"app{i}") for i in range(4)] for env in ENVIRONMENTS}
APPS_YAML = "clusters/qa/apps.yaml"
QA = "apps/qa/kustomization.yaml"


def patch(name: str, path: str = "/spec/chart/spec/version", value: str = "7.1.0", kind: str = "HelmRelease") -> str:
    """A `spec.patches` entry: an inline JSON 6902 patch of the release ``name``."""
    return (f"    - target:\n        kind: {kind}\n        name: {name}\n      patch: |\n        - op: replace\n"
            f"          path: {path}\n          value: {value}\n")


def flux_fleet(patches: str = "", variables: dict | None = None) -> tuple:
    """(files, settings): each environment applied by `clusters/<env>` (its `flux-system` and an
    `apps` Kustomization of `apps/<env>`), qa's with ``patches`` and ``variables``."""
    files = fleet(APPS)
    for env in ENVIRONMENTS:
        files.update(flux_entry(env, variables or {} if env == "qa" else {}, patches if env == "qa" else "", False))
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": f"clusters/{e}"} for e in ENVIRONMENTS]},
                            environ={})
    return files, config


def with_patches(files: dict, patches: str) -> dict:
    """``files`` with qa's `apps` Kustomization patching ``patches`` (none: no `patches:`)."""
    text = files[APPS_YAML].split("  patches:\n")[0]
    return {**files, APPS_YAML: text + (f"  patches:\n{patches}" if patches else "")}


def followed(before: dict, after: dict, config):
    """What ``repatch`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(repatch, before, after, config)


def chart(held, app: str):
    return next(p for p in held.pins if (p.environment, p.app, p.part) == ("qa", app, "chart"))


def test_a_patch_added_reads_the_release_it_selects_and_folds_its_pins_again():
    files, config = flux_fleet()
    after = with_patches(files, patch("app2"))
    held = followed(files, after, config)
    assert held is not None
    _, _, (gone, anew) = held.carried_from
    assert {p.app for p in anew} == {"app2"}  # the app's pins, not the fleet's
    assert (chart(held, "app2").version, chart(held, "app2").location.file) == ("7.1.0", APPS_YAML)
    # and taken away again: the version back in the release's file
    held = followed(after, files, config)
    assert held is not None and chart(held, "app2").location.file == "apps/qa/app2-app2.yaml"


def test_a_patch_edited_beside_others_reads_what_it_selects_before_and_after():
    files, config = flux_fleet(patch("app0") + patch("app1", value="7.2.0"))
    after = with_patches(files, patch("app0") + patch("app3", value="7.2.0"))
    held = followed(files, after, config)
    assert held is not None
    assert [chart(held, app).version for app in ("app0", "app1", "app3")] == ["7.1.0", "6.5.0", "7.2.0"]


def test_it_goes_after_the_kustomizations_patches_of_the_same_release():
    """kustomize-controller applies the Kustomization's patches last: its version wins."""
    files, config = flux_fleet()
    files[QA] += "patches:\n" + patch("app1", value="7.0.0").replace("    ", "  ", 1).replace("\n    ", "\n  ")
    held = followed(files, with_patches(files, patch("app1", value="7.3.0")), config)
    assert held is not None and chart(held, "app1").version == "7.3.0"


def test_a_plain_folder_and_a_label_selector():
    """`apps/qa` with no kustomization: the Kustomization's level is its releases' only one."""
    files, config = flux_fleet()
    del files[QA]
    files["apps/qa/app3-app3.yaml"] = files["apps/qa/app3-app3.yaml"].replace(
        "  namespace: app3\n", "  namespace: app3\n  labels:\n    tier: canary\n", 1)
    by_label = ("    - target:\n        kind: HelmRelease\n        labelSelector: tier=canary\n      patch: |\n"
                "        - op: replace\n          path: /spec/values/replicaCount\n          value: 4\n")
    held = followed(files, with_patches(files, by_label + patch("app0")), config)
    assert held is not None and chart(held, "app0").version == "7.1.0"


def test_a_patch_naming_a_variable_its_unit_substitutes_builds_it_again():
    files, config = flux_fleet(variables={"APP1_VERSION": "7.5.0"})
    files["apps/qa/app1-app1.yaml"] = files["apps/qa/app1-app1.yaml"].replace('"6.5.0"', '"${APP1_VERSION}"')
    assert followed(files, with_patches(files, patch("app2")), config) is not None
    named = with_patches(files, patch("app2", "/spec/values/replicaCount", "${APP1_VERSION}"))
    assert followed(files, named, config) is None


def test_a_parent_substituting_what_the_patches_name_builds_it_again():
    """`flux-system` substitutes `${TAG}` in what it applies, the `apps` Kustomization among it."""
    files, config = flux_fleet()
    sync = "clusters/qa/flux-system/gotk-sync.yaml"
    files[sync] += '  postBuild:\n    substitute:\n      TAG: "9.0.0"\n'
    assert followed(files, with_patches(files, patch("app2")), config) is not None
    assert followed(files, with_patches(files, patch("app2", value="${TAG}")), config) is None


def test_a_parent_patching_the_kustomizations_patches_builds_it_again():
    """`clusters/qa` writes the `apps` Kustomization's patches itself: what the file says is not
    what Flux applies."""
    files, config = flux_fleet(patch("app0"))
    files["clusters/qa/kustomization.yaml"] = (
        "resources:\n  - flux-system/gotk-sync.yaml\n  - apps.yaml\npatches:\n  - target:\n"
        "      kind: Kustomization\n      name: apps\n    patch: |\n      - op: replace\n"
        "        path: /spec/patches\n        value:\n          - target: {kind: HelmRelease, name: app0}\n"
        "            patch: |\n              - op: replace\n                path: /spec/chart/spec/version\n"
        "                value: 7.1.0\n")
    assert followed(files, with_patches(files, patch("app0", value="7.9.0")), config) is None


def test_a_kustomization_not_followed_builds_it_again():
    files, config = flux_fleet()
    files[APPS_YAML] = files[APPS_YAML].replace("    name: flux-system\n", "    name: elsewhere\n")
    assert followed(files, with_patches(files, patch("app2")), config) is None


def another_key(files: dict) -> dict:
    after = with_patches(files, patch("app2"))
    return {**after, APPS_YAML: after[APPS_YAML].replace("  interval: 10m\n", "  interval: 10m\n  targetNamespace: x\n")}


REFUSED = {
    "a patch of a ConfigMap": lambda files: with_patches(files, patch("app2", kind="ConfigMap")),
    "another key of the spec": another_key,
    "a patch file": lambda files: {**with_patches(files, "    - path: extra.yaml\n      target:\n"
                                                         "        kind: HelmRelease\n        name: app1\n"),
                                   "clusters/qa/extra.yaml": "- op: replace\n  path: /spec/values/replicaCount\n"
                                                             "  value: 2\n"},
    "a text taken for a file first": lambda files: {
        **files, APPS_YAML: files[APPS_YAML] + "  patchesStrategicMerge:\n    - nowhere.yaml\n"},
    "components listed": lambda files: with_patches(files, patch("app2")),
    "an inline patch that is not YAML": lambda files: with_patches(files, patch("app2") + (
        "    - target:\n        kind: HelmRelease\n        name: app1\n      patch: |\n        - op: [replace\n")),
    "a file added beside": lambda files: {**with_patches(files, patch("app2")), "apps/qa/notes.yaml": "x: 1\n"},
    "its namespace": lambda files: {**files, APPS_YAML: with_patches(files, patch("app2"))[APPS_YAML].replace(
        "  namespace: flux-system\n", "  namespace: apps\n", 1)},
    "a second Kustomization's too": lambda files: {**files, APPS_YAML: files[APPS_YAML].replace(
        "---\n", "  patches:\n" + patch("app2") + "---\n").replace(patch("app0"), patch("app3"))},
    "an image setter": lambda files: with_patches(files, (
        "    - target:\n        kind: HelmRelease\n        name: app2\n      patch:\n        - op: replace\n"
        "          path: /spec/values/image\n"
        '          value: ghcr.io/acme/app2:2.0.0 # {"$imagepolicy": "flux-system:app2"}\n')),
}


INFRA = ("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: infra\n"
         "  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./infra\n  sourceRef:\n    kind: GitRepository\n"
         "    name: flux-system\n  patches:\n" + patch("app0"))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_proof_does_not_cover_builds_the_environment_again(case):
    files, config = flux_fleet()
    if case == "a second Kustomization's too":  # both given patches in one file
        files[APPS_YAML] += "---\n" + INFRA
        files["infra/app0.yaml"] = files["apps/qa/app0-app0.yaml"].replace("name: app0", "name: infra0")
    if case == "a patch file":  # there before and after: only the patches change
        files["clusters/qa/extra.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n"
    if case == "components listed":  # before and after: only the patches change
        files[APPS_YAML] += "  components:\n    - comp\n"
        files["apps/qa/comp/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
    assert followed(files, REFUSED[case](files), config) is None


def test_a_kustomization_followed_twice_builds_it_again():
    """`clusters/qa` lists `apps.yaml` through two kustomizations prefixing its name: two
    Kustomizations of one document, each followed."""
    files, config = flux_fleet()
    files["clusters/qa/kustomization.yaml"] = "resources:\n  - flux-system/gotk-sync.yaml\n  - a\n  - b\n"
    for prefix in ("a", "b"):
        files[f"clusters/qa/{prefix}/kustomization.yaml"] = f"namePrefix: {prefix}-\nresources:\n  - ../apps.yaml\n"
    known = discover(MemTree(files), config)
    qa = next(part for part in known.parts if part.environment == "qa").release_files
    assert sorted(u.kustomization.name for u in qa.units if u.kustomization and u.kustomization.file == APPS_YAML) \
        == ["a-apps", "b-apps"]  # the layout is what the test says
    assert followed(files, with_patches(files, patch("app2")), config) is None


@pytest.mark.parametrize("holder", [APPS_YAML, QA])
def test_a_version_carried_in_an_inline_patch_keeps_what_the_builds_keep(holder):
    """Ferry's own deploy of app1, pinned in an inline patch (of the Flux Kustomization, or of
    qa's kustomization): the builds keep the patch as it is now, so qa's next commit (a label on
    app1) is read on its own, with the new version."""
    files, config = flux_fleet(patch("app1") if holder == APPS_YAML else "")
    if holder == QA:
        files[QA] += "patches:\n" + "".join(line[2:] + "\n" for line in patch("app1").splitlines())
    old = MemTree(files)
    known = discover(old, config)
    location = chart(known, "app1").location
    assert location.file == holder
    bumped = {**files, holder: set_version(files[holder], location, "7.7.0")}
    new = MemTree(bumped)
    carried = carry_forward(known, old, new)
    assert carried is not None and all(part.release_files is not None for part in carried.parts)
    release = "apps/qa/app1-app1.yaml"
    last = MemTree({**bumped, release: bumped[release].replace(
        "  namespace: app1\n", "  namespace: app1\n  labels:\n    tier: canary\n", 1)})
    held, fresh = reread(carried, new, last, config), discover(last, config)
    assert held is not None and (held.pins, held.parts) == (fresh.pins, fresh.parts)
    assert chart(held, "app1").version == "7.7.0"


def test_patches_that_only_moved_in_the_list_move_their_pins_lines():
    """A patch added first moves every patch after it one place down: the versions they write are
    at other lines now (located where they are), not read again; one read through a variable a
    moved patch names builds it again (the variable's version site moved too)."""
    files, config = flux_fleet(patch("app0") + patch("app1", value="7.2.0"))
    held = followed(files, with_patches(files, patch("app3", "/spec/values/replicaCount", "4") + patch("app0")
                                        + patch("app1", value="7.2.0")), config)
    assert held is not None
    assert chart(held, "app1").location.path == ("spec", "patches", 2, "patch")
    _, moves, (gone, anew) = held.carried_from
    assert {before.app for before, _ in moves} == {"app0", "app1"} and {p.app for p in anew} == {"app3"}
    files, config = flux_fleet(patch("app1", value="${APP1_VERSION}"), {"APP1_VERSION": "7.5.0"})
    assert followed(files, with_patches(files, patch("app3", "/spec/values/replicaCount", "4")
                                        + patch("app1", value="${APP1_VERSION}")), config) is None


@pytest.mark.parametrize("key", ["  interval: 5m\n", "  prune: true\n", "  suspend: true\n",
                                 "  dependsOn:\n    - name: infra\n", "  timeout: 2m\n"])
def test_a_key_discovery_never_reads_changes_nothing_it_finds(key):
    """`interval`, `prune`, `suspend`, `dependsOn`, `timeout`: nothing of them is read, with or
    without a patch changed beside."""
    files, config = flux_fleet(patch("app0"))
    after = {**files, APPS_YAML: files[APPS_YAML].replace("  interval: 10m\n", key, 1)}
    held = followed(files, after, config)
    assert held is not None and held.carried_from[2] == ((), ())  # not one pin folded again
    assert followed(files, with_patches(after, patch("app1")), config) is not None


def test_a_version_carried_among_many_inline_patches_is_written_once(monkeypatch):
    """Carrying reads the new text as Ferry's editor would write it: the one version that changed,
    not every pin of the file (each write reads the whole text again); a patch added, which moves
    lines, is no rewrite at all."""
    from gitops.changes import editing
    files, config = flux_fleet("".join(patch(f"app{i}", value=f"7.{i}.0") for i in range(4)))
    old = MemTree(files)
    known = discover(old, config)
    location = chart(known, "app2").location
    writes, write = [], editing.set_version
    monkeypatch.setattr(editing, "set_version", lambda *a: writes.append(a[1]) or write(*a))
    bumped = {**files, APPS_YAML: write(files[APPS_YAML], location, "7.9.0")}
    carried = carry_forward(known, old, MemTree(bumped))
    assert carried is not None and chart(carried, "app2").version == "7.9.0"
    assert [w for w in writes if w.path[:1] == ("spec",)] == [location]  # (the editor writes inside the text too)
    writes.clear()
    assert carry_forward(known, old, MemTree(with_patches(files, patch("app3", "/spec/values/replicaCount", "2")
                                                          + files[APPS_YAML].split("  patches:\n")[1]))) is None
    assert writes == []
