"""One commit followed the way the bot follows it, checked against a fresh discovery: for the
tests of each step that reads a commit again on its own (``carry.reread``, ``relist``,
``repatch``, ``revalue``). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

from gitops.changes.carry import discover, follow
from gitops.changes.pins import build_inventory, moved_inventory
from tests.carry_layouts import MemTree
from tests.test_carry_properties import assert_same_inventory


def followed(step, before: dict, after: dict, config):
    """What ``step`` holds after the commit from ``before`` to ``after`` (or None); it and what
    the bot follows the commit to each checked against a fresh discovery: pins, problems, what
    was read, the parts and what their builds keep of each release, the listing, and the
    inventory moved along."""
    old, new = MemTree(before), MemTree(after)
    known = discover(old, config)
    fresh = discover(new, config)
    held = step(known, old, new, config)
    for found in filter(None, (held, follow(known, old, new, config))):
        assert (found.pins, found.problems, found.read, found.parts) == \
            (fresh.pins, fresh.problems, fresh.read, fresh.parts)
        assert [kept(a) for a in found.parts] == [kept(b) if kept(a) is not None else None
                                                 for a, b in zip(found.parts, fresh.parts)]
        if found.index is not None:
            assert (found.index.files, found.index.children) == (fresh.index.files, fresh.index.children)
        if found.carried_from is not None:
            inventory = build_inventory("0", [known], config)
            moved = moved_inventory(inventory, "1", [found.carried_from[1:]], found.problems, config)
            assert_same_inventory(moved, build_inventory("1", [fresh], config))
    return held


def kept(part):
    """What a part's builds keep of each HelmRelease (``held_releases.ReleaseFiles``) as later
    commits read it: where it is, its names, its metadata (what patches select by), its pins and
    its sources (what an environment running kustomize replacements keeps too, with the
    replacements of each unit); None when it keeps
    nothing (a version carried in a source lets go of it)."""
    held = part.kept
    if held is None:
        return None
    # (scope ids are a build's own: an environment built again numbers them on from its last)
    return [(unit.path, [r[1:] for r in unit.build.replacements]) for unit in held.units] + [(h.resource.file, h.resource.index, h.resource.namespace, h.resource.name, h.resource.names,
             h.resource.doc.get("metadata"), h.pin, h.first_image, h.end_image, h.asked, h.uses,
             h.resource.replaced) for h in held.held]
