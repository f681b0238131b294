"""Carried equals fresh (Hypothesis): over generated Flux repositories and sequences of foreign
commits of every kind, what the running bot carries from one commit to the next is, whenever it
carries at all, exactly what discovery finds there from nothing: pins (versions, files, sharing,
what each app is tracked by), problems, and the files read; and the inventory moved pin by pin
over carried commits (``Inventory.carried``) is the one built from scratch, indexes included."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings, strategies as st

from gitops.changes.carry import carry_forward, discover
from gitops.changes.pins import build_inventory
from gitops.flux import images
from gitops.settings import parse_settings
from tests.carry_layouts import MemTree, commit, layouts

EXAMPLES = int(os.environ.get("FERRY_CARRY_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.data())
def test_what_is_carried_equals_a_fresh_discovery(layout, data):
    files, raw = layout
    config = parse_settings(raw, environ={})
    tree = MemTree(files)
    known = discover(tree, config)
    inventory = build_inventory("0", [known], config)
    inventory.find("", "")  # its indexes made at the first commit, then moved
    for step in range(data.draw(st.integers(1, 6), label="commits")):
        kind, new_files = commit(files, known.pins, data.draw)
        new_tree = MemTree(new_files)
        carried = carry_forward(known, tree, new_tree)
        fresh = discover(new_tree, config)
        event(f"{kind}: {'carried' if carried is not None else 'discovered again'}")
        if carried is not None:
            assert carried.pins == fresh.pins, f"step {step}, {kind}"
            assert carried.problems == fresh.problems, f"step {step}, {kind}"
            assert carried.read == fresh.read, f"step {step}, {kind}"
            assert images.split(carried.pins, config) == images.split(fresh.pins, config)
            inventory = inventory.carried(str(step), carried.carried_from[1])
            assert_same_inventory(inventory, build_inventory(str(step), [fresh], config))
        else:
            inventory = build_inventory(str(step), [fresh], config)
        files, tree, known = new_files, new_tree, carried if carried is not None else fresh


def assert_same_inventory(moved, fresh) -> None:
    assert (moved.pins, moved.others, moved.problems) == (fresh.pins, fresh.others, fresh.problems)
    assert moved.apps() == fresh.apps()
    assert all(moved.app_named(a.upper()) == a for a in fresh.apps())
    for pin in fresh.pins + fresh.others:
        assert moved.parts(pin.app, pin.environment) == fresh.parts(pin.app, pin.environment)
        assert moved.find(pin.app, pin.environment) == fresh.find(pin.app, pin.environment)
    # The lookups hold places, shared along carried commits: each place holds its pin.
    assert moved._parts == fresh._parts
