"""One unit of an environment built again on its own, as the environment's build makes it, for the
steps that add or take away a Flux Kustomization (``unit_lists``): its parent walked again over
its folder, the units its parent made, the Kustomization followed, and whether anything else of
the environment reaches a path.

``kustomizations.build_environment`` follows units breadth first: the units a parent makes of its
Flux Kustomizations are one run, in the parent's order, and each is built from its document as its
parent builds it, with the units before it (ConfigMaps, generators) and the repository (a
GitRepository). What the builds keep of a unit holds no objects (``held_releases``), so the
parent is walked again for them; the new unit is followed only where the objects it would look
for are the parent's or the repository's.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import kustomizations, overlay_images, units
from .held_releases import ReleaseFiles
from .kustomize import Build, ScopeIds, Walker, join_path, strings
from .kustomizations import Finder, Unit, flux_kustomization
from .manifests import DocumentCache, FileTree, dig
from .tree_index import TreeIndex
from ..settings import Settings


def reached_otherwise(kept: ReleaseFiles, mine: int, path: str, tree: FileTree, cache: DocumentCache,
                      inside: bool = False) -> bool:
    """Whether anything of the environment but the unit at ``mine`` may read ``path``: another
    unit's path, a kustomization's entry (or a patch file, when ``inside``), at it or above it (or
    inside it, when ``inside``: a folder)."""
    def reaches(other: str) -> bool:
        return other in (path, "") or path.startswith(other + "/") or inside and other.startswith(path + "/")

    if any(reaches(unit.path) for i, unit in enumerate(kept.units) if i != mine):
        return True
    if inside and any(reaches(p.file) for i, unit in enumerate(kept.units) if i != mine for p in unit.build.patches):
        return True
    for i, unit in enumerate(kept.units):
        for kfile, document, _ in unit.build.kustomizations:
            if i == mine and inside:
                continue  # its own kustomizations reach inside it: that is its walk
            spec = cache.get(tree, kfile).docs[document]
            where = posixpath.dirname(kfile)
            near = reaches(where) or path.startswith(where + "/")  # an entry without `..` stays in its folder
            for key in ("resources", "bases", "components"):
                for item in strings(spec.get(key)):
                    if (near or ".." in item) and reaches(join_path(where, item)):
                        return True
    return False


def walked_again(unit: Unit, tree: FileTree, index: TreeIndex, environment: str, cache: DocumentCache
                 ) -> Optional[tuple]:
    """(the unit walked again over its path in ``tree`` with the scope ids it had, (its Reading,
    Listing)) when it makes the kustomizations it made, without a problem; else None."""
    scopes = [level.scope for _, _, route in unit.build.kustomizations for level in route]
    scopes += [p.scope for p in unit.build.patches] + [level.scope for level in unit.outer]
    if unit.build.replacements or any(level.component for _, _, route in unit.build.kustomizations
                                      for level in route):
        return None
    kustomization = unit.kustomization.doc if unit.kustomization is not None else {}
    if dig(kustomization, "spec", "components"):
        return None
    reading, listing, problems = units.Reading(tree), units.Listing(index), []
    walker = Walker(reading, listing, cache, problems, environment, ScopeIds(min(scopes, default=1) - 1))
    if unit.outer and walker.new_scope() != unit.outer[0].scope:
        return None
    walker.add_path(unit.path, unit.outer)
    build = walker.build
    # The scope ids it had, as its kustomizations say (what its patches select by): a walk is
    # deterministic, and this is where the ids are checked rather than assumed.
    if problems or build.replacements or build.kustomizations != unit.build.kustomizations:
        return None
    walked = replace(unit, build=Build(resources=build.resources, patches=unit.build.patches,
                                       kustomizations=unit.build.kustomizations))
    return walked, (reading, listing)


def children(kept: ReleaseFiles, position: int, parent: Unit) -> Optional[list]:
    """[(each Flux Kustomization of the parent at ``position``, in its order; the position of the
    unit made of it, or None)] when it made one at least (breadth first, those it made are one run
    after it, in its order); else None."""
    by_resource = {(u.kustomization.file, u.kustomization.index): i for i, u in enumerate(kept.units)
                   if i > position and u.kustomization is not None}
    order = [(r, by_resource.get((r.file, r.index))) for r in parent.build.resources if flux_kustomization(r.doc)]
    return order if any(at is not None for _, at in order) else None


def place(order: list, made) -> int:
    """The position of the unit of ``made`` (one of ``order``, the parent's ``children``, none
    made of it yet): after the units made of those before it, or before the first made after it."""
    at = next(i for i, (r, _) in enumerate(order) if r is made)
    before = [unit for _, unit in order[:at] if unit is not None]
    return before[-1] + 1 if before else next(unit for _, unit in order[at:] if unit is not None)


def followed(part: units.Part, kept: ReleaseFiles, parent: Unit, made, at: int, tree: FileTree,
             index: TreeIndex, settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the unit of the Kustomization ``made``, its Reading, Listing, Lookups), followed in
    ``tree`` as the environment's build follows it at position ``at``, when that is what a whole
    build makes: the ConfigMaps it substitutes from are the parent's, and it is built without a
    problem, replacement or kustomize `images:`; else None."""
    doc, _ = parent.document(made)
    ref = dig(doc, "spec", "sourceRef")
    if not isinstance(ref, dict):
        return None
    post = dig(doc, "spec", "postBuild")
    for source in (post.get("substituteFrom") or ()) if isinstance(post, dict) else ():
        if isinstance(source, dict) and source.get("kind") != "Secret" and not any(
                r.kind == "ConfigMap" and r.name == str(source.get("name") or "") and r.namespace == made.namespace
                for r in parent.build.resources):
            return None  # a ConfigMap of another unit's, or of the repository's
    environment = settings.environment(part.environment)
    reading, listing = units.Reading(tree), units.Listing(index)
    lookups = units.Lookups(Finder(tree, index, cache))
    taken = [level.scope for u in kept.units for _, _, route in u.build.kustomizations for level in route]
    taken += [p.scope for u in kept.units for p in u.build.patches] + [lv.scope for u in kept.units for lv in u.outer]
    problems: list = []
    # The units the environment's build holds when it follows this one: those before it.
    unit = kustomizations.follow_kustomization(made, parent, environment.repo, reading, listing, cache, problems,
                                               part.environment, lookups, list(kept.units[:at]),
                                               ScopeIds(max(taken, default=0)))
    if unit is None or problems or unit.build.replacements or \
            overlay_images.kustomize_images(part.environment, unit, cache, reading, settings):
        return None
    return unit, reading, listing, lookups
