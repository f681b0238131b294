"""A Flux Kustomization's own patches changed (``spec.patches``: one release's version or values
patched from ``clusters/<env>/apps.yaml``): the HelmReleases they select, before or after, read
again on their own inside the build that holds them, as ``patch_lists`` does for a
kustomization's.

The proof is ``patch_lists``', at the unit's own level. kustomize-controller applies a Flux
Kustomization's patches after everything its path builds (discovery collects them last, in a
scope of their own that every object of the unit is in), so new patches take the place of the
old ones at the end of the unit's list, or go last. A commit may change files holding Flux
Kustomizations, and nothing else, when for each environment reading one:
- the file's documents are equal but for one Flux Kustomization's ``spec.patches``,
  ``spec.patchesStrategicMerge`` and ``spec.patchesJson6902``, and keys of its spec discovery never
  reads (``kustomizations.SPEC_READ``: `interval`, `prune`, `dependsOn`… change nothing it finds:
  when only those changed, nothing is read again); it lists no components (their patches share
  that scope) and says the same of image setters;
- the environment follows that Kustomization as one unit whose patches of its scope are those
  the file declares (its parent wrote none: ``kustomizations.follow_kustomization``; that holds after, as the
  Kustomization keeps its metadata, and no other unit with variables reads its text otherwise:
  what it names is the same, or no unit but its own substitutes);
- its patches before and after are made without a problem, inline (Flux reads no patch file),
  each selecting HelmReleases only; the variables its unit's patches name, defined or not, are
  counted as before (``sharing.named``: what a variable defined anew finds stands);
- each HelmRelease a differing patch selects is read again (``held_releases.read_again``) and
  keeps its name, namespace, variable, number of image pins and the sources it found;
- nothing else: what the file holds besides is equal (a lookup of it answers alike; no build
  looks a Flux Kustomization up), and the listing is the same.
Else None: the environment is built again.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import images, sharing, units
from .held_releases import ReleaseFiles, read_again, selected_by_replacements, with_patches
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS, Walker
from .kustomizations import SPEC_READ, Unit, flux_kustomization
from .manifests import DocumentCache, FileTree
from .patch_lists import moved, relocated_part, same_release, selected
from .patches import PATCH_KEYS, selects_releases_only
from .tree_index import TreeIndex
from ..settings import Settings

READ = frozenset(SPEC_READ) - frozenset(PATCH_KEYS)


def repatch(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
            settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing, the patches that only moved
    in their lists: ``patch_lists.moved``) from ``parts`` and ``read``, those of ``old`` (whose
    listing is ``index``), when the commit changes Flux Kustomizations' own patches only (see the
    module's doc); else None."""
    change = units.change(old, new)
    if index is None or not change.changed or change.listed or \
            any(posixpath.basename(path) in KUSTOMIZATION_FILES for path in change.changed):
        return None
    specs = {}  # file -> (the Kustomization's document index, its spec before, after)
    for path in change.changed:
        found = _spec(path, old, new, cache)
        if found is None:
            return None
        specs[path] = found
    done, places = [], {}
    for part in parts:
        mine = sorted(path for path in specs if path in part.read)
        if mine:
            found = _repatch_part(part, {path: specs[path] for path in mine}, old, new, index, settings, cache)
            if found is None:
                return None
            part = found[0]
            places.update(found[1])
        done.append(part)
    return tuple(done), read, index, places


def changed_patches(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> bool:
    """Whether the commit changed the file in a Flux Kustomization's own patches only."""
    return _spec(path, old, new, cache) is not None


def _spec(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[tuple]:
    """(the index of the Flux Kustomization whose patches changed, its spec before, after) when
    the file's documents are equal but for those; else None."""
    was, now = cache.get(old, path, RELEVANT_KINDS), cache.get(new, path, RELEVANT_KINDS)
    if was.error or now.error or len(was.docs) != len(now.docs):
        return None
    differ = [i for i, (a, b) in enumerate(zip(was.docs, now.docs)) if a != b]
    if len(differ) != 1:
        return None
    a, b = was.docs[differ[0]], now.docs[differ[0]]
    if not all(flux_kustomization(doc) and isinstance(doc.get("spec"), dict) for doc in (a, b)):
        return None
    if {k: v for k, v in a.items() if k != "spec"} != {k: v for k, v in b.items() if k != "spec"}:
        return None
    if {k: v for k, v in a["spec"].items() if k in READ} != {k: v for k, v in b["spec"].items() if k in READ}:
        return None  # what discovery reads besides its patches: its path, source, transformers, …
    if "components" in b["spec"] or images.markers(old, path, cache) != images.markers(new, path, cache):
        return None
    return differ[0], a["spec"], b["spec"]


def _repatch_part(part: units.Part, specs: dict, old: FileTree, new: FileTree, index: TreeIndex,
                  settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the part with the Kustomizations' patches made again and the releases they select read
    again, the patches that only moved) or None."""
    kept: ReleaseFiles = part.kept
    if kept is None:
        return None
    built, touched, places = list(kept.units), {}, {}
    for path, (at, was, now) in specs.items():
        found = [i for i, unit in enumerate(built) if unit.kustomization is not None
                 and (unit.kustomization.file, unit.kustomization.index) == (path, at)]
        if len(found) != 1:
            return None  # read as something else too, or not followed
        position = found[0]
        unit = built[position]
        res = replace(unit.kustomization, doc=cache.get(new, path, RELEVANT_KINDS).docs[at])
        if selected_by_replacements(part, kept, (unit.kustomization.doc, res.doc)):
            return None  # a replacement of its parent's build may read or write it
        if all(was.get(key) == now.get(key) for key in PATCH_KEYS):  # keys discovery never reads
            built[position] = replace(unit, kustomization=res)
            continue
        if not _substituted_alike(built, position, path, old, new, cache):
            return None
        scope = _scope(unit, kept, position)
        before = None if scope is None else _collected(old, index, path, at, was, scope, cache)
        patches = None if scope is None else _collected(new, index, path, at, now, scope, cache)
        made = unit.build.patches
        if before is None or patches is None or [p for p in made if p.scope == scope] != before:
            return None  # not the file's as written: its parent wrote them (``kustomizations.follow_kustomization``)
        again = with_patches(unit, [p for p in made if p.scope != scope] + patches, res)
        if sharing.named(unit, old, cache) != sharing.named(again, new, cache):
            return None  # a `${VAR}` named more or fewer times: its other uses change
        built[position] = again
        differ, moves = moved(before, patches)
        touched.update(selected(kept, position, differ))
        places.update(moves)
    # (kustomize-controller runs a Flux Kustomization's patches after its path's build, replacements
    # and all: what they make selects no replacement, and ``read_again`` asks of the releases now)
    part = relocated_part(part, places)
    found = None if part is None else read_again(part, replace(kept, units=tuple(built)), touched, new, settings,
                                                 cache, same_release)
    if found is None:
        return None
    pins, release_images, _, again = found
    return part.with_pins(pins, part.overlay_images, release_images, again), places


def _substituted_alike(built: list, position: int, path: str, old: FileTree, new: FileTree,
                       cache: DocumentCache) -> bool:
    """Whether the Kustomization's parent builds its patches as written after as it did before:
    no other unit substitutes variables, or the file names the same ones."""
    others = any(unit.variables.enabled for i, unit in enumerate(built) if i != position)
    return not others or sharing.file_references(old, path, cache) == sharing.file_references(new, path, cache)


def _scope(unit: Unit, kept: ReleaseFiles, position: int) -> Optional[int]:
    """The scope of the Kustomization's own patches: its level's, the first of every route of
    its unit (``kustomizations.follow_kustomization``), or its releases' only one (a plain folder's)."""
    for _, _, route in unit.build.kustomizations:
        return route[0].scope
    held = [h.resource.scopes for h in kept.held if h.unit == position]
    common = frozenset.intersection(*held) if held else frozenset()
    return next(iter(common), None)


def _collected(tree: FileTree, index: TreeIndex, path: str, at: int, spec: dict, scope: int,
               cache: DocumentCache) -> Optional[list]:
    """The patches of a Flux Kustomization's ``spec``, as its build makes them, when they are made
    without a problem, inline, and each selects HelmReleases only; else None."""
    merge = spec.get("patchesStrategicMerge")
    if any(isinstance(entry, str) and "\n" not in entry for entry in (merge if isinstance(merge, list) else ())):
        return None  # a text looked for as a file first: the listing would say so
    problems: list = []
    walker = Walker(tree, index, cache, problems)
    walker.collect_patches(posixpath.dirname(path), path, at, spec, scope, at=("spec",))
    made = walker.build.patches
    if problems or not all(p.file == path and selects_releases_only(p) for p in made):
        return None
    return made
