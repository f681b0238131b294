"""A Flux Kustomization added to an environment (`clusters/<env>/team-x.yaml` applying a new
folder of apps), or taken away: its unit built on its own and its HelmReleases read as more of the
environment's, or let go, so that a team added or gone costs the team, not a build of its
environment.

The proof is by construction, as ``resource_lists``'. ``kustomizations.build_environment`` follows
an environment's units breadth first: each unit's resources in build order, each Flux
Kustomization among them (by namespace and name, once) made a unit by ``follow_kustomization``
from its document as its parent builds it, the units before it (ConfigMaps, generators) and the
repository (a GitRepository) (``unit_builds``). A commit may add files, or remove files, and
change none but the kustomization of their folder, in its `resources:` by one entry
(``kustomization_edits.listed_entries``), when:
- one of them (or the file that entry lists anew or no more) holds one Flux Kustomization and
  nothing else, parses and names no `${VAR}`; it is a file of a folder that one unit of an
  environment (the parent) walks as its path, folder by folder or through that kustomization;
- added: nothing else of that environment reaches the file (no other unit's path, no
  kustomization's entry at it, at its folder or above), and the commit adds nothing else there;
  the parent walked again (with the scope ids it had: its kustomizations say so) makes it, once:
  its other objects are as they were, and what they find stands (a Flux Kustomization is no
  source, ConfigMap or generator). Its unit goes among the units the parent made, in the parent's
  order (the parent made one at least);
- added: its name is none the builds met (``ReleaseFiles.followed``); the ConfigMaps it
  substitutes from are the parent's (the units before it are kept without their objects), and its
  unit is built without a problem (a source not found, an ExternalArtifact no generator of the
  parent makes, a file missing), replacement or kustomize `images:`; it substitutes variables only
  when it comes last (where its references join the environment's); its objects are HelmReleases
  and chart sources, or kinds discovery never reads, read as ``resource_lists`` reads an app added
  (``releases_added``: new names, new source keys no environment looked for, sources its
  environment found or it holds; no Flux Kustomization, so no unit of its own, and a path another
  unit applies makes names taken or no release), in build order after the units before it; no file
  of its releases is read as a patch or kustomization too;
- taken away: its unit is the one the environment made of it, and no other Flux Kustomization of
  its name waits to be followed (``ReleaseFiles.followed_twice``); followed again in the commit's
  parent as above (its name, its ConfigMaps, no problem), it looked nothing up across the
  repository, and everything it read or looked at is inside its path, which nothing else of the
  environment reaches (a unit's path, a kustomization's entry, a patch file; another walk reaching
  the Kustomization's file would make it twice); its objects are HelmReleases and chart sources
  (or kinds discovery never reads: a ConfigMap may be a later unit's variables), its releases each
  kept (no duplicate) and looking for nothing outside the environment's builds; no release left
  finds its sources, no other source of the environment has their keys, no environment looked for
  them elsewhere, and no release left is a duplicate (which one is kept would move); its
  references, if any, are the environment's last; a file the commit removes that the environment
  read is its own or the Kustomization's;
- no environment walks the whole listing, looked for a path the commit adds or removes, into a
  folder whose listing it changes (but the parent's folder and, taken away, the unit's own), or up
  what the files hold; none but the parent's reads the kustomization changed.
A Flux Kustomization changed in what its unit builds (its path, name, target namespace: a team
moved, ``refollow``): the commit changes that file only, which holds one before and after; its
unit is let go as if taken away (in the commit's parent), then followed as if added (in the
commit) at the position the old one had (the file is where it was among its parent's objects, and
a team's unit makes none of its own); the environment may hold no release in between; and no unit
left (the parent too) looked into a folder whose listing the files added or removed change.
Else None: the environment is built again.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import releases, sharing, unit_builds, units
from .chart_sources import chart_source_key
from .held_releases import ReleaseFiles, files_read, light
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS, join_path
from .kustomizations import Unit, flux_kustomization
from .manifests import YAML_SUFFIXES, DocumentCache, FileTree
from .kustomization_edits import listed_entries
from .resource_lists import releases_added, relisted
from .tree_index import TreeIndex
from ..settings import Settings


def reunit(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
           settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from ``parts`` and
    ``read``, those of ``old`` (whose listing is ``index``), when the commit adds a Flux
    Kustomization and what it applies, or takes them away (see the module's doc); else None."""
    change = units.change(old, new)
    listed = _listed(change, old, new, cache) if change.changed else None
    if index is None or change.changed and listed is None or \
            listed is None and bool(change.added) == bool(change.removed):
        return None
    adding = listed[1] if listed else bool(change.added)
    paths, tree = (change.added, new) if adding else (change.removed, old)
    if listed and (change.removed if adding else change.added):
        return None
    after = index.moved(change.added, change.removed)
    if listed and listed[0] not in (after if adding else index).files:
        return None  # an entry naming no file: a problem the build says
    entries = [listed[0]] if listed else sorted(paths)
    entries = [path for path in entries if _holds_a_kustomization(tree, path, cache)]
    if not entries:
        return None
    entry = entries[0]  # a second one is more for a walk to read, or in a folder of another (below)
    folder = posixpath.dirname(entry)
    if adding and any(path != entry and (not folder or path.startswith(folder + "/")) for path in paths):
        return None  # more for the parent's walk to read than the Kustomization
    relisted_folders = _listings_changed(index, after, paths)
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    elsewhere = frozenset().union(*(p.looked_up for p in parts))
    done, came, went = [], set(), set()
    for part in parts:
        if part.listed_everything or not part.listed_paths.isdisjoint(paths) or \
                not part.looked_up.isdisjoint(keys):
            return None
        looked = part.listed_folders & relisted_folders
        if not looked and part.read.isdisjoint(change.removed | change.changed):
            done.append(part)
            continue
        if adding:  # the folder's listing brings it in, or its kustomization does
            found = _with_unit(part, entry, old, new, after, elsewhere, settings, cache) \
                if looked == {folder} or listed and not looked else None
        else:
            found = _without_unit(part, entry, looked, change.removed, old, index, elsewhere, settings, cache)
        if found is None:
            return None
        done.append(found[0])
        (came if adding else went).update(found[1])
    done = tuple(done)
    return done, units.reads_after(read, done, change, came, went), after


def refollow(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
             settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from ``parts`` and
    ``read``, those of ``old`` (whose listing is ``index``), when the commit changes one Flux
    Kustomization of a cluster folder in what its unit builds (its path, target namespace, name…),
    adding or removing files only where that unit looks, before or after: its unit let go as if
    taken away, then followed as if added (see the module's doc); else None."""
    change = units.change(old, new)
    if index is None or len(change.changed) != 1:
        return None
    entry, moved = next(iter(change.changed)), change.added | change.removed
    if not _holds_a_kustomization(old, entry, cache) or not _holds_a_kustomization(new, entry, cache):
        return None
    after = index.moved(change.added, change.removed)
    relisted_folders = _listings_changed(index, after, moved)
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    elsewhere = frozenset().union(*(p.looked_up for p in parts))
    done, came, went = [], set(), set()
    for part in parts:
        if part.listed_everything or not part.listed_paths.isdisjoint(moved) or not part.looked_up.isdisjoint(keys):
            return None
        looked = part.listed_folders & relisted_folders
        if entry not in part.read:
            if looked or not part.read.isdisjoint(change.removed):
                return None
            done.append(part)
            continue
        found = _without_unit(part, entry, looked, change.removed, old, index, elsewhere, settings, cache, True)
        if found is None or found[0].listed_folders & relisted_folders:
            return None  # another of its units (its parent too) looked where the commit adds or removes
        went |= found[1]
        found = _with_unit(found[0], entry, old, new, after, elsewhere, settings, cache, found[2])
        if found is None:
            return None
        done.append(found[0])
        came |= found[1]
    done = tuple(done)
    return done, units.reads_after(read, done, change, came, went), after


def _listed(change: units.Change, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[tuple]:
    """(the file, whether listed anew) when the commit changed one kustomization only, in its
    `resources:` by one file of its folder, listed anew or no more (``resource_lists``' terms)."""
    if len(change.changed) != 1:
        return None
    kfile = next(iter(change.changed))
    found = listed_entries(kfile, old, new, cache) if posixpath.basename(kfile) in KUSTOMIZATION_FILES else None
    if found is None:
        return None
    came, went = set(found[1]) - set(found[0]), set(found[0]) - set(found[1])
    path = join_path(posixpath.dirname(kfile), next(iter(came | went))) if len(came | went) == 1 else None
    # A file of another folder may be one another unit walks, which would make it too.
    return None if path is None or posixpath.dirname(path) != posixpath.dirname(kfile) else (path, bool(came))


def _holds_a_kustomization(tree: FileTree, path: str, cache: DocumentCache) -> bool:
    """Whether ``path`` holds one Flux Kustomization and nothing else, and names no `${VAR}`."""
    if not path.endswith(YAML_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES:
        return False
    parsed = cache.get(tree, path, RELEVANT_KINDS)
    return not parsed.error and len(parsed.docs) == 1 and flux_kustomization(parsed.docs[0]) and \
        not sharing.file_references(tree, path, cache)


def _listings_changed(index: TreeIndex, after: TreeIndex, paths) -> set:
    """The folders whose listing (files, subfolders, existence) the paths added or removed change:
    each one's folder, and those above a folder made or left empty."""
    found = set()
    for path in paths:
        folder = posixpath.dirname(path)
        found.add(folder)
        while folder and not (index.is_dir(folder) and after.is_dir(folder)):
            folder = posixpath.dirname(folder)
            found.add(folder)
    return found


def _with_unit(part: units.Part, entry: str, old: FileTree, new: FileTree, after: TreeIndex, elsewhere: frozenset,
               settings: Settings, cache: DocumentCache, at: Optional[int] = None) -> Optional[tuple]:
    """(the part with the Kustomization of ``entry`` followed as a unit on its own, the files
    its build reads anew) or None; ``elsewhere``: every key an environment looked for outside
    its builds; ``at``: its unit's position, when it is the one the unit let go had (the file
    is where it was among its parent's objects, and makes no unit of its own)."""
    kept: ReleaseFiles = part.kept
    folder = posixpath.dirname(entry)
    if kept is None:
        return None
    found = [i for i, unit in enumerate(kept.units) if unit.path == folder]
    if len(found) != 1 or unit_builds.reached_otherwise(kept, found[0], entry, old, cache):
        return None
    position = found[0]
    parent = unit_builds.walked_again(kept.units[position], new, after, part.environment, cache)
    if parent is None:
        return None
    parent, recorders = parent
    made = [r for r in parent.build.resources if r.file == entry]
    if not made:
        return None  # not walked as a file of the folder (it has a kustomization)
    made = made[0]  # the one walk reaching it (``reached_otherwise``) made it once
    if at is None:
        order = unit_builds.children(kept, position, parent)
        at = None if order is None else unit_builds.place(order, made)
    if at is None or (made.namespace, made.name) in kept.followed:
        return None
    built = unit_builds.followed(part, kept, parent, made, at, new, after, settings, cache)
    if built is None:
        return None
    unit, reading, listing, lookups = built
    unit.named = sharing.named(unit, new, cache) if unit.variables.enabled else None
    references = sharing.defined_references(unit.variables, unit.named) if unit.named is not None else {}
    if references and at < len(kept.units):
        return None  # references not last in its units'
    grown = _inserted(kept, at, unit, made)
    names = {(p.namespace, p.app) for p in part.pins}
    more: dict = {}
    added = releases_added(part, grown, at, unit.build.resources, True, names, more, set(), elsewhere, reading,
                           settings, cache)
    if added is None:
        return None
    place = next((i for i, h in enumerate(grown.held) if h.unit > at), len(grown.held))
    files = frozenset(reading.paths) | recorders[0].paths
    moved = relisted(part, grown, set(), set(), more, [(place, added)], set(), files)
    if moved is None:
        return None
    release_files = _files_kept(moved.kept, unit, files)
    if release_files is None:
        return None
    moved = replace(moved.keeping(release_files),
                    references=moved.references + ((references,) if references else ()),
                    looked_up=moved.looked_up | lookups.keys, finder_used=moved.finder_used or bool(lookups.keys),
                    listed_paths=(moved.listed_paths | listing.paths | recorders[1].paths) - moved.read,
                    listed_folders=moved.listed_folders | listing.folders | recorders[1].folders)
    return moved, files


def _without_unit(part: units.Part, entry: str, looked: set, removed: frozenset, old: FileTree, index: TreeIndex,
                  elsewhere: frozenset, settings: Settings, cache: DocumentCache, emptied: bool = False
                  ) -> Optional[tuple]:
    """(the part without the unit of the Kustomization of ``entry``, the files only it read, its
    position) or None; ``looked``: the folders whose listing changes that the environment looked into;
    ``emptied``: it may leave no release (followed again next)."""
    kept: ReleaseFiles = part.kept
    folder = posixpath.dirname(entry)
    if kept is None:
        return None
    mine = [i for i, u in enumerate(kept.units) if u.kustomization is not None
            and (u.kustomization.file, u.kustomization.index) == (entry, 0)]
    found = [i for i, unit in enumerate(kept.units) if unit.path == folder]
    # Another walk reaching the file makes its Kustomization twice (below), or a unit of another
    # name: no need to ask whether one does.
    if len(mine) != 1 or len(found) != 1:
        return None
    at, position = mine[0], found[0]
    walked = unit_builds.walked_again(kept.units[position], old, index, part.environment, cache)
    made = [] if walked is None else [r for r in walked[0].build.resources if r.file == entry]
    if not made or (made[0].namespace, made[0].name) in kept.followed_twice:
        return None  # another of its name would be followed then
    built = unit_builds.followed(part, kept, walked[0], made[0], at, old, index, settings, cache)
    if built is None or built[3].keys:
        return None
    unit, reading, listing, _ = built
    inside = unit.path

    def within(path: str) -> bool:
        return path == inside or path.startswith(inside + "/")

    # What it read and looked at is its own: inside its path, which nothing else of the environment reaches.
    own = reading.paths | listing.paths | listing.folders
    if not all(map(within, own)) or not looked <= {folder} | listing.folders \
            or not part.read.isdisjoint(removed - reading.paths - {entry}) or \
            unit_builds.reached_otherwise(kept, at, inside, old, cache, inside=True):
        return None
    references = sharing.unit_references(unit, old, cache)
    if references and (at != len(kept.units) - 1 or part.references[-1:] != (references,)):
        return None  # references not last in its units'
    gone = [h for h in kept.held if h.unit == at]
    keys = set()  # those of its sources
    for res in unit.build.resources:
        if res.kind == "HelmRelease" and res.api_version.startswith(releases.HELM_API):
            continue
        key = chart_source_key(res)
        if key is None and res.kind in RELEVANT_KINDS or key is not None and (key in kept.repeated or key in elsewhere):
            return None  # an object something else finds, or one another finds in its place then
        if key is not None:
            keys.add(key)
    if any(h.pin < 0 or h.asked for h in gone):
        return None
    ids = {id(h) for h in gone}
    if any(id(h) not in ids and (h.pin < 0 or not keys.isdisjoint(h.uses)) for h in kept.held):
        return None  # a release defined twice may be the one kept then, or one finds a source taken away
    taken = frozenset(reading.paths) | {entry}
    moved = relisted(part, kept, ids, keys, {}, [], taken, set(), emptied)
    if moved is None:
        return None
    return replace(moved.keeping(_removed(moved.kept, at, made[0], taken)),
                   references=part.references[:-1] if references else part.references,
                   listed_paths=moved.listed_paths - listing.paths,
                   listed_folders=moved.listed_folders - listing.folders), taken, at


def _removed(kept: ReleaseFiles, at: int, made, taken: frozenset) -> ReleaseFiles:
    """``kept`` without the unit at ``at`` (its releases and sources let go already)."""
    return replace(_shifted(kept, kept.units[:at] + kept.units[at + 1:], at + 1, -1),
                   followed=kept.followed - {(made.namespace, made.name)}, patch_files=kept.patch_files - taken,
                   source_files=kept.source_files - taken)


def _inserted(kept: ReleaseFiles, at: int, unit: Unit, made) -> ReleaseFiles:
    """``kept`` with ``unit`` (without its resources) at position ``at``."""
    return replace(_shifted(kept, kept.units[:at] + (light(unit),) + kept.units[at:], at, 1),
                   followed=kept.followed | {(made.namespace, made.name)})


def _shifted(kept: ReleaseFiles, units: tuple, first: int, step: int) -> ReleaseFiles:
    """``kept`` with ``units`` in place of its own, those from position ``first`` on moved by
    ``step``: what their releases and sources say of them moved too."""
    held = tuple(h._replace(unit=h.unit + step) if h.unit >= first else h for h in kept.held)
    moved = {id(a): b for a, b in zip(kept.held, held) if a is not b}
    files = {path: tuple(moved.get(id(h), h) for h in hs) for path, hs in kept.files.items()}
    sources = {key: (found[0], found[1] + step) if found is not None and isinstance(found[1], int)
               and found[1] >= first else found for key, found in kept.sources.items()}
    return replace(kept, units=units, held=held, files=files, sources=sources)


def _files_kept(kept: ReleaseFiles, unit: Unit, files: frozenset) -> Optional[ReleaseFiles]:
    """``kept`` with the files the new unit reads as patches only, or as sources only; None when
    it reads a file of its releases otherwise too (neither alone says what it does)."""
    release_files = {h.resource.file for h in kept.held if h.resource.file in files}
    otherwise, patch_files, source_files = files_read([unit], release_files)
    if not release_files.isdisjoint(otherwise):
        return None
    return replace(kept, patch_files=kept.patch_files | patch_files, source_files=kept.source_files | source_files)
