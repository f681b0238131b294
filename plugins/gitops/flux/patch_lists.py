"""A kustomization's patches changed (a patch added, edited or taken away; a patch file named or
no more): the HelmReleases they select, before or after, read again on their own inside the
builds that hold them, so that a patch costs the releases it patches, not a build of their
environment.

The proof is by construction, as ``release_files``'. A kustomization's patches act on the objects
its scope holds (what it and what it lists build), and nothing in a build looks a HelmRelease up.
A commit may change kustomization files, and add or remove patch files, when for each environment
reading one:
- the kustomization is walked once, as the one kustomize finds first in its folder, not as a
  component, with no `components:` (its scope's patches are then its own, in its order); its
  documents are equal but for `patches:`, `patchesStrategicMerge:` and `patchesJson6902:`, and it
  says the same of image setters;
- its patches before and after are made without a problem (each file named exists and parses; no
  text is looked for as a file that is none) and select HelmReleases only (a target of that kind,
  or a body of it); the variables its unit's patches name, defined or not, are
  counted as before (``sharing.named``: what a variable defined anew finds stands);
- a patch file named anew was not read by the environment, or read as a patch file only; one no
  longer named is let go when nothing else of the environment names it; the files the commit adds
  or removes are in a changed kustomization's folder, not named as a kustomization (kustomize reads
  that folder only through it: a file there that nothing names is read by none), and none it
  removes is read by any environment still;
- each HelmRelease a patch selects, before or after, is read again as discovery reads it
  (``held_releases.read_again``): it keeps its name, namespace, variable, number of image pins
  and the sources it found, and reads no other file;
- when the kustomization had no patches, every HelmRelease its scope holds was built through its
  route alone: its new patches go after those of the kustomizations it lists and before those of
  the ones listing it, the order kustomize applies them to such a release;
- no environment looked up what the changed files hold, walks the whole listing or looked for a
  path the commit adds or removes.
The fold across environments then reads again only the pins that differ (``discovery.refold``).
A patch that only moved in its list (one added or taken away before it) is the same patch applied
in the same order: the releases it selects are not read again, the pins it writes move to its
place now (``moved``, ``relocated``), and the fold moves them in place (it reads a line's pins by
the line, wherever it is) unless a variable's version site is there.
Else None: the environment is built again.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import images, sharing, units
from .held_releases import ReleaseFiles, from_file, reached, read_again, with_patches
from .kustomize import KUSTOMIZATION_FILES, Walker, join_path
from .discovery import common_ends
from .kustomizations import Unit
from .manifests import DocumentCache, FileTree
from ..model import PinLocation
from .patches import PATCH_KEYS, applies, literal, selected_name, selects_releases_only
from .kustomization_edits import changed_spec, walked_once
from .tree_index import TreeIndex
from ..settings import Settings

def repatch(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
            settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing, the patches that only moved
    in their lists: ``moved``) from ``parts`` and ``read``, those of ``old`` (whose listing is
    ``index``), when the commit changes kustomizations' patches only (see the module's doc); else
    None."""
    change = units.change(old, new)
    if index is None or not change.changed or \
            any(posixpath.basename(path) not in KUSTOMIZATION_FILES for path in change.changed):
        return None
    specs = {}  # kustomization -> (its spec's document, the spec before, after)
    for kfile in change.changed:
        found = _specs(kfile, old, new, cache)
        if found is None:
            return None
        specs[kfile] = found
    folders = {posixpath.dirname(kfile) for kfile in specs}
    if any(posixpath.basename(path) in KUSTOMIZATION_FILES or posixpath.dirname(path) not in folders
           for path in change.listed):
        return None
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    after = index.moved(change.added, change.removed) if change.listed else index
    done, named, unnamed, places = [], set(), set(), {}
    for part in parts:
        if not part.looked_up.isdisjoint(keys) or change.listed and (
                part.listed_everything or not part.listed_paths.isdisjoint(change.listed)):
            return None
        mine = sorted(kfile for kfile in specs if kfile in part.read)
        if not mine:
            if not part.read.isdisjoint(change.removed):
                return None
            done.append(part)
            continue
        found = _repatch_part(part, {k: specs[k] for k in mine}, old, new, index, after, change, settings, cache)
        if found is None:
            return None
        done.append(found[0])
        named |= found[1]
        unnamed |= found[2]
        places.update(found[3])
    done = tuple(done)
    return done, units.reads_after(read, done, change, named, unnamed), after, places


def _specs(kfile: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[tuple]:
    """(its spec's document, the spec before, after) when a kustomization's documents are equal
    but for its patches, it lists no components and says the same of image setters; else None."""
    found = changed_spec(kfile, old, new, cache, PATCH_KEYS)
    if found is None or "components" in found[2] or images.markers(old, kfile, cache) != images.markers(new, kfile, cache):
        return None
    return found


def _repatch_part(part: units.Part, specs: dict, old: FileTree, new: FileTree, index: TreeIndex, after: TreeIndex,
                  change: units.Change, settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the part with the kustomizations' patches made again and the releases they select read
    again, the patch files named anew, those named no more, the patches that only moved) or None."""
    kept: ReleaseFiles = part.kept
    if kept is None:
        return None
    built = list(kept.units)
    selecting = []  # (unit position, the patches that differ, before and after)
    places = {}  # the patches that moved in their lists (``moved``)
    was_named, now_named = set(), set()
    for kfile, (spec, was, now) in specs.items():
        found = walked_once(kept, kfile, index, change)
        if found is None or found[1][-1].component:
            return None
        position, chain = found
        folder, scope = posixpath.dirname(kfile), found[1][-1].scope
        before = _collected(old, index, folder, kfile, spec, was, scope, cache)
        patches = _collected(new, after, folder, kfile, spec, now, scope, cache)
        unit = built[position]
        spliced = None if before is None or patches is None else _spliced(kept, unit, chain, before, patches)
        if spliced is None:
            return None
        again = with_patches(unit, spliced)
        if sharing.named(unit, old, cache) != sharing.named(again, new, cache):
            return None  # a `${VAR}` named more or fewer times: its other uses change
        built[position] = again
        # Past what both start and end with, the patches differ: a release only the others
        # select is patched alike (the same patches, in the same order).
        differ, moves = moved(before, patches)
        selecting.append((position, differ))
        places.update(moves)
        was_named.update(p.file for p in before if from_file(p))
        now_named.update(p.file for p in patches if from_file(p))
    named, unnamed = now_named - was_named, was_named - now_named
    if any(path in part.read and path not in kept.patch_files for path in named):
        return None  # read otherwise: a file it reads as more than patches
    still = {p.file for unit in built for p in unit.build.patches if from_file(p)}
    gone = {path for path in unnamed if path not in still and path in kept.patch_files}
    read = (part.read - gone) | named
    if not read.isdisjoint(change.removed):
        return None
    touched = {}
    for position, patches in selecting:
        touched.update(selected(kept, position, patches))
    if part.replaced and reached(kept, [(h.unit, h.resource) for h, _ in touched.values()]):
        return None  # one a replacement selected as its patches made it (``read_again`` asks of them now)
    again = replace(kept, units=tuple(built), patch_files=(kept.patch_files - gone) | named)
    part = relocated_part(part, places)
    found = None if part is None else read_again(part, again, touched, new, settings, cache, same_release)
    if found is None:
        return None
    pins, release_images, _, again = found
    return replace(part.with_pins(pins, part.overlay_images, release_images, again), read=read), named, unnamed, places


def _collected(tree: FileTree, index: TreeIndex, folder: str, kfile: str, spec_index: int, spec: dict, scope: int,
               cache: DocumentCache) -> Optional[list]:
    """The patches the kustomization's ``spec`` declares, as a build makes them in ``scope``, when
    it makes them without a problem, looks for no file that is none, and each selects
    HelmReleases only; else None."""
    problems: list = []
    walker = Walker(tree, index, cache, problems)
    walker.collect_patches(folder, kfile, spec_index, spec, scope)
    made = walker.build.patches
    if problems or not all(selects_releases_only(p) for p in made):
        return None
    merge = spec.get("patchesStrategicMerge")
    for entry in merge if isinstance(merge, list) else ():
        if isinstance(entry, str) and "\n" not in entry and join_path(folder, entry) not in index.files:
            return None  # a text looked for as a file first: the listing would say so
    return made


def _spliced(kept: ReleaseFiles, unit: Unit, chain: tuple, before: list, patches: list) -> Optional[list]:
    """The unit's patches with ``patches`` in place of the kustomization's ``before`` (its
    scope's, in their place, as the build made them); None when they are not, or when it had none
    and a release of its scope was built by another route too."""
    scope = chain[-1].scope
    made = unit.build.patches
    at = [i for i, p in enumerate(made) if p.scope == scope]
    if [made[i] for i in at] != before or at and at[-1] - at[0] + 1 != len(at):
        return None
    if at:
        return made[:at[0]] + patches + made[at[-1] + 1:]
    inner = {level.scope for _, _, route in unit.build.kustomizations
             if len(route) > len(chain) and route[:len(chain)] == chain for level in route[len(chain):]}
    outer = {level.scope for level in chain[:-1]}
    start = max((i + 1 for i, p in enumerate(made) if p.scope in inner), default=0)
    if any(p.scope in outer for p in made[:start]):
        return None
    around = inner | outer | {scope}
    if any(scope in h.resource.scopes and not h.resource.scopes <= around for h in kept.held):
        return None  # a second route's patches: where kustomize applies these among them is its walk's
    return made[:start] + patches + made[start:]


def selected(kept: ReleaseFiles, position: int, patches: list) -> dict:
    """{id: (HeldRelease, None)} of the releases of the unit at ``position`` that ``patches``
    select; by the names they select when each selects one (not the fleet's releases each, nor
    each release against every patch)."""
    by_name: dict = {}
    for p in patches:
        by_name.setdefault(selected_name(p), []).append(p)
    if not all(literal(name) for name in by_name):
        return {id(h): (h, None) for h in kept.held
                if h.unit == position and any(applies(p, h.resource) for p in patches)}
    found = {}
    for h in kept.held:
        if h.unit != position:
            continue
        names = h.resource.names or (h.resource.name,)
        if any(applies(p, h.resource) for name in names for p in by_name.get(name, ())):
            found[id(h)] = (h, None)
    return found


def moved(before: list, after: list) -> tuple:
    """(the patches of ``before`` and of ``after`` that differ past what both start and end with,
    but for their places in the lists holding them; {(file, document, where it was): where it is}
    of those that only moved there: a patch added first in a list moves every one after it)."""
    start, end = common_ends([_placeless(p) for p in before], [_placeless(p) for p in after])
    places = {(a.file, a.index, a.at): b.at for a, b in zip(before[:start] + before[len(before) - end:],
                                                             after[:start] + after[len(after) - end:]) if a.at != b.at}
    return before[start:len(before) - end] + after[start:len(after) - end], places


def _placeless(patch):
    return replace(patch, at=()) if patch.at else patch


def relocation(places: dict):
    """location -> where it is now, or None where no patch that moved in its list (``moved``) holds it."""
    lengths = {len(at) for _, _, at in places}
    files = {path for path, _, _ in places}

    def place(location):
        if location is not None and location.file in files:
            for n in lengths:
                to = places.get((location.file, location.document, location.path[:n]))
                if to is not None:
                    return replace(location, path=to + location.path[n:])
        return None
    return place


def relocated(pins: tuple, place) -> tuple:
    """``pins`` with those ``place`` moves located where they are now (``pins`` when none)."""
    moved = [(i, place(pin.location)) for i, pin in enumerate(pins)]
    moved = [(i, to) for i, to in moved if to is not None]
    if not moved:
        return pins
    pins = list(pins)
    for i, to in moved:
        pins[i] = replace(pins[i], location=to)
    return tuple(pins)


def relocated_part(part: units.Part, places: dict) -> Optional[units.Part]:
    """The part with the pins written in patches that moved in their lists (``moved``) located
    where they are now (the part itself when it has none); None when one is a variable's version
    site there, or a line a kustomize replacement reads (the part says where)."""
    if not places:
        return part
    place = relocation(places)
    if any(variable is not None and place(PinLocation(*variable[1])) is not None for variable in part.variables) or \
            any(place(location) is not None for location, _ in part.replacement_sources):
        return None
    pins, release_images = relocated(part.pins, place), relocated(part.release_images, place)
    if pins is part.pins and release_images is part.release_images:
        return part
    return part.with_pins(pins, part.overlay_images, release_images, part.kept)


def same_release(before, after) -> bool:
    """A pin read again with other patches is the same release's (its line may move: the fold
    reads it again)."""
    return (before.environment, before.app, before.namespace, before.part, before.release_file) == \
        (after.environment, after.app, after.namespace, after.part, after.release_file)
