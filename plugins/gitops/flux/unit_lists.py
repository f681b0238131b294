"""A Flux Kustomization added to an environment (`clusters/<env>/team-x.yaml` applying a new
folder of apps): its unit built on its own and its HelmReleases read as more of the environment's,
so that a team added costs the team, not a build of its environment.

The proof is by construction, as ``resource_lists``'. ``kustomizations.build_environment`` follows
an environment's units breadth first: each unit's resources in build order, each Flux
Kustomization among them (by namespace and name, once) made a unit by ``follow_kustomization``
from its document as its parent builds it, the units before it (ConfigMaps, generators) and the
repository (a GitRepository). A commit may add files, and change or remove none, when:
- one of them holds one Flux Kustomization and nothing else, parses and names no `${VAR}`; it is a
  file of a folder ``D`` that one unit of an environment (the parent) walks as its path, and
  nothing else of that environment reaches it (no other unit's path, no kustomization's entry at
  it, at ``D`` or above); the commit adds nothing else under ``D``;
- the parent walked again over ``D`` (with the scope ids it had: its kustomizations say so) makes
  it once; its other objects are as they were, and what they find stands (a Flux Kustomization is
  no source, ConfigMap or generator). Its place among the parent's Flux Kustomizations is its
  unit's among the units the parent made, which keep their order (the parent made one at least);
- its name is none the builds met (``ReleaseFiles.followed``); the ConfigMaps it substitutes from
  are the parent's (a later unit's is not there to find, and the units before it are kept without
  their objects), and its unit is built without a problem (a source not found, an ExternalArtifact
  no generator of the parent makes, a file missing), replacement or kustomize `images:`; it
  substitutes variables only when it comes last (where its references join the environment's);
- its objects are HelmReleases and chart sources, or kinds discovery never reads, read as
  ``resource_lists`` reads an app added (``releases_added``: new names, new source keys no
  environment looked for, sources its environment found or it holds; no Flux Kustomization, so no
  unit of its own, and a path another unit applies makes names taken or no release): they take
  their place in build order, after the units before it; no file of its releases is read as a
  patch or kustomization too (what the builds keep of release files would not hold);
- no environment walks the whole listing, looked for a path the commit adds, into a folder whose
  listing it changes (but ``D``), or up what the added files hold.
Else None: the environment is built again.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import kustomizations, overlay_images, sharing, units
from .held_releases import ReleaseFiles, files_read
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS, Build, ScopeIds, Walker, join_path, strings
from .kustomizations import Finder, Unit, flux_kustomization
from .manifests import YAML_SUFFIXES, DocumentCache, FileTree, dig
from .resource_lists import releases_added, relisted
from .tree_index import TreeIndex
from ..settings import Settings


def reunit(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
           settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from ``parts`` and
    ``read``, those of ``old`` (whose listing is ``index``), when the commit adds a Flux
    Kustomization and what it applies (see the module's doc); else None."""
    change = units.change(old, new)
    if index is None or change.changed or change.removed or not change.added:
        return None
    entries = [path for path in sorted(change.added) if _holds_a_kustomization(new, path, cache)]
    if not entries:
        return None
    entry = entries[0]  # a second one is more for a walk to read, or in a folder of another (below)
    folder = posixpath.dirname(entry)
    if any(path != entry and path.startswith(folder + "/") for path in change.added):
        return None  # more for the parent's walk to read than the Kustomization
    after = index.moved(change.added, ())
    relisted_folders = _listings_changed(index, change.added)
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    elsewhere = frozenset().union(*(p.looked_up for p in parts))
    done, came = [], set()
    for part in parts:
        if part.listed_everything or not part.listed_paths.isdisjoint(change.added) or \
                not part.looked_up.isdisjoint(keys):
            return None
        looked = part.listed_folders & relisted_folders
        if not looked:
            done.append(part)
            continue
        if looked != {folder}:
            return None  # another folder's listing
        found = _with_unit(part, entry, old, new, after, elsewhere, settings, cache)
        if found is None:
            return None
        done.append(found[0])
        came |= found[1]
    done = tuple(done)
    return done, units.reads_after(read, done, change, came, set()), after


def _holds_a_kustomization(tree: FileTree, path: str, cache: DocumentCache) -> bool:
    """Whether ``path`` holds one Flux Kustomization and nothing else, and names no `${VAR}`."""
    if not path.endswith(YAML_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES:
        return False
    parsed = cache.get(tree, path, RELEVANT_KINDS)
    return not parsed.error and len(parsed.docs) == 1 and flux_kustomization(parsed.docs[0]) and \
        not sharing.file_references(tree, path, cache)


def _listings_changed(index: TreeIndex, added) -> set:
    """The folders whose listing (files, subfolders, existence) the added paths change."""
    found = set()
    for path in added:
        folder = posixpath.dirname(path)
        found.add(folder)
        while folder and not index.is_dir(folder):  # a new folder: its parent lists it
            folder = posixpath.dirname(folder)
            found.add(folder)
    return found


def _with_unit(part: units.Part, entry: str, old: FileTree, new: FileTree, after: TreeIndex, elsewhere: frozenset,
               settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the part with the Kustomization of ``entry`` followed as a unit on its own, the files
    its build reads anew) or None; ``elsewhere``: every key an environment looked for outside
    its builds."""
    kept: ReleaseFiles = part.release_files
    folder = posixpath.dirname(entry)
    if kept is None:
        return None
    found = [i for i, unit in enumerate(kept.units) if unit.path == folder]
    if len(found) != 1 or _reached_otherwise(kept, found[0], entry, old, cache):
        return None
    position = found[0]
    parent = _walked_again(kept.units[position], new, after, part.environment, cache)
    if parent is None:
        return None
    parent, recorders = parent
    made = [r for r in parent.build.resources if r.file == entry]
    if not made:
        return None  # not walked as a file of the folder (it has a kustomization)
    made = made[0]  # the one walk reaching it (``_reached_otherwise``) made it once
    at = _place(kept, position, parent, made)
    if at is None or (made.namespace, made.name) in kept.followed:
        return None
    built = _followed(part, kept, parent, made, at, new, after, settings, cache)
    if built is None:
        return None
    unit, reading, listing, lookups = built
    references = sharing.unit_references(unit, new, cache)
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
    release_files = _files_kept(moved.release_files, unit, files)
    if release_files is None:
        return None
    moved = replace(moved, release_files=release_files,
                    references=moved.references + ((references,) if references else ()),
                    looked_up=moved.looked_up | lookups.keys, finder_used=moved.finder_used or bool(lookups.keys),
                    listed_paths=(moved.listed_paths | listing.paths | recorders[1].paths) - moved.read,
                    listed_folders=moved.listed_folders | listing.folders | recorders[1].folders)
    return moved, files


def _reached_otherwise(kept: ReleaseFiles, position: int, entry: str, old: FileTree, cache: DocumentCache) -> bool:
    """Whether anything of the environment but the unit at ``position`` may read ``entry`` (a
    file of the folder that unit walks): another unit's path, or a kustomization's entry, at it,
    at its folder or above."""
    folder = posixpath.dirname(entry)

    def reaches(path: str) -> bool:
        return path in (entry, folder, "") or folder.startswith(path + "/")

    if any(reaches(unit.path) for i, unit in enumerate(kept.units) if i != position):
        return True
    for unit in kept.units:
        for kfile, document, _ in unit.build.kustomizations:
            spec = cache.get(old, kfile).docs[document]
            where = posixpath.dirname(kfile)
            inside = where == folder or reaches(where)  # an entry without `..` stays in its folder
            for key in ("resources", "bases", "components"):
                for item in strings(spec.get(key)):
                    if (inside or ".." in item) and reaches(join_path(where, item)):
                        return True
    return False


def _walked_again(unit: Unit, tree: FileTree, index: TreeIndex, environment: str, cache: DocumentCache
                  ) -> Optional[tuple]:
    """(the unit walked again over its path in ``tree`` with the scope ids it had, (its Reading,
    Listing)) when it makes the kustomizations and patches it made, without a problem; else None."""
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


def _place(kept: ReleaseFiles, position: int, parent: Unit, made) -> Optional[int]:
    """The new unit's position: after the units the parent made of the Flux Kustomizations before
    ``made`` in its resources, before those after (None when the parent made no other)."""
    by_resource = {(u.kustomization.file, u.kustomization.index): i for i, u in enumerate(kept.units)
                   if i > position and u.kustomization is not None}
    order = [(r is made, by_resource.get((r.file, r.index))) for r in parent.build.resources
             if flux_kustomization(r.doc)]
    made_at = [i for i, (mine, _) in enumerate(order) if mine]
    children = [(i, unit) for i, (mine, unit) in enumerate(order) if unit is not None]
    if len(made_at) != 1 or not children or [u for _, u in children] != list(range(children[0][1],
                                                                                   children[0][1] + len(children))):
        return None
    before = [unit for i, unit in children if i < made_at[0]]
    return before[-1] + 1 if before else children[0][1]


def _followed(part: units.Part, kept: ReleaseFiles, parent: Unit, made, at: int, tree: FileTree,
              index: TreeIndex, settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the unit of the Kustomization ``made``, its Reading, Listing, Lookups), followed as the
    environment's build follows it, when that is what a whole build would make (see the module's
    doc); else None."""
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


def _inserted(kept: ReleaseFiles, at: int, unit: Unit, made) -> ReleaseFiles:
    """``kept`` with ``unit`` (without its resources) at position ``at``: the units after it, and
    what their releases and sources say of them, one place further."""
    light = replace(unit, build=Build(patches=unit.build.patches, kustomizations=unit.build.kustomizations))
    held = tuple(h._replace(unit=h.unit + 1) if h.unit >= at else h for h in kept.held)
    moved = {id(a): b for a, b in zip(kept.held, held) if a is not b}
    files = {path: tuple(moved.get(id(h), h) for h in hs) for path, hs in kept.files.items()}
    sources = {key: (found[0], found[1] + 1) if found is not None and isinstance(found[1], int) and found[1] >= at
               else found for key, found in kept.sources.items()}
    grown = replace(kept, units=kept.units[:at] + (light,) + kept.units[at:], held=held, files=files, sources=sources,
                    followed=kept.followed | {(made.namespace, made.name)})
    if "by_name" in kept.__dict__:
        grown.__dict__.pop("by_name", None)
    return grown


def _files_kept(kept: ReleaseFiles, unit: Unit, files: frozenset) -> Optional[ReleaseFiles]:
    """``kept`` with the files the new unit reads as patches only, or as sources only; None when
    it reads a file of its releases otherwise too (neither alone says what it does)."""
    release_files = {h.resource.file for h in kept.held if h.resource.file in files}
    otherwise, patch_files, source_files = files_read([unit], release_files)
    if not release_files.isdisjoint(otherwise):
        return None
    return replace(kept, patch_files=kept.patch_files | patch_files, source_files=kept.source_files | source_files)
