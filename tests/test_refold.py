"""The fold made again where a commit may change what it reads (``discovery.refold``), and the
inventory following it (``Inventory.spliced``): equal to a fresh fold (the property test of
``test_incremental_properties`` holds it over every kind of commit), and here, proportional to
the change: an app added to one environment of many folds that app's pins again, not the fleet's."""
from __future__ import annotations

from hypothesis import given, strategies as st

from gitops.changes.carry import discover, rediscover
from gitops.changes.pins import build_inventory, moved_inventory
from gitops.flux.discovery import differing
from gitops.model import Pin, in_order
from gitops.settings import parse_settings
from tests.carry_layouts import MemTree, kustomization, release, repository
from tests.test_carry_properties import assert_same_inventory

ENVIRONMENTS = ["dev", "qa", "prod"]


def pin(app: str, environment: str, part: str = "chart") -> Pin:
    return Pin(app, environment, "1.0.0", False, None, "helmrelease", "c", part=part)


PINS = st.builds(pin, st.sampled_from("abcdefgh"), st.sampled_from(ENVIRONMENTS + ["elsewhere"]),
                 st.sampled_from(("chart", "image")))


@given(st.lists(PINS, max_size=120), st.one_of(st.lists(PINS, max_size=8), st.lists(PINS, min_size=65, max_size=130)))
def test_in_order_is_a_stable_sort_of_both(pins, more):  # a few pins more, and many
    def key(p):
        return (ENVIRONMENTS + ["elsewhere"]).index(p.environment), p.app

    ordered = sorted(pins, key=key)
    assert in_order(ordered, sorted(more, key=key), ENVIRONMENTS) == sorted(ordered + sorted(more, key=key), key=key)


@given(st.lists(st.integers(0, 3), max_size=8), st.lists(st.integers(0, 3), max_size=8))
def test_what_differs_is_between_what_both_start_and_end_with(old, new):
    was, now = differing(tuple(old), tuple(new))
    start = next((i for i in range(len(old) + 1) if tuple(old[i:i + len(was)]) == was
                  and old[:i] == new[:i] and old[i + len(was):] == new[i + len(now):]), None)
    assert start is not None  # old = prefix + was + suffix, new = prefix + now + suffix
    assert len(old) - len(was) + len(new) - len(now) <= 2 * min(len(old), len(new))
    if was or now:  # nothing more of both ends is alike
        assert not (was and now and was[0] == now[0]) and not (was and now and was[-1] == now[-1])


def fleet(apps: dict) -> dict:
    """{path: text} of environments listing ``apps`` ({environment: [(name, namespace)]})."""
    files = {}
    for env, listed in apps.items():
        for name, namespace in listed:
            text = release(name, "6.5.0", "string", False).replace(f"  namespace: {name}\n", f"  namespace: {namespace}\n")
            files[f"apps/{env}/{name}-{namespace}.yaml"] = text
        files[f"apps/{env}/repository.yaml"] = "".join(
            "---\n" + repository(ns) for ns in sorted({ns for _, ns in listed}))
        files[f"apps/{env}/kustomization.yaml"] = kustomization(
            [f"{name}-{ns}.yaml" for name, ns in listed] + ["repository.yaml"])
    return files


def settings():
    return parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                           "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}, environ={})


def step(apps_before: dict, apps_after: dict):
    config = settings()
    old, new = MemTree(fleet(apps_before)), MemTree(fleet(apps_after))
    known = discover(old, config)
    inventory = build_inventory("0", [known], config)
    held, rebuilt = rediscover(known, old, new, config)
    fresh = discover(new, config)
    assert held.pins == fresh.pins and held.parts == fresh.parts
    _, moves, splice = held.carried_from
    moved = moved_inventory(inventory, "1", [(moves, splice)], held.problems, config)
    assert_same_inventory(moved, build_inventory("1", [fresh], config))
    return rebuilt, splice


def test_an_app_added_to_one_environment_folds_its_pins_again_not_the_fleets():
    apps = {env: [(f"app{i}", f"app{i}") for i in range(40)] for env in ENVIRONMENTS}
    rebuilt, (gone, anew) = step(apps, {**apps, "qa": apps["qa"] + [("new", "new")]})
    assert rebuilt == {"qa"}
    assert gone == () and {(p.app, p.environment, p.part) for p in anew} == \
        {("new", "qa", "chart"), ("new", "qa", "image")}


def test_an_app_taken_away_goes_and_only_its_name_is_folded_again():
    apps = {env: [(f"app{i}", f"app{i}") for i in range(40)] for env in ENVIRONMENTS}
    _, (gone, anew) = step(apps, {**apps, "dev": apps["dev"][1:]})
    # The name may have clashed: its pins in the other environments are folded again, the same.
    assert {(p.app, p.environment) for p in gone} == {("app0", env) for env in ENVIRONMENTS}
    assert {(p.app, p.environment) for p in anew} == {("app0", "qa"), ("app0", "prod")}


def test_a_name_another_namespace_has_is_qualified_in_every_environment():
    apps = {env: [(f"app{i}", f"app{i}") for i in range(40)] for env in ENVIRONMENTS}
    _, (gone, anew) = step(apps, {**apps, "prod": apps["prod"] + [("app3", "team")]})
    # app3 becomes app3/app3 wherever it runs, team/app3 where it is added; nothing else moves.
    assert {(p.app, p.environment) for p in gone} == {("app3", env) for env in ENVIRONMENTS}
    assert {(p.app, p.environment) for p in anew} == \
        {("app3/app3", env) for env in ENVIRONMENTS} | {("team/app3", "prod")}
