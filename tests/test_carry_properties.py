"""Carried equals fresh (Hypothesis): over generated Flux repositories and sequences of foreign
commits of every kind, what the running bot carries from one commit to the next is, whenever it
carries at all, exactly what discovery finds there from nothing: pins (versions, files, sharing,
what each app is tracked by), problems, and the files read."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings, strategies as st

from gitops.changes.carry import carry_forward, discover
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
        files, tree, known = new_files, new_tree, carried if carried is not None else fresh
