"""Built again equals fresh (Hypothesis): over generated Flux repositories (three environments,
plain overlays or Flux Kustomizations, sources in a base, in one environment only or outside every
build) and sequences of foreign commits of every kind, what the running bot holds after each
commit (carried where proven, or its files of HelmReleases read again on their own, else the
touched environments built again) is exactly what discovery finds there from nothing: pins
(versions, files, sharing, what each app is tracked by), problems, the files read, each
environment's part, and the inventory moved pin by pin where it is."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings, strategies as st

from gitops.changes.carry import (carry_forward, discover, in_steps, rediscover, refollow, reimage, relist, repatch,
                                  reread, reunit, revalue)
from gitops.changes.pins import build_inventory, moved_inventory
from gitops.flux import images
from gitops.settings import parse_settings
from tests.carry_layouts import MemTree, commit, layouts
from tests.following import kept
from tests.test_carry_properties import assert_same_inventory

EXAMPLES = int(os.environ.get("FERRY_INCREMENTAL_EXAMPLES", "300"))
# ``carry.follow``'s steps after the carry, in its order, each with what the statistics call it.
STEPS = ((reread, "release files read again"), (relist, "resources listed again"), (reunit, "a unit built on its own"),
         (repatch, "patches made again"),
         (reimage, "images made again"), (revalue, "variables read again"), (refollow, "a unit followed again"),
         (in_steps, "one kind at a time"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.data())
def test_what_is_built_again_equals_a_fresh_discovery(layout, data):
    files, raw = layout
    config = parse_settings(raw, environ={})
    tree = MemTree(files)
    known = discover(tree, config)
    inventory = build_inventory("0", [known], config)
    inventory.find("", "")  # its indexes made at the first commit, then moved
    for step in range(data.draw(st.integers(1, 6), label="commits")):
        kind, new_files = commit(files, known.pins, data.draw)
        new_tree = MemTree(new_files)
        fresh = discover(new_tree, config)
        # The way the bot follows a commit (``carry.follow``), each step in turn.
        held, how = carry_forward(known, tree, new_tree), "carried"
        for follow, said in STEPS:
            if held is None:
                held, how = follow(known, tree, new_tree, config), said
        if held is None:
            held, rebuilt = rediscover(known, tree, new_tree, config)
            how = f"{len(rebuilt)} of {len(known.parts)} built again"
        event(f"{kind}: {how}" + (" beside replacements" if any(p.replaced for p in known.parts) else ""))
        assert held.pins == fresh.pins, f"step {step}, {kind}"
        assert held.problems == fresh.problems, f"step {step}, {kind}"
        assert held.read == fresh.read, f"step {step}, {kind}"
        assert held.parts == fresh.parts, f"step {step}, {kind}"
        assert [kept(a) for a in held.parts] == [kept(b) if kept(a) is not None else None
                                                for a, b in zip(held.parts, fresh.parts)], f"step {step}, {kind}"
        assert images.split(held.pins, config) == images.split(fresh.pins, config)
        if held.index is not None:  # the listing kept for the next commit is the commit's
            assert (held.index.files, held.index.children) == (fresh.index.files, fresh.index.children)
        if held.carried_from is not None:  # moved as the bot's inventory moves
            inventory = moved_inventory(inventory, str(step), [held.carried_from[1:]], held.problems, config)
            assert_same_inventory(inventory, build_inventory(str(step), [fresh], config))
        else:
            inventory = build_inventory(str(step), [held], config)
        files, tree, known = new_files, new_tree, held

