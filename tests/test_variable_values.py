"""Variables a Flux Kustomization substitutes from a ConfigMap given other values, read again on
their own: the releases and patches naming them (``flux.variable_values``). What the bot then
holds equals a fresh discovery, and each case the proof cannot cover is refused (the environment
is built again, and that equals a fresh discovery too). Written for Ferry's tests (no outside
source)."""
from __future__ import annotations

import pytest

from gitops.changes.carry import carry_forward, discover, reread, revalue
from gitops.settings import parse_settings
from tests import following
from tests.carry_layouts import MemTree, flux_entry
from tests.test_refold import ENVIRONMENTS, fleet

APPS = {env: [(f"app{i}", f"app{i}") for i in range(4)] for env in ENVIRONMENTS}
VARIABLES = "clusters/qa/versions.yaml"
INLINE = "clusters/qa/apps.yaml"
QA = "apps/qa/kustomization.yaml"


def cluster_fleet(inline: bool = False) -> tuple:
    """Each environment applied by a Flux Kustomization substituting from its ConfigMap
    `versions` (``inline``: its own `postBuild.substitute`): qa's app1 reads its replicas from `${REPLICAS}`, app2 its version from
    `${APP2_VERSION}`; `${TIER}` is named by an inline patch of app3 in qa's kustomization."""
    files = fleet(APPS)
    for env in ENVIRONMENTS:
        files.update(flux_entry(env, {"REPLICAS": "2", "APP2_VERSION": "6.6.0", "TIER": "gold", "UNUSED": "x"},
                                "", not inline))
    files["apps/qa/app1-app1.yaml"] = files["apps/qa/app1-app1.yaml"].replace("replicaCount: 1", "replicaCount: ${REPLICAS}")
    files["apps/qa/app2-app2.yaml"] = files["apps/qa/app2-app2.yaml"].replace('"6.5.0"', '"${APP2_VERSION}"')
    files[QA] += ("patches:\n  - target:\n      kind: HelmRelease\n      name: app3\n    patch: |\n      - op: add\n"
                  "        path: /spec/values/tier\n        value: ${TIER}\n")
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": f"clusters/{e}"} for e in ENVIRONMENTS]},
                            environ={})
    return files, config


def valued(files: dict, **values) -> dict:
    path = VARIABLES if VARIABLES in files else INLINE
    text = files[path]
    for name, value in values.items():
        start = text.index(f"  {name}: ")
        end = text.index("\n", start)
        text = text[:start] + f"  {name}: {value}" + text[end:]
    return {**files, path: text}


def followed(before: dict, after: dict, config):
    """What ``revalue`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(revalue, before, after, config)


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("values", [{"REPLICAS": "3"}, {"TIER": "silver"}, {"UNUSED": "y"},
                                    {"REPLICAS": "3", "APP2_VERSION": "6.7.0"}])
def test_a_variable_given_another_value_reads_again_what_names_it(values, inline):
    files, config = cluster_fleet(inline)
    after = valued(files, **values)
    held = followed(files, after, config)
    assert held is not None
    # and the next commit reads again on its own too: what the builds keep holds the new values
    again = valued(after, REPLICAS="4", TIER="bronze")
    assert followed(after, again, config) is not None


@pytest.mark.parametrize("inline", [False, True])
def test_a_version_read_through_a_variable_moves_at_its_line(inline):
    files, config = cluster_fleet(inline)
    old, new = MemTree(files), MemTree(valued(files, APP2_VERSION="6.7.0", REPLICAS="5"))
    held = revalue(discover(old, config), old, new, config)
    assert held is not None
    app2 = next(p for p in held.pins if (p.environment, p.app, p.part) == ("qa", "app2", "chart"))
    assert (app2.version, app2.location.file) == ("6.7.0", INLINE if inline else VARIABLES)
    assert carry_forward(discover(old, config), old, new) is None  # a value no pin reads changed too


SOURCE = ("---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n"
          "  namespace: app1\nspec:\n  type: oci\n  url: oci://127.0.0.1:5000/${REPLICAS}\n")
REFUSED = {
    # a source beside app1's release: the releases finding it, wherever they are, read it otherwise
    "a variable named by a source": lambda files: {"apps/qa/app1-app1.yaml": files["apps/qa/app1-app1.yaml"] + SOURCE},
    "a variable named by a file of sources": lambda files: {"apps/qa/repository.yaml": files["apps/qa/repository.yaml"]
                                                            .replace("type: oci", "type: oci\n  interval: ${REPLICAS}m")},
    # a ConfigMap no build holds: found in the repository at large
    "a ConfigMap outside the builds": lambda files: {
        "infra/versions.yaml": files[VARIABLES], VARIABLES: None},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_proof_does_not_cover_builds_the_environment_again(case):
    files, config = cluster_fleet()
    before = {path: text for path, text in {**files, **REFUSED[case](files)}.items() if text is not None}
    variables = VARIABLES if VARIABLES in before else "infra/versions.yaml"
    after = {**before, variables: before[variables].replace("REPLICAS: 2", "REPLICAS: 3")}
    assert followed(before, after, config) is None


@pytest.mark.parametrize("inline", [False, True])
def test_a_variable_with_no_value_given_one_is_a_variable_defined_anew(inline):
    """`APP2_VERSION:` with no value defines no variable (app2's version is refused, where it may
    come from said); given one, app2's version is read through it: a variable defined anew, read
    on its own (``flux.variable_lists``)."""
    files, config = cluster_fleet(inline)
    empty = valued(files, APP2_VERSION="")
    assert followed(empty, valued(empty, APP2_VERSION='"6.9.0"'), config) is not None
    assert followed(files, valued(files, APP2_VERSION='"6.9.0"'), config) is not None  # one it had


@pytest.mark.parametrize("edit", [
    lambda text: text.replace("REPLICAS: 2", "REPLICAS: ${OTHER}"),  # a value naming a variable
    lambda text: text.replace("name: versions", "name: other"),  # another ConfigMap
])
def test_another_change_to_the_variables_builds_it_again(edit):
    files, config = cluster_fleet()
    after = {**files, VARIABLES: edit(files[VARIABLES]).replace("TIER: gold", "TIER: silver")}
    assert followed(files, after, config) is None


def test_a_variable_a_patch_of_the_configmap_writes_keeps_its_value():
    """qa's flux-system kustomization patches `TIER` into its ConfigMap: the file's `TIER` is not
    what Flux substitutes, and its other variables are read again."""
    files, config = cluster_fleet()
    files["clusters/qa/kustomization.yaml"] = (
        "resources:\n  - flux-system/gotk-sync.yaml\n  - apps.yaml\n  - versions.yaml\npatches:\n  - target:\n"
        "      kind: ConfigMap\n      name: versions\n    patch: |\n      - op: add\n        path: /data/TIER\n"
        "        value: platinum\n")
    assert followed(files, valued(files, TIER="silver", REPLICAS="3"), config) is not None


def test_a_setter_marker_or_a_variable_named_in_a_comment_builds_it_again():
    files, config = cluster_fleet()
    for extra in ('  # {"$imagepolicy": "flux-system:app1:tag"}', "  # ${REPLICAS}"):
        after = valued(files, REPLICAS="3")
        after[VARIABLES] = after[VARIABLES].replace("  REPLICAS: 3", "  REPLICAS: 3" + extra)
        assert followed(files, after, config) is None


@pytest.mark.parametrize("inline", [False, True])
def test_a_version_carried_in_a_variable_keeps_what_the_builds_keep(inline):
    """Ferry's own deploy of app2 writes its version at the variable's line: carried, and the
    environment keeps its builds (with the new value), so the next commit is read on its own too."""
    files, config = cluster_fleet(inline)
    files["apps/qa/app1-app1.yaml"] = files["apps/qa/app1-app1.yaml"].replace("${REPLICAS}", "1")  # only versions
    deployed = valued(files, APP2_VERSION="6.7.0")
    old, new = MemTree(files), MemTree(deployed)
    carried = carry_forward(discover(old, config), old, new)
    assert carried is not None and all(p.release_files is not None for p in carried.parts)
    assert (carried.pins, carried.parts) == (discover(new, config).pins, discover(new, config).parts)
    labelled = {**deployed, "apps/qa/app2-app2.yaml": deployed["apps/qa/app2-app2.yaml"].replace(
        "metadata:\n", "metadata:\n  labels:\n    tier: canary\n", 1)}
    held = reread(carried, new, MemTree(labelled), config)
    assert held is not None and held.pins == discover(MemTree(labelled), config).pins
