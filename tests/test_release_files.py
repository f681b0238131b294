"""A commit that changes only files of HelmReleases beyond their versions (a label, a value, a
key) reads those releases again on their own, inside the builds that hold them, and builds no
environment; whatever could reach past one release (a patch reading the file, a kustomize
replacement, a variable's uses, a patch selecting by the label) is built again instead. Each
case against a fresh discovery; then through a real core on a real bare remote."""
from __future__ import annotations

import pytest

from gitops.changes.carry import carry_forward, discover, follow, reread
from gitops.core import GitOps
from gitops.flux import images
from gitops.settings import parse_settings
from devtools.fluxrepo import ENVIRONMENTS, demo_settings, fleet_apps, fleet_files
from tests import carry_layouts as layouts
from tests.carry_fleet import FLEET_SETTINGS, fleet
from tests.fixtures_git import remote_tip
from tests.test_carry import tree

SETTINGS = parse_settings(FLEET_SETTINGS, environ={})
STAG = "apps/stag/podinfo.hr"
BASE = "apps/base/podinfo/helm-release"
LABEL = "kind: HelmRelease\nmetadata:\n  labels:\n    tier: canary\n"


def labelled(text: str) -> str:
    return text.replace("kind: HelmRelease\nmetadata:\n", LABEL, 1)


def after(tmp_path, files: dict, change: dict, settings=SETTINGS) -> tuple:
    """(what discovery found before, what ``reread`` makes of the commit or None, what the bot
    follows it to, a fresh discovery)."""
    old, new = tree(tmp_path, "old", files), tree(tmp_path, "new", {**files, **change})
    before = discover(old, settings)
    assert carry_forward(before, old, new) is None  # no version moved: not carried
    return before, reread(before, old, new, settings), follow(before, old, new, settings), \
        discover(new, settings)


def test_a_label_reads_one_release_again_and_builds_nothing(tmp_path):
    files = fleet("127.0.0.1:5000")
    before, held, followed, fresh = after(tmp_path, files, {STAG: labelled(files[STAG])})
    assert held is not None and held == fresh and followed == fresh
    # No environment built: every part kept its builds (one built again makes its own); stag's
    # release is held with its label now (a patch selecting the label reads it so).
    assert [a.release_files.units is b.release_files.units for a, b in zip(held.parts, before.parts)] == [True] * 3
    assert [h.resource.doc["metadata"].get("labels") for h in held.parts[1].release_files.held] == [{"tier": "canary"}]
    assert [a is b for a, b in zip(held.parts, before.parts)] == [True, False, True]
    assert held.carried_from[1] == ()  # no pin reads otherwise: the inventory moves no pin


def test_a_value_that_names_a_values_file_moves_its_pins(tmp_path):
    """A base release read by dev and prod gains `valuesFrom`: both pins read it, in place."""
    files = fleet("127.0.0.1:5000")
    change = {BASE: files[BASE].replace("\nspec:\n", "\nspec:\n  valuesFrom:\n    - kind: ConfigMap\n"
                                                     "      name: extra\n", 1)}
    before, held, followed, fresh = after(tmp_path, files, change)
    assert held is not None and held == fresh and followed == fresh
    moved = {(a.environment, a.part) for _, a in held.carried_from[1]}
    assert moved == {("dev", "chart"), ("prod", "chart")}
    assert all(a.values_from and not b.values_from for b, a in held.carried_from[1])


def test_a_patch_selecting_the_label_is_built_again(tmp_path):
    """stag's kustomization patches every release labelled `tier: canary` to another version: the
    label moves the version's line to the patch, which one release read again cannot say."""
    files = fleet("127.0.0.1:5000")
    files["apps/stag/kustomization.yaml"] += (
        "patches:\n  - target:\n      kind: HelmRelease\n      labelSelector: tier=canary\n"
        "    patch: |\n      - op: replace\n        path: /spec/chart/spec/version\n        value: 9.9.9\n")
    _, held, followed, fresh = after(tmp_path, files, {STAG: labelled(files[STAG])})
    assert held is None
    assert followed == fresh
    assert [p.version for p in fresh.pins if p.environment == "stag" and p.part == "chart"] == ["9.9.9"]


def test_a_release_read_by_a_replacement_is_built_again(tmp_path):
    """stag copies its release's replica count into its version with a kustomize replacement:
    a value of the release feeds another field; the environment is built again."""
    files = fleet("127.0.0.1:5000")
    files["apps/stag/kustomization.yaml"] += (
        "replacements:\n  - source:\n      kind: HelmRelease\n      name: podinfo\n"
        "      fieldPath: spec.values.replicaCount\n    targets:\n      - select:\n"
        "          kind: HelmRelease\n          name: podinfo\n        fieldPaths:\n"
        "          - spec.values.copies\n")
    change = {STAG: files[STAG].replace("replicaCount: 1", "replicaCount: 3")}
    before, held, followed, fresh = after(tmp_path, files, change)
    assert before.parts[1].release_files is None and held is None
    assert followed == fresh


def test_a_release_file_that_is_also_a_patch_is_built_again(tmp_path):
    """prod reads the base release as a resource and, through a patch with a target, as the body
    of a patch of another release: what one file says reaches past its own release."""
    files = fleet("127.0.0.1:5000")
    files["apps/prod/Kustomization"] += ("  - path: ../base/podinfo/helm-release\n    target:\n"
                                         "      kind: HelmRelease\n      name: podinfo\n")
    change = {BASE: files[BASE].replace("chart: podinfo", "chart: podinfo-next")}
    _, held, followed, fresh = after(tmp_path, files, change)
    assert held is None
    assert followed == fresh


def test_a_release_that_looks_for_another_source_is_built_again(tmp_path):
    """stag's release looked for its HelmRepository outside its builds (found anywhere in the
    repository); renamed to one its own build holds, it no longer does: what stag looked up
    changes with it, which only a build says."""
    files = fleet("127.0.0.1:5000")
    files = {p: t.replace("  - repository.yaml\n", "") for p, t in files.items()}
    files["infra/repository.yaml"] = files.pop("apps/stag/repository.yaml")
    del files["apps/base/podinfo/repository.yaml"]
    files["apps/stag/other.yaml"] = files["infra/repository.yaml"].replace("name: charts", "name: other")
    files["apps/stag/kustomization.yaml"] += "  - other.yaml\n"
    before, held, followed, fresh = after(tmp_path, files, {STAG: files[STAG].replace("name: charts", "name: other")})
    assert before.parts[1].looked_up and not fresh.parts[1].looked_up
    assert held is None
    assert followed == fresh


def flux_fleet(canary: bool = True) -> tuple:
    """(files, settings, the release file): dev's version is `${PODINFO_VERSION}` of its Flux
    Kustomization, read in the base release; with ``canary``, a patch file of dev's reads it for
    every release labelled `tier: canary`."""
    files = {"apps/base/podinfo/kustomization.yaml": layouts.kustomization(["release.yaml", "repository.yaml"]),
             "apps/base/podinfo/release.yaml": layouts.release("podinfo", "${PODINFO_VERSION}", None, False),
             "apps/base/podinfo/repository.yaml": layouts.repository("podinfo"),
             "apps/dev/kustomization.yaml": layouts.kustomization(["../base/podinfo"], (
                 "  - path: canary.yaml\n    target:\n      kind: HelmRelease\n      labelSelector: tier=canary\n")),
             "apps/dev/canary.yaml": "- op: replace\n  path: /spec/chart/spec/version\n  value: ${PODINFO_VERSION}\n",
             **layouts.flux_entry("dev", {"PODINFO_VERSION": "6.1.0"}, "", False)}
    if not canary:
        files["apps/dev/kustomization.yaml"] = layouts.kustomization(["../base/podinfo"])
        del files["apps/dev/canary.yaml"]
    settings = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                               "environments": [{"name": "dev", "path": "clusters/dev"}]}, environ={})
    return files, settings, "apps/base/podinfo/release.yaml"


def test_a_label_that_moves_where_a_variable_is_read_is_built_again(tmp_path):
    """dev's version is `${PODINFO_VERSION}` of its Flux Kustomization, read in the release; a
    patch of every release labelled `tier: canary` reads it in its own file instead. The label
    keeps the pin's line (the variable's) but moves where the variable is read: built again."""
    files, settings, release = flux_fleet()
    before, held, followed, fresh = after(tmp_path, files, {release: labelled(files[release])}, settings)
    assert before.parts[0].variables != fresh.parts[0].variables
    assert [p.location for p in before.pins] == [p.location for p in fresh.pins]
    assert held is None
    assert followed == fresh


def test_a_variable_named_again_is_built_again(tmp_path):
    """A `${VAR}` named once more in a release file counts among the variable's other uses (a pin
    reading that variable is shared): not one release's change."""
    files = fleet("127.0.0.1:5000")
    change = {STAG: files[STAG].replace("replicaCount: 1", "replicaCount: ${REPLICAS}")}
    _, held, followed, fresh = after(tmp_path, files, change)
    assert held is None
    assert followed == fresh


def test_a_version_carried_in_a_patch_file_reads_its_patches_again(tmp_path):
    """A version carried in prod's patch file moves what prod's builds kept (the patch's body):
    read again, so prod's next label is read again on its own too, and exactly; one carried in
    stag's release file keeps stag's as they were."""
    files = fleet("127.0.0.1:5000")
    old = tree(tmp_path, "old", files)
    known = discover(old, SETTINGS)
    bumped = {**files, "apps/prod/version.json": files["apps/prod/version.json"].replace("6.5.1", "6.5.4"),
              STAG: files[STAG].replace('"6.5.2"', '"6.5.3"')}
    new = tree(tmp_path, "new", bumped)
    carried = carry_forward(known, old, new)
    assert [a.release_files is b.release_files for a, b in zip(carried.parts, known.parts)] == [True, True, False]
    prod = carried.parts[2].release_files
    assert prod is not None and prod.units[0].build.patches[0].body[0]["value"] == "6.5.4"
    for path, text in ((STAG, labelled(bumped[STAG])), (BASE, labelled(bumped[BASE]))):
        last = tree(tmp_path, f"last-{len(path)}", {**bumped, path: text})
        held = reread(carried, new, last, SETTINGS)
        assert held is not None and held == discover(last, SETTINGS)


def test_a_version_carried_in_a_variable_moves_what_the_builds_kept(tmp_path):
    """A version carried in a Flux Kustomization's `postBuild.substitute` moves a variable the
    builds kept: they take its value (``variable_values``), and the environment's next label is
    read on its own with it."""
    files, settings, release = flux_fleet(canary=False)
    old = tree(tmp_path, "old", files)
    known = discover(old, settings)
    entry = "clusters/dev/apps.yaml"
    new_files = {**files, entry: files[entry].replace('"6.1.0"', '"6.2.0"')}
    new = tree(tmp_path, "new", new_files)
    carried = carry_forward(known, old, new)
    assert carried is not None and carried.parts[0].release_files is not None
    last = tree(tmp_path, "last", {**new_files, release: labelled(new_files[release])})
    held = reread(carried, new, last, settings)
    assert held is not None and held == discover(last, settings)


def test_a_label_in_a_patch_file_reads_the_releases_it_patches_again(tmp_path):
    """The bench's fleet: a label in an app's strategic merge patch in one environment (its
    release in the base), and in a release file holding its HelmRepository too; each read again
    on its own, and so is a HelmRepository changed beside the release (the releases finding it
    read again with it). A patch file selecting another kind is built again."""
    files = fleet_files("oci://127.0.0.1:5000/charts", fleet_apps(3, ["podinfo"]),
                        {(f"app-{i:04d}", env): "6.5.0" for i in range(3) for env in ENVIRONMENTS})
    settings = parse_settings(demo_settings("file:///fleet.git"), environ={})
    layouts_ = {name: layout for name, layout, _ in fleet_apps(3, ["podinfo"])}
    patch_app = next(name for name, layout in layouts_.items() if layout == "patch")
    release_app = next(name for name, layout in layouts_.items() if layout == "helmrelease")
    patch, release = f"apps/qa/{patch_app}-values.yaml", f"apps/qa/{release_app}.yaml"
    for path in (patch, release):
        _, held, followed, fresh = after(tmp_path, files, {path: labelled(files[path])}, settings)
        assert held is not None and held == fresh and followed == fresh
    moved = files[release].replace("interval: 10m", "interval: 5m", 1)
    _, held, followed, fresh = after(tmp_path, files, {release: moved}, settings)
    assert held is not None and held == fresh and followed == fresh
    files[patch] = files[patch].replace("kind: HelmRelease", "kind: Deployment")
    files["apps/qa/kustomization.yaml"] = files["apps/qa/kustomization.yaml"].replace(
        f"      kind: HelmRelease\n      name: {patch_app}\n", f"      name: {patch_app}\n")
    labelled_deployment = LABEL.replace("HelmRelease", "Deployment")
    changed = {patch: files[patch].replace("kind: Deployment\nmetadata:\n", labelled_deployment)}
    _, held, followed, fresh = after(tmp_path, files, changed, settings)
    assert held is None and followed == fresh


def two_releases() -> dict:
    """stag runs podinfo and web, its strategic merge patch `pin.yaml` (untargeted: it selects by
    its own kind and name) pins podinfo, `values.yaml` sets its values; `more.yaml` holds a JSON
    6902 patch of podinfo, then an empty document."""
    files = fleet("127.0.0.1:5000")
    files["apps/stag/web.hr"] = files[STAG].replace("name: podinfo\n  namespace", "name: web\n  namespace")
    files["apps/stag/pin.yaml"] = ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
                                   "  name: podinfo\n  namespace: podinfo\nspec:\n  chart:\n    spec:\n"
                                   "      version: 6.6.0\n")
    files["apps/stag/values.yaml"] = files["apps/stag/pin.yaml"].replace(
        "  chart:\n    spec:\n      version: 6.6.0\n", "  values:\n    replicaCount: 2\n")
    files["apps/stag/more.yaml"] = "- op: add\n  path: /spec/values/note\n  value: hi\n---\n"
    files["apps/stag/kustomization.yaml"] = (
        "resources:\n  - podinfo.hr\n  - web.hr\n  - repository.yaml\npatchesStrategicMerge:\n  - pin.yaml\n"
        "  - values.yaml\n"
        "patches:\n  - path: more.yaml\n    target:\n      kind: HelmRelease\n      name: podinfo\n")
    return files


@pytest.mark.parametrize("path, edit, read_again", [
    ("apps/stag/pin.yaml", lambda t: t.replace("version: 6.6.0", "version: 6.6.0\n  values:\n    a: b"), True),
    ("apps/stag/pin.yaml", lambda t: labelled(t), True),
    # another release's name: it now patches web, which no one read again
    ("apps/stag/pin.yaml", lambda t: t.replace("name: podinfo", "name: web"), False),
    ("apps/stag/values.yaml", lambda t: t.replace("name: podinfo", "name: web"), False),
    # another kind: it may patch what is no HelmRelease
    ("apps/stag/pin.yaml", lambda t: t.replace("kind: HelmRelease", "kind: ConfigMap"), False),
    ("apps/stag/more.yaml", lambda t: t.replace("value: hi", "value: ho"), True),
    # no patch any more: the walk makes none of a text
    ("apps/stag/more.yaml", lambda t: '"nothing to patch"\n---\n', False),
    # the empty document becomes one more patch (of podinfo, by the entry's target)
    ("apps/stag/more.yaml", lambda t: t + "- op: add\n  path: /spec/values/more\n  value: 1\n", False),
])
def test_a_patch_file_read_again_or_built_again(tmp_path, path, edit, read_again):
    files = two_releases()
    _, held, followed, fresh = after(tmp_path, files, {path: edit(files[path])})
    assert (held is not None) == read_again
    assert followed == fresh
    if held is not None:
        assert held == fresh


def test_what_an_app_is_tracked_by_changing_makes_the_inventory_again(tmp_path):
    """web pins no chart version, so it is tracked by its image tag; a digest written beside the
    tag refuses that line, and web is tracked by its chart: the release is read again, but the
    inventory is made again, not moved pin by pin."""
    release = layouts.release("web", "6.5.0", "string", False).replace('      version: "6.5.0"\n', "")
    files = {"apps/dev/kustomization.yaml": layouts.kustomization(["release.yaml", "repository.yaml"]),
             "apps/dev/release.yaml": release, "apps/dev/repository.yaml": layouts.repository("web")}
    settings = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                               "environments": [{"name": "dev", "path": "apps/dev"}]}, environ={})
    change = {"apps/dev/release.yaml": release.replace(":1.0.0", ":1.0.0@sha256:" + "a" * 64)}
    before, held, followed, fresh = after(tmp_path, files, change, settings)
    assert [p.part for p in images.split(before.pins, settings)[0]] == ["image"]
    assert [p.part for p in images.split(fresh.pins, settings)[0]] == ["chart"]
    assert held is not None and held == fresh and held.carried_from is None
    assert followed == fresh


def test_a_colleagues_label_moves_the_running_core_without_a_build(tmp_path, bare_remote, external_commit):
    """A real bare remote: a colleague labels stag's release, then changes one of its values.
    After each the core's inventory is a fresh discovery's, moved pin by pin from the last one
    (its lookups kept), and stag's part kept what its builds kept: nothing was built."""
    files = fleet("127.0.0.1:5000")
    url = bare_remote(files)
    core = GitOps(parse_settings({**FLEET_SETTINGS, "repo": {"url": url, "branch": "main"},
                                  "data_dir": str(tmp_path / "data")}, environ={}), fetch_interval=0)
    try:
        last = core.inventory()
        last.find("podinfo", "stag")
        kept = core._pins._by_commit[next(reversed(core._pins._by_commit))].parts[1].release_files
        for change in ({STAG: labelled(files[STAG])},
                       {STAG: labelled(files[STAG]).replace("replicaCount: 1", "replicaCount: 2")}):
            external_commit(url, change)
            inventory = core.inventory()
            ws = next(iter(core.workspaces.values()))
            fresh = discover(ws.tree(remote_tip(url)), core.settings)
            assert (inventory.pins, inventory.others) == images.split(fresh.pins, core.settings)
            assert "_parts" in inventory.__dict__  # moved, its lookups with it: not made again
            assert [a is b for a, b in zip(inventory.pins, last.pins)] == [True] * len(last.pins)
            known = core._pins._by_commit[next(reversed(core._pins._by_commit))]
            assert known.parts[1].release_files.units is kept.units  # its builds kept
            last = inventory
    finally:
        for ws in core.workspaces.values():
            ws.close()


def sources_fleet() -> tuple:
    """(files, settings): three environments of six apps, each environment's HelmRepositories in a
    file of their own (``tests.test_refold.fleet``)."""
    from tests.test_refold import fleet as plain_fleet, settings as plain_settings
    return plain_fleet({env: [(f"app{i}", f"app{i}") for i in range(6)] for env in ("dev", "qa", "prod")}), \
        plain_settings()


def test_a_source_changed_reads_again_the_releases_that_find_it(tmp_path):
    files, settings = sources_fleet()
    path = "apps/qa/repository.yaml"
    moved = files[path].replace("namespace: app2\nspec:\n  type: oci\n  url: oci://127.0.0.1:5000/charts",
                                "namespace: app2\nspec:\n  type: oci\n  url: oci://127.0.0.1:5001/charts")
    assert moved != files[path]
    _, held, followed, fresh = after(tmp_path, files, {path: moved}, settings)
    assert held is not None and held == fresh and followed == fresh
    assert {(a.app, a.environment) for b, a in held.carried_from[1]} == {("app2", "qa")}


@pytest.mark.parametrize("case", ["renamed", "another kind", "looked for elsewhere", "repeated", "second of two"])
def test_a_source_its_environment_does_not_own_alone_is_built_again(tmp_path, case):
    files, settings = sources_fleet()
    path = "apps/qa/repository.yaml"
    if case == "looked for elsewhere":  # prod's release finds app2's source in qa's build
        files["apps/prod/lost.yaml"] = files["apps/prod/app2-app2.yaml"].replace(
            "name: app2\n  namespace: app2", "name: lost\n  namespace: app2-elsewhere").replace(
            "kind: HelmRepository\n        name: charts", "kind: HelmRepository\n        name: charts\n        namespace: app2")
        files["apps/prod/kustomization.yaml"] += "  - lost.yaml\n"
        files["apps/prod/repository.yaml"] = files["apps/prod/repository.yaml"].replace(
            "  name: charts\n  namespace: app2\n", "  name: charts-gone\n  namespace: app2\n")
        for env in ("dev", "qa"):  # in files the repository-wide table does not read: found in the builds
            files[f"apps/{env}/repositories"] = files.pop(f"apps/{env}/repository.yaml")
            files[f"apps/{env}/kustomization.yaml"] = files[f"apps/{env}/kustomization.yaml"].replace(
                "repository.yaml", "repositories")
        path = "apps/qa/repositories"
    if case in ("repeated", "second of two"):
        files["apps/qa/again.yaml"] = layouts.repository("app2")
        files["apps/qa/kustomization.yaml"] += "  - again.yaml\n"
        if case == "second of two":
            path = "apps/qa/again.yaml"
    edit = {"renamed": ("  name: charts\n  namespace: app2\n", "  name: charts2\n  namespace: app2\n"),
            "another kind": ("kind: HelmRepository\nmetadata:\n  name: charts\n  namespace: app2\n",
                             "kind: GitRepository\nmetadata:\n  name: charts\n  namespace: app2\n")}.get(
        case, ("namespace: app2\nspec:\n  type: oci\n  url: oci://127.0.0.1:5000/charts",
               "namespace: app2\nspec:\n  type: oci\n  url: oci://127.0.0.1:5001/charts"))
    moved = files[path].replace(*edit)
    assert moved != files[path]
    _, held, followed, fresh = after(tmp_path, files, {path: moved}, settings)
    assert held is None and followed == fresh


def test_a_patch_selecting_a_label_read_again_finds_the_release_labelled_since(tmp_path):
    """stag's patch file `canary.yaml` patches every release labelled `tier: canary`. A label added
    to its release (read again on its own: the patch sets no pinned field) is what the patch
    selects by when the patch changes next: it now sets the version, and the release is read
    again with it (what the builds keep holds the release as it is now, not as first built)."""
    files = fleet("127.0.0.1:5000")
    files["apps/stag/canary.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 3\n"
    files["apps/stag/kustomization.yaml"] += (
        "patches:\n  - path: canary.yaml\n    target:\n      kind: HelmRelease\n      labelSelector: tier=canary\n")
    one = {**files, STAG: labelled(files[STAG])}
    two = {**one, "apps/stag/canary.yaml": "- op: replace\n  path: /spec/chart/spec/version\n  value: 9.9.9\n"}
    first, second, third = tree(tmp_path, "a", files), tree(tmp_path, "b", one), tree(tmp_path, "c", two)
    labelled_known = reread(discover(first, SETTINGS), first, second, SETTINGS)
    assert labelled_known is not None
    held = reread(labelled_known, second, third, SETTINGS)
    fresh = discover(third, SETTINGS)
    assert [p.version for p in fresh.pins if p.environment == "stag" and p.part == "chart"] == ["9.9.9"]
    assert held is None or held == fresh  # its version's line moved to the patch: built again
    assert follow(labelled_known, second, third, SETTINGS) == fresh


# ---- an environment running kustomize replacements ----------------------------------------------

def replaced(reject: str = "", source_file: bool = False, source: str = "ConfigMap\n      name: tiers",
             path: str = "data.tier", select: str = "name: app1", field: str = "spec.values.replicaCount") -> tuple:
    """(files, settings): qa's kustomization copies `tiers`' `data.tier` into app1's replicas with a
    replacement (``reject``: a selector its target rejects; ``source_file``: the replacement in a
    file of its own; or another ``source`` and ``path``, ``select``, ``field``)."""
    from tests.test_flux_patches import QA, flux_fleet
    files, config = flux_fleet()
    entry = (f"  - source:\n      kind: {source}\n      fieldPath: {path}\n    targets:\n"
             f"      - select:\n          kind: HelmRelease\n          {select}\n"
             + (f"        reject:\n          - {reject}\n" if reject else "")
             + f"        fieldPaths:\n          - {field}\n")
    files["apps/qa/tiers.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tiers\ndata:\n  tier: gold\n"
    if source_file:
        files["apps/qa/replacements.yaml"] = entry.replace("\n    ", "\n  ").replace("  - source", "- source", 1)
        entry = "  - path: replacements.yaml\n"
    files[QA] = files[QA].replace("resources:\n", "resources:\n  - tiers.yaml\n", 1) + "replacements:\n" + entry
    return files, config


def relabelled(files: dict, app: str) -> dict:
    path = f"apps/qa/{app}-{app}.yaml"
    return {**files, path: labelled(files[path])}


def test_where_replacements_run_a_release_none_selects_is_read_again_on_its_own():
    from tests import following
    files, config = replaced()
    held = following.followed(reread, files, relabelled(files, "app0"), config)
    assert held is not None and held.parts[1].release_files is None and held.parts[1].replaced_files is not None
    # and the next commit too, from what it kept
    later = relabelled(relabelled(files, "app0"), "app2")
    assert following.followed(reread, relabelled(files, "app0"), later, config) is not None


def test_where_replacements_run_what_one_selects_is_built_again():
    from tests import following
    files, config = replaced()
    assert following.followed(reread, files, relabelled(files, "app1"), config) is None  # its target
    for files, config in (replaced(reject="name: app0"), replaced(source_file=True)):
        # one it rejects (a label may make it one), or any in the scope of replacements in a file
        assert following.followed(reread, files, relabelled(files, "app0"), config) is None
    version = "spec.chart.spec.version"
    cases = (  # a release a replacement reads, one a label makes its target, a source it reads
        (replaced(source="HelmRelease\n      name: app0", path="spec.values.replicaCount", field=version),
         lambda files: {**files, "apps/qa/app0-app0.yaml": files["apps/qa/app0-app0.yaml"].replace(
             "replicaCount: 1", "replicaCount: 3")}),
        (replaced(select="labelSelector: tier=canary", field=version), lambda files: relabelled(files, "app0")),
        (replaced(source="HelmRepository\n      name: charts\n      namespace: app0", path="spec.type", field=version),
         lambda files: {**files, "apps/qa/repository.yaml": files["apps/qa/repository.yaml"].replace(
             "type: oci", "type: helm", 1)}))
    for (files, config), commit in cases:
        assert following.followed(reread, files, commit(files), config) is None


def test_where_replacements_run_a_version_carried_keeps_what_the_builds_keep():
    """Ferry's own deploy of app0 there (a version carried) keeps what qa's builds keep: a label
    on app2 after it is read on its own too."""
    from tests import following
    from tests.carry_layouts import MemTree
    files, config = replaced()
    bumped = {**files, "apps/qa/app0-app0.yaml": files["apps/qa/app0-app0.yaml"].replace('"6.5.0"', '"6.6.0"')}
    known = discover(MemTree(files), config)
    carried = carry_forward(known, MemTree(files), MemTree(bumped))
    assert carried is not None and carried.parts[1].replaced_files is not None
    assert carried.parts == discover(MemTree(bumped), config).parts
    held = reread(carried, MemTree(bumped), MemTree(relabelled(bumped, "app2")), config)
    fresh = discover(MemTree(relabelled(bumped, "app2")), config)
    assert held is not None and (held.pins, held.parts) == (fresh.pins, fresh.parts)
    assert [following.kept(p) for p in held.parts] == [following.kept(p) for p in fresh.parts]
