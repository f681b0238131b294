"""A kustomization's `resources:` grown or shrunk by files of HelmReleases, or grown by a folder
(an app added to an environment, or taken away; an app's base listed by one more overlay): those
releases read, or let go, on their own inside the build that lists them, so that an app added
costs the app, not a build of its environment.

The proof is by construction, as ``release_files``'. Kustomize reads a kustomization's entries in
order, each file's objects given the kustomization's route (its scopes, namespace and names:
``kustomize.resource``); nothing in a build looks a HelmRelease up. A commit may change
kustomization files and add or remove files when, for each environment reading them:
- the kustomization is walked once, as its folder's kustomization (the one kustomize finds there
  first), with no `bases:` or `components:`; its documents are equal but for its `resources:`,
  whose entries it keeps in the same order; the files added or taken away are entries of its
  folder (kustomize reads that folder only through the kustomization), or of a subfolder no
  environment looked into (its listing changes), not named as one;
- a file added parses, holds HelmReleases and chart sources only (no Kustomization, no
  GitRepository: what ``kustomizations`` follows stands), names no `${VAR}` (a variable's uses
  stand), was neither read nor looked for by the environment before; its sources have keys no
  source of the environment has and no environment looked for elsewhere (what other releases
  find stands); each of its releases is read as discovery reads it (the unit's patches and
  variables, a source its environment found at its last build or this file holds) with a name no
  other release of the environment has;
- a folder added is walked on its own as the build walks it there (``folder_entries``: no
  problem, no replacement, no `images:`, no `${VAR}`); its objects are HelmReleases and chart
  sources as above (an object the environment builds already, which kustomize would merge with
  it, has a name or key taken), or of kinds discovery never reads; what it looked for joins what
  the environment looked for; the files the commit adds under it change the listing of folders no
  environment looked into before;
- a file taken away was read as those releases and chart sources only, each once through this
  kustomization; its releases looked for nothing outside their environment's builds; no release
  left finds its sources (``HeldRelease.uses``), no other source of the environment has their
  keys, no environment looked for them elsewhere; no release is defined twice (which one is kept
  would move) and one is left;
- a folder taken away is walked again as the build walked it (``folder_entries.taken_away``):
  everything it read or looked for is inside it, and no other kustomization or unit of the
  environment names a path inside it or above it, so what it read and looked for goes with it
  (its kustomizations and their patches too); what it made is as a file taken away must be;
- no environment looked up what the changed files hold, none walks the whole listing or looked
  for a path the commit adds or removes, and the rest of the commit touches none
  (``units.Part.touched``).
The releases' pins take their place in build order: after the releases of the entries before
theirs in the kustomization's list (before those after it when none is before); the environment's
other pins, problems, sources and lookups stand. Else None: the environment is built again.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import folder_entries, releases, sharing, units
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS, join_path, resource
from .manifests import DocumentCache, FileTree
from .chart_sources import chart_source_key
from .held_releases import Answers, HeldRelease, ReleaseFiles, reached, read_release
from .kustomization_edits import folders_between, listed_entries, walked_once
from .tree_index import TreeIndex
from ..settings import Settings


def relist(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
           settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from ``parts`` and
    ``read``, those of ``old`` (whose listing is ``index``), when the commit changes
    kustomizations' `resources:` by files of HelmReleases only (see the module's doc); else None."""
    change = units.change(old, new)
    if index is None or not change.changed or \
            any(posixpath.basename(path) not in KUSTOMIZATION_FILES for path in change.changed):
        return None
    edits = {}  # kustomization -> (its entries before, after)
    for kfile in change.changed:
        found = listed_entries(kfile, old, new, cache)
        if found is None:
            return None
        edits[kfile] = found
    after = index.moved(change.added, change.removed)
    added, taken, between = set(), set(), set()
    for kfile, (before, entries) in edits.items():
        folder = posixpath.dirname(kfile)
        came = {join_path(folder, e) for e in set(entries) - set(before)}
        went = {join_path(folder, e) for e in set(before) - set(entries)}
        # A file entry in a subfolder (`team-a/web.yaml`): no environment may have looked into the
        # folders between it and its kustomization (their listings change when it comes or goes).
        for path in (came & after.files) | (went & index.files):
            sub = folders_between(folder, path)
            if sub is None:
                return None  # a file of another folder: its listing is another's
            between |= sub
        added |= came
        taken |= went
    listed = added | taken
    # The files of a folder listed anew that the commit adds: the folder's listing, and those of
    # the folders around it, change; no environment may have looked there before.
    within = frozenset(path for path in change.added for folder in added - after.files
                       if path.startswith(folder + "/"))
    around = units.Change(frozenset(), within, frozenset()).folders
    # The files of a folder taken away that the commit removes: only the walk through that entry
    # read them or looked there (``folder_entries.taken_away``), or another environment (below).
    gone = frozenset(path for path in change.removed for folder in taken - index.files
                     if path.startswith(folder + "/"))
    rest = units.Change(frozenset(), frozenset(change.added - listed - within),
                        frozenset(change.removed - listed - gone))
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    elsewhere = frozenset().union(*(p.looked_up for p in parts))
    done, came, went = [], set(added & after.files), set()
    for part in parts:
        if part.listed_everything or not part.listed_paths.isdisjoint(change.listed) or \
                not part.looked_up.isdisjoint(keys) or (rest and part.touched(rest, keys)) or \
                not part.listed_folders.isdisjoint(around) or not part.listed_folders.isdisjoint(between):
            return None
        mine = sorted(kfile for kfile in edits if kfile in part.read)
        if not mine:
            if not part.read.isdisjoint(change.removed) or not part.read.isdisjoint(added):
                return None  # it reads such a file otherwise
            done.append(part)
            continue
        found = _relist_part(part, {k: edits[k] for k in mine}, old, new, index, after, change, elsewhere,
                             settings, cache)
        if found is None:
            return None
        done.append(found[0])
        came |= found[1]
        went |= found[2]
    done = tuple(done)
    return done, units.reads_after(read, done, change, came, taken | went), after


def _relist_part(part: units.Part, edits: dict, old: FileTree, new: FileTree, index: TreeIndex, after: TreeIndex,
                 change: units.Change, elsewhere: frozenset, settings: Settings, cache: DocumentCache
                 ) -> Optional[tuple]:
    """(the part with the files its kustomizations (``edits``) list no more let go, then the files
    and folders they list anew read; the files it reads anew) or None; ``elsewhere``: every key
    an environment looked for outside its builds."""
    kept: ReleaseFiles = part.kept
    if kept is None:
        return None
    routes = []  # (its unit's position, its route, where its releases are, entries before, after, it)
    gone, gone_keys, taken = set(), set(), set()  # id() of the HeldReleases, keys of the sources
    folders = []  # (unit position, folder_entries.Gone) of each folder taken away
    for kfile, (before, entries) in edits.items():
        walked = walked_once(kept, kfile, index, change)
        if walked is None:
            return None
        position, chain = walked
        folder = posixpath.dirname(kfile)
        was_listed = set(before)
        out = {join_path(folder, e): e for e in was_listed - set(entries)}
        slots = _slots(kept, position, chain, folder, entries, set(out))
        if slots is None:
            return None
        for path, entry in out.items():
            if path in index.files:
                found = _taken(part, kept, position, chain, path, old, elsewhere, cache)
            else:  # a folder: what its walk made there goes, when that route alone made it
                found = folder_entries.taken_folder(part, kept, position, chain, kfile, entry, old, index, elsewhere,
                                                    cache)
                if found is not None:
                    folders.append((position, found[2]))
            if found is None:
                return None
            gone.update(id(h) for h in found[0])
            gone_keys |= found[1]
        taken |= set(out)
        routes.append((position, chain, slots, was_listed, folder, entries, kfile))
    if gone and any(h.pin < 0 or not gone_keys.isdisjoint(h.uses) for h in kept.held if id(h) not in gone):
        return None  # a release defined twice may be the one kept then, or one finds a source taken away
    names = {(p.namespace, p.app) for p in part.pins} - \
        {(part.pins[h.pin].namespace, part.pins[h.pin].app) for h in kept.held if id(h) in gone}
    more: dict = {}  # the sources the files added hold: key -> (resource, unit position)
    placed = []  # (place in kept.held before which they go, [(HeldRelease, pin, image pins, variable)])
    added, asked, looked, reading = set(), set(), set(), units.Reading(new)
    for position, chain, slots, was_listed, folder, entries, kfile in routes:
        for j, entry in enumerate(entries):
            if entry in was_listed:
                continue
            path = join_path(folder, entry)
            folder_entry = path not in after.files
            if not folder_entry:
                if path in part.read or path in part.listed_paths:
                    return None  # one the environment read or looked for
                resources, files = _file_resources(path, new, chain, cache), {path}
            else:  # a folder: walked on its own, its objects one more app of the environment
                walked = folder_entries.walk(new, after, cache, part.environment, kept.units[position], kfile,
                                             entry, chain)
                if walked is None:
                    return None
                kept = folder_entries.with_walked(kept, position, walked)
                resources, files = walked.resources, walked.read
                asked |= walked.asked
                looked |= walked.folders
            found = None if resources is None else releases_added(part, kept, position, resources, folder_entry, names,
                                                          more, gone_keys, elsewhere, reading, settings, cache)
            at = None if found is None else _place(slots, j)
            if at is None:
                return None
            placed.append((at, found))
            added |= files
    if not reading.paths <= added:
        return None  # a release read another file
    let_go = set()  # what the build kept of the folders taken away, and what their walks looked for, go
    for position, went in folders:
        kept = folder_entries.without(kept, position, went)
        let_go |= went.walked.read
        part = replace(part, listed_paths=part.listed_paths - went.walked.asked,
                       listed_folders=part.listed_folders - went.walked.folders)
    moved = relisted(part, kept, gone, gone_keys, more, placed, taken | let_go, added)
    if moved is None:
        return None
    if asked or looked:  # what walking the folders looked for: a build of the environment does too
        moved = replace(moved, listed_paths=moved.listed_paths | (asked - moved.read),
                        listed_folders=moved.listed_folders | looked)
    return moved, added, let_go


def _file_resources(path: str, new: FileTree, chain: tuple, cache: DocumentCache) -> Optional[list]:
    """The objects of a file listed anew, as the build makes them through ``chain``, when it
    parses, holds documents only mappings, and names no `${VAR}`; else None."""
    parsed = cache.get(new, path, RELEVANT_KINDS)
    if parsed.error or not parsed.docs or sharing.file_references(new, path, cache) or \
            not all(isinstance(doc, dict) for doc in parsed.docs):
        return None
    return [resource(path, i, doc, chain) for i, doc in enumerate(parsed.docs)]


def _taken(part: units.Part, kept: ReleaseFiles, position: int, chain: tuple, path: str, old: FileTree,
           elsewhere: frozenset, cache: DocumentCache) -> Optional[tuple]:
    """(its HeldReleases, the keys of its sources) of a file a kustomization lists no more, when
    the environment read it as those releases and chart sources only, once, through that
    kustomization alone; its releases looked for nothing elsewhere, and no environment looked
    for its sources elsewhere nor do other sources of its environment have their keys; no
    kustomize replacement selects one of them."""
    held = kept.files.get(path)
    if not held or sharing.file_references(old, path, cache):
        return None
    scopes = frozenset(level.scope for level in chain)
    if any(h.unit != position or h.resource.scopes != scopes or h.pin < 0 or h.asked for h in held):
        return None  # read by another route, or it looked a source up elsewhere
    at = {h.resource.index for h in held}
    parsed = cache.get(old, path, RELEVANT_KINDS)
    if len(at) != len(held) or parsed.error:
        return None  # a document made twice, or a problem its build said that would go
    keys = set()
    for i, doc in enumerate(parsed.docs):
        if i in at:
            continue
        key = chart_source_key(resource(path, i, doc, chain)) if isinstance(doc, dict) else None
        if key is None or key in kept.repeated or key in elsewhere:
            return None
        keys.add(key)
    if part.replaced and reached(kept, [(position, res) for res in _file_resources(path, old, chain, cache)]):
        return None  # (what a replacement wrote into one it selected before: it selects that one)
    return held, keys


def _slots(kept: ReleaseFiles, position: int, chain: tuple, folder: str, after: list, taken: set
           ) -> Optional[list]:
    """[(the entry of the kustomization, in ``after``, a held release came by; its place in
    ``kept.held``)] of the releases built through it, in build order, when they are one run of
    the environment's releases in the order of their entries; else None. Releases of files the
    commit takes away have no entry: -1."""
    scope = chain[-1].scope
    at_entry = {join_path(folder, e): i for i, e in enumerate(after)}
    child = {}  # the scope of a kustomization it lists -> that entry
    for kfile, _, inner in kept.units[position].build.kustomizations:
        if len(inner) == len(chain) + 1 and inner[:-1] == chain:
            folder_listed = posixpath.dirname(kfile)
            entry = at_entry.get(folder_listed, -1 if folder_listed in taken else None)
            if entry is None:
                return None
            child[inner[-1].scope] = entry
    scopes = frozenset(level.scope for level in chain)
    slots = []
    for i, h in enumerate(kept.held):
        if h.unit != position or scope not in h.resource.scopes:
            continue
        if h.resource.scopes == scopes:  # a file it lists, or one of a folder it lists that has no kustomization
            entry = at_entry.get(h.resource.file, -1 if h.resource.file in taken else None)
            if entry is None:
                return None
        else:
            entries = {child[s] for s in h.resource.scopes if s in child}
            if len(entries) != 1:
                return None
            entry = entries.pop()
        slots.append((entry, i))
    kept_slots = [s for s in slots if s[0] >= 0]
    if any(b[1] != a[1] + 1 for a, b in zip(slots, slots[1:])) or \
            any(b[0] < a[0] for a, b in zip(kept_slots, kept_slots[1:])):
        return None
    return kept_slots


def _place(slots: list, entry: int) -> Optional[int]:
    """The place in ``kept.held`` before which the releases of ``entry`` go; None when the
    kustomization builds no other release to place them by."""
    before = [i for e, i in slots if e < entry]
    if before:
        return before[-1] + 1
    return next((i for e, i in slots if e > entry), None)


def releases_added(part: units.Part, kept: ReleaseFiles, position: int, resources: list, walked: bool, names: set,
           more: dict, gone_keys: set, elsewhere: frozenset, reading: units.Reading, settings: Settings,
           cache: DocumentCache) -> Optional[list]:
    """[(HeldRelease, pin, image pins, variable)] of the objects of what a kustomization lists
    anew, when they are HelmReleases and chart sources only (keys no source of its environment
    has and none looked for elsewhere; a folder ``walked`` may hold objects of kinds discovery
    never reads too), and each of its releases reads as one more (a new name, sources its
    environment found or these hold); no kustomize replacement selects one of them."""
    if part.replaced and reached(kept, [(position, res) for res in resources]):
        return None  # a replacement would read or write them, or find more than its one source
    made, sources = [], {}
    for res in resources:
        if res.kind == "HelmRelease" and res.api_version.startswith(releases.HELM_API):
            made.append(res)
            continue
        key = chart_source_key(res)
        if key is None and walked and res.kind not in RELEVANT_KINDS:
            continue
        if key is None or key in kept.own and key not in gone_keys or key in more or key in sources or \
                key in elsewhere:
            return None
        sources[key] = (res, position)
    if not made:
        return None
    more.update(sources)
    found = []
    for res in made:
        answers = Answers(kept, more, frozenset(gone_keys))
        read = read_release(part.environment, kept, kept.units[position], res, answers, reading, settings, cache)
        if read is None:
            return None
        pin, image_pins, variable = read
        if (pin.namespace, pin.app) in names or not answers.asked <= part.looked_up:
            return None
        names.add((pin.namespace, pin.app))
        found.append((HeldRelease(position, res, 0, 0, 0, frozenset(answers.asked), tuple(answers.used)),
                      pin, image_pins, variable))
    return found


def relisted(part: units.Part, kept: ReleaseFiles, gone: set, gone_keys: set, more: dict, placed: list, taken: set,
           added: set, emptied: bool = False) -> Optional[units.Part]:
    """The part with the releases ``gone`` and the sources of ``gone_keys`` let go, and those
    ``placed`` and ``more`` taken in, in build order: its pins, their variables and image pins,
    its sources, what it read, and what its builds keep renumbered (``emptied``: it may hold no
    release for now, its unit followed again next)."""
    at = {}
    for place, found in placed:
        at.setdefault(place, []).extend(found)
    pins, variables, images, held = [], [], [], []

    def put(h: HeldRelease, pin, image_pins, variable) -> HeldRelease:
        pins.append(pin)
        variables.append(variable)
        first = len(images)
        images.extend(image_pins)
        return h._replace(pin=len(pins) - 1, first_image=first, end_image=len(images))

    for i, h in enumerate(kept.held + (None,)):
        for new_held, pin, image_pins, variable in at.get(i, ()):
            held.append(put(new_held, pin, image_pins, variable))
        if h is None or id(h) in gone:
            continue
        if h.pin < 0:
            held.append(h)
            continue
        held.append(put(h, part.pins[h.pin], part.release_images[h.first_image:h.end_image], part.variables[h.pin]))
    if not pins and not emptied:
        return None  # no release left: discovery says so, a build must
    files: dict = {}
    for h in held:
        if h.resource.file in kept.files or h.resource.file in added:
            files.setdefault(h.resource.file, []).append(h)
    own = (kept.own - gone_keys) | frozenset(more) if gone_keys or more else kept.own
    sources = {key: found for key, found in kept.sources.items() if key not in gone_keys} if gone_keys \
        else dict(kept.sources)
    sources.update(more)
    relisted = replace(kept, held=tuple(held), files={path: tuple(hs) for path, hs in files.items()}, own=own,
                       sources=sources)
    return replace(part.with_pins(tuple(pins), part.overlay_images, tuple(images), relisted),
                   variables=tuple(variables), read=(part.read - taken) | added, source_keys=own)
