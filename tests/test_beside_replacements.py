"""An environment whose build runs kustomize `replacements:` (qa copies `tiers`' `data.tier` into
app1): every step that reads a commit again on its own (an app listed or taken away, a patch, a
variable, a team, a label) does so there too, for what no replacement selects; what one selects,
before or after, builds the environment again. Each followed as the bot follows it and checked
against a fresh discovery (``tests.following``). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

from gitops.changes.carry import relist, repatch, reunit, revalue
from tests import following
from tests.carry_layouts import release, repository
from tests.test_release_files import labelled, replaced
from tests.test_resource_lists import base
from tests.test_unit_lists import team

QA = "apps/qa/kustomization.yaml"
VERSION = "spec.chart.spec.version"


def listed(files: dict, app: str, label: bool = False) -> dict:
    """``files`` with ``app`` (its release and source, in one file) listed in qa's kustomization."""
    text = release(app, "7.0.0", "string", False)
    return {**files, f"apps/qa/{app}.yaml": (labelled(text) if label else text) + "---\n" + repository(app),
            QA: files[QA].replace("  - repository.yaml\n", f"  - repository.yaml\n  - {app}.yaml\n")}


def unlisted(files: dict, app: str) -> dict:
    return {**files, QA: files[QA].replace(f"  - {app}-{app}.yaml\n", "")}


def with_base(files: dict) -> dict:
    """``files`` with qa listing the folder `apps/base/new` (an app's base)."""
    return {**files, **base("new", "fresh"), QA: files[QA].replace("  - repository.yaml\n",
                                                                   "  - repository.yaml\n  - ../base/new\n")}


def patched(files: dict, *apps: str) -> dict:
    """``files`` with qa's kustomization patching the chart version of each of ``apps``, in turn."""
    patches = "".join(f"  - target:\n      kind: HelmRelease\n      name: {app}\n    patch: |\n"
                      f"      - op: replace\n        path: /spec/chart/spec/version\n        value: 7.1.0\n"
                      for app in apps)
    return {**files, QA: files[QA] + (f"patches:\n{patches}" if patches else "")}


def valued(files: dict, path: str, before: str, after: str) -> dict:
    return {**files, path: files[path].replace(before, after, 1)}


def replicas_from(app: str) -> tuple:
    """(files, settings): qa copies ``app``'s replicas into app1's chart version."""
    return replaced(source=f"HelmRelease\n      name: {app}", path="spec.values.replicaCount", field=VERSION)


def test_an_app_listed_or_taken_away_where_no_replacement_selects_it():
    files, config = replaced()
    held = following.followed(relist, files, listed(files, "web"), config)
    assert held is not None and held.parts[1].replaced
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("qa", "web", "chart")] == ["7.0.0"]
    assert following.followed(relist, files, unlisted(files, "app2"), config) is not None
    # what qa's builds keep then serves the next commit: a label on the new app
    after = listed(files, "web")
    assert following.followed(relist, after, listed(after, "api"), config) is not None


def test_an_app_a_replacement_selects_builds_it_again():
    for (files, config), commit in (
            (replaced(select="name: web"), lambda files: listed(files, "web")),  # a target by name
            (replaced(select="labelSelector: tier=canary"), lambda files: listed(files, "web", label=True)),
            (replaced(), lambda files: unlisted(files, "app1")),  # its target taken away
            (replicas_from("app2"), lambda files: unlisted(files, "app2")),  # its source taken away
            (replaced(source="HelmRepository\n      name: charts\n      namespace: web", path="spec.type"),
             lambda files: listed(files, "web")),  # a source in an app's file
            (replaced(source="HelmRelease", path="spec.values.replicaCount", field=VERSION),  # one more source
             lambda files: listed(files, "web"))):
        assert following.followed(relist, files, commit(files), config) is None
    files, config = replaced(select="labelSelector: tier=canary")
    assert following.followed(relist, files, listed(files, "web"), config) is not None  # no label: none selects it
    files, config = replaced(source="HelmRepository\n      name: charts\n      namespace: web", path="spec.type")
    files = listed(files, "web")
    assert following.followed(relist, files, {**files, QA: files[QA].replace("  - web.yaml\n", "")}, config) is None


def test_a_folder_listed_or_taken_away_where_no_replacement_selects_what_it_holds():
    files, config = replaced()
    assert following.followed(relist, files, with_base(files), config) is not None
    assert following.followed(relist, with_base(files), files, config) is not None
    files, config = replaced(select="name: new")
    assert following.followed(relist, files, with_base(files), config) is None
    assert following.followed(relist, with_base(files), files, config) is None


def test_a_replacement_selects_only_what_its_kustomization_builds():
    """`apps/qa/team`'s replacement copies into every HelmRelease it builds: not into what qa
    lists beside it."""
    files, config = replaced()
    files["apps/qa/team/a.yaml"] = release("a", "7.0.0", "string", False) + "---\n" + repository("a")
    files["apps/qa/team/kustomization.yaml"] = (
        "resources:\n  - a.yaml\nreplacements:\n  - source:\n      kind: HelmRelease\n      name: a\n"
        "      fieldPath: spec.values.replicaCount\n    targets:\n      - select:\n          kind: HelmRelease\n"
        "        fieldPaths:\n          - spec.values.copies\n")
    files[QA] = files[QA].replace("  - repository.yaml\n", "  - repository.yaml\n  - team\n")
    assert following.followed(relist, files, listed(files, "web"), config) is not None


def test_a_patch_where_no_replacement_selects_what_it_patches():
    files, config = replaced()
    held = following.followed(repatch, files, patched(files, "app2"), config)
    assert held is not None and held.parts[1].replaced
    assert following.followed(repatch, files, patched(files, "app1"), config) is None  # the target's
    files, config = replicas_from("app2")
    assert following.followed(repatch, files, patched(files, "app2"), config) is None  # the source's


def test_a_patch_giving_or_taking_the_label_a_replacement_selects_builds_it_again():
    """qa's replacement writes the version of releases labelled `tier: canary`: a patch giving
    app2 that label makes it a target (kustomize patches before it replaces), taken away no more."""
    files, config = replaced(select="labelSelector: tier=canary", field=VERSION)
    label = {**files, QA: files[QA] + "patches:\n  - target:\n      kind: HelmRelease\n      name: app2\n"
             "    patch: |\n      - op: add\n        path: /metadata/labels\n        value:\n          tier: canary\n"}
    assert following.followed(repatch, files, label, config) is None
    assert following.followed(repatch, label, files, config) is None
    assert following.followed(repatch, files, patched(files, "app2"), config) is not None  # a version: none selects it


def test_a_patch_moving_the_line_a_replacement_reads_builds_it_again():
    """app2's replicas come from a patch; one added before it moves that patch in the list."""
    files, config = replicas_from("app2")
    files = {**files, QA: files[QA] + "patches:\n  - target:\n      kind: HelmRelease\n      name: app2\n"
             "    patch: |\n      - op: replace\n        path: /spec/values/replicaCount\n        value: 5\n"}
    moved = {**files, QA: files[QA].replace("patches:\n", "patches:\n" + patched({QA: ""}, "app3")[QA][9:])}
    assert following.followed(repatch, files, moved, config) is None
    plain, config = replaced()  # where no replacement reads a patch's line, the patch moves in place
    base = patched(plain, "app2")
    assert following.followed(repatch, base, {**base, QA: patched(plain, "app3", "app2")[QA]}, config) is not None


def cluster_variables(**options) -> tuple:
    """(files, settings): ``replaced(**options)`` into app1's version, and app2's version
    `${WEB}`, given by the `apps` Kustomization's own `substitute`."""
    files, config = replaced(field=VERSION, **options)
    files["clusters/qa/apps.yaml"] = files["clusters/qa/apps.yaml"] + "  postBuild:\n    substitute:\n" \
                                                                      "      WEB: \"7.3.0\"\n"
    return valued(files, "apps/qa/app2-app2.yaml", '"6.5.0"', '"${WEB}"'), config


def from_configmap(files: dict) -> dict:
    """``files`` with the `apps` Kustomization substituting from the ConfigMap `versions` instead."""
    return {**files, "clusters/qa/apps.yaml": files["clusters/qa/apps.yaml"].replace(
        "    substitute:\n      WEB: \"7.3.0\"\n", "    substituteFrom:\n      - kind: ConfigMap\n        name: versions\n"),
        "clusters/qa/versions.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\n"
                                     "  namespace: flux-system\ndata:\n  WEB: 7.3.0\n"}


def test_a_variable_where_no_replacement_reads_its_configmap():
    """The cluster's variables: in the `apps` Kustomization's own `substitute` (no replacement
    selects a Kustomization), then in a ConfigMap other than `tiers` (by name, or by kind)."""
    files, config = cluster_variables()
    held = following.followed(revalue, files, valued(files, "clusters/qa/apps.yaml", "7.3.0", "7.4.0"), config)
    assert held is not None and held.parts[1].replaced
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("qa", "app2", "chart")] == ["7.4.0"]
    for options in ({}, {"select": "labelSelector: tier=canary"}):
        files, config = cluster_variables(**options)
        before = from_configmap(files)
        held = following.followed(revalue, before, valued(before, "clusters/qa/versions.yaml", "7.3.0", "7.4.0"), config)
        assert held is not None and held.parts[1].replaced
    # `tiers` is the replacement's source: its value is app1's version then
    assert following.followed(revalue, files, valued(files, "apps/qa/tiers.yaml", "gold", "silver"), config) is None
    # a key defined anew there too
    assert following.followed(revalue, files, valued(files, "apps/qa/tiers.yaml", "tier: gold\n",
                                                     "tier: gold\n  size: large\n"), config) is None
    # replacements in a file of their own: any ConfigMap may be one they read
    files, config = cluster_variables(source_file=True)
    assert following.followed(revalue, files, valued(files, "apps/qa/tiers.yaml", "gold", "silver"), config) is None


def test_a_team_added_beside_an_environment_running_replacements():
    files, config = replaced()
    held = following.followed(reunit, files, team(files), config)
    assert held is not None and held.parts[1].replaced
    assert [u.kustomization.name for u in held.parts[1].kept.units] == ["flux-system", "apps", "team"]
    held = following.followed(reunit, team(files), files, config)  # and taken away
    assert held is not None and held.parts[1].replaced and held.parts[1].release_files is None


def test_a_flux_kustomization_a_replacement_of_its_parent_writes_builds_it_again():
    """qa's cluster folder is built by a kustomization whose replacement writes the release the
    `apps` Kustomization's patch selects: that patch changed builds qa again."""
    from tests.test_flux_patches import flux_fleet, patch, with_patches
    files, config = flux_fleet()
    files = with_patches(files, patch("app2"))
    files["clusters/qa/which.yaml"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: which\n"
                                       "  namespace: flux-system\ndata:\n  app: app3\n")
    files["clusters/qa/kustomization.yaml"] = (
        "resources:\n  - flux-system/gotk-sync.yaml\n  - apps.yaml\n  - which.yaml\nreplacements:\n"
        "  - source:\n      kind: ConfigMap\n      name: which\n      fieldPath: data.app\n    targets:\n"
        "      - select:\n          kind: Kustomization\n          name: apps\n        fieldPaths:\n"
        "          - spec.patches.0.target.name\n")
    again = with_patches(files, patch("app2", value="7.2.0"))
    assert following.followed(repatch, files, again, config) is None


def test_a_key_discovery_never_reads_that_a_replacement_of_its_parent_reads_builds_it_again():
    """qa's cluster folder copies the `apps` Kustomization's `interval` into the version of a
    release it holds: an interval changed is that release's version changed."""
    from tests.test_flux_patches import flux_fleet
    files, config = flux_fleet()
    files["clusters/qa/infra.yaml"] = release("infra", "1.0.0", None, False) + "---\n" + repository("infra")
    files["clusters/qa/kustomization.yaml"] = (
        "resources:\n  - flux-system/gotk-sync.yaml\n  - apps.yaml\n  - infra.yaml\nreplacements:\n"
        "  - source:\n      kind: Kustomization\n      name: apps\n      fieldPath: spec.interval\n    targets:\n"
        "      - select:\n          kind: HelmRelease\n          name: infra\n        fieldPaths:\n"
        "          - spec.chart.spec.version\n")
    again = valued(files, "clusters/qa/apps.yaml", "interval: 10m", "interval: 5m")
    assert following.followed(repatch, files, again, config) is None
    # where no replacement reads it, the interval is a key discovery never reads
    plain, _ = flux_fleet()
    assert following.followed(repatch, plain, valued(plain, "clusters/qa/apps.yaml", "interval: 10m", "interval: 5m"),
                              config) is not None
