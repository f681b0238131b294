"""Variables defined anew in a ConfigMap a Flux Kustomization substitutes from, or taken out of it:
the releases and patches naming them read again on their own (``flux.variable_lists``). What the
bot then holds equals a fresh discovery, and each case the proof cannot cover is refused (the
environment is built again, and that equals a fresh discovery too). Written for Ferry's tests (no
outside source)."""
from __future__ import annotations

from gitops.changes.carry import discover, revalue
from tests import following
from tests.carry_layouts import MemTree
from tests.test_variable_values import INLINE, QA, VARIABLES, cluster_fleet

APP0 = "apps/qa/app0-app0.yaml"


def defined(files: dict, **values) -> dict:
    """``files`` with qa's ConfigMap defining ``values`` besides (a value None: taken out)."""
    text = files[VARIABLES]
    for name, value in values.items():
        if value is None:
            start = text.index(f"  {name}: ")
            text = text[:start] + text[text.index("\n", start) + 1:]
        else:
            text += f"  {name}: {value}\n"
    return {**files, VARIABLES: text}


def followed(before: dict, after: dict, config):
    """What ``revalue`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(revalue, before, after, config)


def chart(held, app: str):
    return next(p for p in held.pins if (p.environment, p.app, p.part) == ("qa", app, "chart"))


def named(files: dict) -> dict:
    """qa's app0 reading its version from `${APP0_VERSION}`, which nothing defines yet."""
    return {**files, APP0: files[APP0].replace('"6.5.0"', '"${APP0_VERSION}"')}


def test_a_variable_defined_for_a_release_naming_it_pins_it_there():
    files, config = cluster_fleet()
    files = named(files)
    assert chart(discover(MemTree(files), config), "app0").location is None  # nothing defines it: refused
    after = defined(files, APP0_VERSION='"6.8.0"')
    held = followed(files, after, config)
    assert held is not None
    assert (chart(held, "app0").version, chart(held, "app0").location.file) == ("6.8.0", VARIABLES)
    # and taken out again
    assert followed(after, files, config) is not None
    # a value that is no text: not one line Ferry edits
    held = followed(files, defined(files, APP0_VERSION="true"), config)
    assert held is not None and chart(held, "app0").location is None


def test_a_variable_no_one_names_costs_nothing_but_its_unit():
    files, config = cluster_fleet()
    held = followed(files, defined(files, FRESH="1"), config)
    assert held is not None and held.pins == discover(MemTree(files), config).pins


def test_a_variable_taken_out_that_a_patch_names_reads_what_it_patches():
    files, config = cluster_fleet()
    held = followed(files, defined(files, TIER=None), config)
    assert held is not None


def test_what_it_cannot_prove_is_built_again():
    files, config = cluster_fleet()
    source = "apps/qa/repository.yaml"
    refused = {
        "a source names it": {**files, source: files[source].replace("type: oci", "type: ${KIND}")},
        "a patch of a ConfigMap": {**files, QA: files[QA].replace("      kind: HelmRelease\n      name: app3\n",
                                                                  "      kind: ConfigMap\n      name: app3\n")},
    }
    for why, before in refused.items():
        assert followed(before, defined(before, KIND='"oci"'), config) is None, why
    named_besides = {**files, APP0: named(files)[APP0] + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                     "  name: tier\ndata:\n  version: ${APP0_VERSION}\n"}
    for why, before, after in (
            ("a value naming a variable", files, defined(files, FRESH='"${REPLICAS}"')),
            ("a setter marker", files, defined(files, TAG='"1.0.0" # {"$imagepolicy": "flux-system:app0:tag"}')),
            ("another document of a release's file names it", named_besides, defined(named_besides, APP0_VERSION="1")),
            ("the ConfigMap renamed", files, {**defined(files, FRESH="1"), VARIABLES: defined(files, FRESH="1")[
                VARIABLES].replace("name: versions", "name: other")})):
        assert followed(before, after, config) is None, why


def test_a_kustomizations_own_variables_defined_anew_or_no_more():
    """`spec.postBuild.substitute` gaining a key app0 names, losing one a patch names; one naming
    a variable its parent may substitute is built again."""
    files, config = cluster_fleet(inline=True)
    files = named(files)
    after = {**files, INLINE: files[INLINE].replace("    substitute:\n", "    substitute:\n      APP0_VERSION: 6.8.0\n")}
    held = followed(files, after, config)
    assert held is not None and (chart(held, "app0").version, chart(held, "app0").location.file) == ("6.8.0", INLINE)
    gone = {**files, INLINE: files[INLINE].replace('      TIER: "gold"\n', "")}
    assert gone != files and followed(files, gone, config) is not None
    assert followed(files, {**files, INLINE: files[INLINE].replace("    substitute:\n",
                                                                   "    substitute:\n      FRESH: ${X}\n")},
                    config) is None


def test_a_unit_given_its_first_variable_is_built_again():
    """qa's ConfigMap defined nothing: its unit substituted nothing, it will substitute all."""
    files, config = cluster_fleet()
    start = files[VARIABLES].index("\ndata:\n") + 1
    files[VARIABLES] = files[VARIABLES][:start] + "data: {}\n"
    assert followed(files, {**files, VARIABLES: files[VARIABLES].replace("data: {}\n", "data:\n  FRESH: x\n")},
                    config) is None


def test_a_value_naming_a_variable_stays_no_line_of_its_own():
    """`A: ${REPLICAS}` stands beside a key added: app0's version read through it is no line."""
    files, config = cluster_fleet()
    files = {**named(files), VARIABLES: files[VARIABLES] + '  APP0_VERSION: "${REPLICAS}"\n'}
    held = followed(files, defined(files, FRESH="1"), config)
    assert held is not None and chart(held, "app0").location is None


def test_a_configmap_the_repository_answered_for_is_built_again():
    """No environment builds its ConfigMap: each found `flux-system/versions` across the
    repository (the first file of that name, dev's)."""
    files, config = cluster_fleet()
    for env in ("dev", "qa", "prod"):
        files[f"config/{env}-versions.yaml"] = files.pop(f"clusters/{env}/versions.yaml")
    path = "config/dev-versions.yaml"
    assert followed(files, {**files, path: files[path] + "  FRESH: x\n"}, config) is None


def test_a_unit_losing_its_last_variable_is_built_again():
    """It substitutes nothing then: `$${X}` in app0's version is no longer an escape."""
    files, config = cluster_fleet()
    start = files[VARIABLES].index("\ndata:\n") + 1
    files[VARIABLES] = files[VARIABLES][:start] + "data:\n  FRESH: x\n"
    files[APP0] = files[APP0].replace('"6.5.0"', '"$${X}"')
    assert followed(files, defined(files, FRESH=None), config) is None


def test_a_kustomizations_own_value_its_parent_substitutes_is_built_again():
    """The cluster's bootstrap Kustomization substitutes `${X}`: qa's `GREETING: ${X}` is what the
    parent makes it, which only a build reads."""
    files, config = cluster_fleet(inline=True)
    boot = "clusters/qa/flux-system/gotk-sync.yaml"
    files[boot] += "  postBuild:\n    substitute:\n      X: hello\n"
    files[INLINE] = files[INLINE].replace("    substitute:\n", "    substitute:\n      GREETING: ${X}\n")
    files[APP0] = files[APP0].replace("replicaCount: 1", "replicaCount: ${GREETING}")
    after = {**files, INLINE: files[INLINE].replace("    substitute:\n", "    substitute:\n      FRESH: x\n")}
    assert followed(files, after, config) is None
