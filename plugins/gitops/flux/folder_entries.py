"""A folder listed anew in a kustomization's `resources:` (an app's base added to an environment's
overlay: `- ../base/podinfo`), walked on its own as the environment's build walks it there.

A build walks an entry through ``kustomize.Walker.include``, given the route that reached the
kustomization listing it (its levels, and the folders of its kustomizations, where a loop stops).
Walked with those alone, in a walker that records what it reads and asks of the listing, the entry
makes the same objects, patches and kustomizations as inside the whole build, with scopes of its
own (after those the unit has: its patches first, as kustomize applies them before the ones
around it), when it meets nothing of the rest of the build: no problem on the way (a loop, a file
missing or not valid YAML), no kustomize replacement (they select objects across the build), no
`images:` (the outermost kustomization setting an image decides over the whole build) and no
`${VAR}` in what it reads (a variable's uses would change). ``resource_lists`` then reads its
HelmReleases and chart sources as one more app of the environment, refusing any the environment
builds already (kustomize would merge the two: their names and keys are taken).

A folder entry taken out of the list is walked again in the commit's parent the same way: what
that walk read and looked for is what the environment read and looked for through it alone when
all of it is inside the folder and nothing else of the environment names a path inside the folder
or above it (a kustomization's entries and patch files, a Flux Kustomization's path): those reads
and asks go, with the kustomizations it walked, their patches and what the build kept of its
objects (``taken_away``, ``taken_folder``, ``without``).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import Optional

from . import releases, sharing, units
from .chart_sources import chart_source_key
from .held_releases import ReleaseFiles, light, reached
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS, ScopeIds, Walker, join_path, strings
from .kustomizations import Unit
from .manifests import DocumentCache, FileTree
from .tree_index import TreeIndex


@dataclass(frozen=True)
class Walked:
    """What a build makes of one folder entry, and what walking it read and looked for."""

    resources: list  # Resource, in build order
    unit: Unit  # the unit (without its resources) with the entry's patches and kustomizations
    read: frozenset  # every file walking it read
    asked: frozenset  # the paths it looked for (besides those it read)
    folders: frozenset  # the folders it looked into
    patch_files: frozenset  # the files it read as patches only
    resource_files: frozenset  # the files it read as resources


def walk(tree: FileTree, index, cache: DocumentCache, environment: str, unit: Unit, kfile: str, entry: str,
         chain: tuple) -> Optional[Walked]:
    """The entry ``entry`` of the kustomization ``kfile`` (of ``unit``, reached through ``chain``)
    walked on its own in ``tree`` (whose listing is ``index``); None when it meets the rest of
    the build (see the module's doc) or holds no folder."""
    reading, listing, problems = units.Reading(tree), units.Listing(index), []
    taken = [level.scope for _, _, route in unit.build.kustomizations for level in route]
    taken += [p.scope for p in unit.build.patches]
    walker = Walker(reading, listing, cache, problems, environment, ScopeIds(max(taken, default=0)))
    stack = frozenset(posixpath.dirname(level.file) for level in chain
                      if posixpath.basename(level.file) in KUSTOMIZATION_FILES)
    walker.include(posixpath.dirname(kfile), kfile, entry, chain, stack)
    build = walker.build
    if problems or not build.kustomizations and not build.files or build.replacements or build.replacement_sources:
        return None
    if any("images" in cache.get(tree, k).docs[i] for k, i, _ in build.kustomizations):
        return None
    read = frozenset(reading.paths)
    if any(sharing.file_references(tree, path, cache) for path in read):
        return None
    patch_files = {p.file for p in build.patches if p.text_doc is None and not p.at}
    if not patch_files.isdisjoint(build.files):
        return None  # a file read as objects and as patches: neither alone says what it does
    otherwise = {k for k, _, _ in build.kustomizations} | set(build.files)
    # Its patches act on its objects only (their scopes are its own): before any of the unit's.
    walked = light(unit, build.patches + list(unit.build.patches), list(unit.build.kustomizations) + build.kustomizations)
    return Walked(build.resources, walked, read, frozenset(listing.paths) - read, frozenset(listing.folders),
                  frozenset(patch_files - otherwise), frozenset(build.files))


def with_walked(kept: ReleaseFiles, position: int, walked: Walked) -> ReleaseFiles:
    """``kept`` with the unit at ``position`` holding a folder walked on its own, its patch files
    and its files of chart sources only."""
    releases_in = {res.file for res in walked.resources if res.kind == "HelmRelease"}
    return replace(kept, units=kept.units[:position] + (walked.unit,) + kept.units[position + 1:],
                   patch_files=kept.patch_files | walked.patch_files,
                   source_files=kept.source_files | (walked.resource_files - releases_in))


@dataclass(frozen=True)
class Gone:
    """What a folder entry taken out of a kustomization's list had made, as the build keeps it."""

    walked: Walked  # its walk again, in the commit's parent (resources with scopes of their own)
    scopes: frozenset  # the scopes of its kustomizations, as the build walked them
    kustomizations: frozenset  # their files


def taken_away(tree: FileTree, index, cache: DocumentCache, environment: str, units_kept: tuple, position: int,
               kfile: str, entry: str, chain: tuple) -> Optional[Gone]:
    """What the folder entry ``entry`` of ``kfile`` (of the unit at ``position``, reached through
    ``chain``) made in ``tree``, the commit's parent, when that route alone reached anything in
    it: everything its walk read or looked for is inside the folder, and no other kustomization
    or unit of the environment names a path inside it or above it; None when not."""
    folder = join_path(posixpath.dirname(kfile), entry)
    unit = units_kept[position]
    walked = walk(tree, index, cache, environment, unit, kfile, entry, chain)
    if walked is None:
        return None

    def inside(path: str) -> bool:
        return path == folder or path.startswith(folder + "/")

    if not all(inside(path) for path in walked.read | walked.asked | walked.folders):
        return None  # it reads something outside: another walk may read it too
    for other in units_kept:
        if other.path and _reaches(other.path, folder):
            return None  # a unit applying the folder, or one above it
        for k, spec, _ in other.build.kustomizations:
            if not inside(k) and any(_reaches(target, folder) for target in _named(tree, k, spec, cache)
                                     if (k, target) != (kfile, folder)):
                return None  # another kustomization lists something inside the folder, or above it
    made = {k for k, _, _ in walked.unit.build.kustomizations[len(unit.build.kustomizations):]}
    return Gone(walked, frozenset(route[-1].scope for k, _, route in unit.build.kustomizations if k in made),
                frozenset(made))


def _named(tree: FileTree, kfile: str, spec_index: int, cache: DocumentCache) -> list:
    """Every path a kustomization names: its resources, bases and components, its patch files."""
    spec = cache.get(tree, kfile).docs[spec_index]
    folder = posixpath.dirname(kfile)
    entries = [e for key in ("resources", "bases", "components") for e in strings(spec.get(key))]
    entries += [e for e in strings(spec.get("patchesStrategicMerge")) if "\n" not in e]
    for key in ("patches", "patchesJson6902"):
        for p in spec.get(key) if isinstance(spec.get(key), list) else ():
            if isinstance(p, dict) and isinstance(p.get("path"), str):
                entries.append(p["path"])
    return [join_path(folder, e) for e in entries]


def _reaches(target: str, folder: str) -> bool:
    """Whether a walk of ``target`` may read inside ``folder``: it is the folder, inside it, or
    above it (a folder without kustomization is walked whole)."""
    return target == folder or target.startswith(folder + "/") or folder.startswith(target.rstrip("/") + "/") \
        or target == ""


def taken_folder(part: units.Part, kept: ReleaseFiles, position: int, chain: tuple, kfile: str, entry: str,
                 old: FileTree, index: TreeIndex, elsewhere: frozenset, cache: DocumentCache) -> Optional[tuple]:
    """(its HeldReleases, the keys of its sources, ``Gone``) of a folder a kustomization lists no
    more, when that route alone made what it holds (``taken_away``) and what it made is as a file
    taken away must be (``resource_lists``): releases made once, looking nothing up elsewhere,
    sources no other of the environment has and none looked for elsewhere; no kustomize replacement
    selects one of them."""
    found = taken_away(old, index, cache, part.environment, kept.units, position, kfile, entry, chain)
    if found is None or part.replaced and reached(kept, [(position, res) for res in found.walked.resources]):
        return None
    held = [h for h in kept.held if h.unit == position and h.resource.file in found.walked.read]
    made = sorted((r.file, r.index) for r in found.walked.resources
                  if r.kind == "HelmRelease" and r.api_version.startswith(releases.HELM_API))
    if not held or sorted((h.resource.file, h.resource.index) for h in held) != made or \
            any(h.pin < 0 or h.asked for h in held):
        return None  # one defined twice (a problem said), or one that looked a source up elsewhere
    keys = set()
    for res in found.walked.resources:
        key = chart_source_key(res)
        if res.kind == "HelmRelease" or key is None and res.kind not in RELEVANT_KINDS:
            continue
        if key is None or key in kept.repeated or key in elsewhere:
            return None
        keys.add(key)
    return held, keys, found


def without(kept: ReleaseFiles, position: int, gone) -> ReleaseFiles:
    """``kept`` without what a folder taken away made in the unit at ``position``: its
    kustomizations, their patches, its patch files and files of chart sources."""
    unit = kept.units[position]
    without = light(unit, [p for p in unit.build.patches if p.scope not in gone.scopes],
                    [k for k in unit.build.kustomizations if k[0] not in gone.kustomizations])
    return replace(kept, units=kept.units[:position] + (without,) + kept.units[position + 1:],
                   patch_files=kept.patch_files - gone.walked.read, source_files=kept.source_files - gone.walked.read)
