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
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional

from . import sharing, units
from .kustomize import KUSTOMIZATION_FILES, Build, ScopeIds, Walker
from .kustomizations import Unit
from .manifests import DocumentCache, FileTree


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
    walked = Unit(Build(patches=build.patches + list(unit.build.patches),
                        kustomizations=list(unit.build.kustomizations) + build.kustomizations),
                  unit.path, unit.variables, unit.kustomization)
    return Walked(build.resources, walked, read, frozenset(listing.paths) - read, frozenset(listing.folders),
                  frozenset(patch_files - otherwise), frozenset(build.files))
