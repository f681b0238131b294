"""Carry an inventory from one commit to another without discovering again, only where it is
proven to be what discovery would find there.

The proof is by construction, not by case. Discovery is a function of the tree's listing and of
the files it reads (``Reading`` records every one). Between two commits with the same listing:
- a file discovery did not read cannot change what it finds, whatever its name or content;
- a file it read must hold pin locations, and its new text must be its old text with only those
  scalars rewritten (``rewrites``: no comment, setter marker, key or line moves; a value in an
  inline patch written as Ferry's editor writes it). The values must be read by discovery as
  plain versions (no ``$``; an image reference keeping its repository and taking no digest) at
  lines no refused or unknown pin reads, read by nothing but pins (no ``shared_by``: another
  app, a variable's other uses, a replacement; no setter marker reading it as a repository).
- or a file it read is read alike: discovery reads a file's text through three doors only, its
  documents (``parse_documents``, skipped when the text names no kind discovery looks for), its
  setter markers and its variable references; when all three say the same of both texts (a
  comment, blank lines, indentation or quoting that parse the same), nothing it finds can differ.
Anything else (a file added, removed or renamed, a setter marker, a key, a patch, a resource
list) is not carried: None. ``follow`` then tries its steps in turn, each reading again on their
own only what a proof of ``flux`` says is enough (a label, an app, a team added, taken away or
moved, a patch, an `images:` entry, a variable, a squash of those: each step's doc names its
proof); else it builds again the environments the commit touched (``rediscover``). Pins then move in place when
the fold across environments reads them alike, or the fold reads again only those it may read
otherwise (``discovery.refold``): never the fleet.
Ferry's own commits go through the same proof (``PinCache.derive``): one way an inventory moves on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Optional

from . import rewrites
from ..flux import (discovery, flux_patches, image_lists, images, kustomizations, patch_lists, release_files,
                    resource_lists, sharing, split_commits, unit_lists, units, variable_lists, variable_values)
from ..flux.kustomize import RELEVANT_KINDS
from ..flux.tree_index import TreeIndex
from ..flux.units import Reading
from ..flux.manifests import DEFAULT_CACHE, FileTree
from ..model import CHART, Pin
from ..settings import Settings
from ..versions import is_range


@dataclass(frozen=True)
class Known:
    """What discovery found at one commit, and what it read to find it."""

    pins: tuple  # tuple[Pin, ...], as ``discovery.discover`` orders them
    problems: tuple  # tuple[Problem, ...]: what it could not follow
    # every path whose content it looked at; None once let go (``let_go``): nothing is followed
    # from here then, discovery starts again
    read: Optional[frozenset]
    parts: tuple = ()  # the environments' ``units.Part``, for ``rediscover``
    # The commit's listing (``TreeIndex``), for the next rediscovery: the next commit mostly lists
    # the same files. Not part of what was found; the pin cache keeps it at its newest commit only.
    index: object = field(default=None, compare=False, repr=False)
    # (the commit it moved from, ((pin there, pin here), …), (pins gone, pins anew) or None) when
    # the inventory can follow it from there: pins moved in place (carried, read again, or built
    # again the same to the fold) where what each app is tracked by stands (``Inventory.carried``),
    # then the pins the fold made anew in place of those gone (``Inventory.spliced``); else None.
    carried_from: Optional[tuple] = field(default=None, compare=False, repr=False)

    def let_go(self) -> "Known":
        """This, without what only following a commit from here needs (what was read, the parts,
        the listing, the indexes of its pins): its pins and where they came from stay."""
        return replace(self, read=None, parts=(), index=None)

    @cached_property
    def at_file(self) -> dict:
        """{file: the positions in ``pins`` of the pins whose line is in it}: carrying a commit
        looks at the pins of the files it changed, not at the fleet's."""
        found: dict = {}
        for i, pin in enumerate(self.pins):
            if pin.location is not None:
                found.setdefault(pin.location.file, []).append(i)
        return found

    @cached_property
    def at_release(self) -> dict:
        """{(environment, release file): the positions in ``pins`` of its releases' pins}: a
        release read again finds its pins without a walk over the fleet."""
        found: dict = {}
        for i, pin in enumerate(self.pins):
            found.setdefault((pin.environment, pin.release_file), []).append(i)
        return found


def follow(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Known:
    """What discovery finds in ``new``, from ``known``, found in ``old``, the cheapest way proven:
    carried (a version, a file read alike), files of HelmReleases read again on their own, or the
    environments the commit touched built again."""
    found = carry_forward(known, old, new)
    for step in (reread, relist, reunit, repatch, reimage, revalue, refollow, in_steps):
        if found is None:
            found = step(known, old, new, settings, cache)
    return found if found is not None else rediscover(known, old, new, settings, cache)[0]


def discover(tree: FileTree, settings: Settings, environments: Optional[Iterable] = None,
             cache=None) -> Known:
    """Discovery of ``environments`` in ``tree`` (chart versions and image tags), with its reads;
    ``cache``: the ``DocumentCache`` to parse through (default: the process's)."""
    reading, index = Reading(tree), TreeIndex(tree.files())
    parts = discovery.discover_parts(reading, settings, environments, with_images=True, cache=cache,
                                     index=index)
    return Known(discovery.fold(parts, settings), tuple(discovery.problems_of(parts)),
                 frozenset(reading.paths), parts, index)


def rediscover(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> tuple:
    """(what discovery finds in ``new``, the environments built again), from ``known``, found in
    ``old``: only the environments the commit touched are built again (``discovery.rediscover``),
    and their pins move in place when the fold across environments reads them alike; (None, …)
    when ``known`` has no parts to build on."""
    if not known.parts:
        return None, frozenset()
    parts, rebuilt, index = discovery.rediscover(known.parts, old, new, settings, with_images=True,
                                                 cache=cache, index=known.index)
    if not rebuilt:
        # The same parts; the repository-wide table reads the new listing's files, when it is read.
        read = _reads(parts, new) if any(p.finder_used for p in parts) else known.read
        return replace(_moved(known, old, known.pins, parts, ()), read=read, index=index), rebuilt
    problems, read = tuple(discovery.problems_of(parts)), _reads(parts, new)
    moved = _folded_alike(known, parts)
    if moved is not None:  # what crosses environments stands: the pins move in place
        found = _fold_moved(known, old, parts, moved)
        if found is not None:
            return replace(found, problems=problems, read=read, index=index), rebuilt
    return _refolded(known, old, parts, problems, read, index, settings), rebuilt


def reread(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit changed only files of HelmReleases that
    each environment reading them reads again on its own (``release_files``); else None."""
    if known.read is None:
        return None
    found = release_files.reread(known.parts, old, new, settings, cache if cache is not None else DEFAULT_CACHE)
    return None if found is None else _fold_moved(known, old, *found)


def revalue(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only gave variables of ConfigMaps units
    substitute from other values (``variable_values``), or defined them anew or no more
    (``variable_lists``), the releases naming them read again on their own; else None."""
    if known.read is None:
        return None
    found = variable_values.revalue(known.parts, old, new, settings, cache if cache is not None else DEFAULT_CACHE)
    if found is not None:
        return _fold_moved(known, old, *found)
    return _made_again(variable_lists.redefine, known, old, new, settings, cache)


def relist(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only grew or shrank kustomizations'
    `resources:` by files of HelmReleases that each environment reads on their own
    (``resource_lists``: an app added or taken away); else None."""
    return _made_again(resource_lists.relist, known, old, new, settings, cache)


def reunit(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only added a Flux Kustomization and what
    it applies, or took them away: its unit built on its own (``unit_lists``: a team); else None."""
    return _made_again(unit_lists.reunit, known, old, new, settings, cache)


def refollow(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only changed what a Flux Kustomization builds
    (its path…): its unit let go and followed again on its own (``unit_lists``: a team moved); else None."""
    return _made_again(unit_lists.refollow, known, old, new, settings, cache)


def repatch(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only changed kustomizations' patches (and
    added or removed their patch files), or Flux Kustomizations' own, the releases they select read
    again on their own in each environment (``patch_lists``, ``flux_patches``: a patch added,
    edited or taken away); else None."""
    found = _made_again(patch_lists.repatch, known, old, new, settings, cache)
    return found if found is not None else _made_again(flux_patches.repatch, known, old, new, settings, cache)


def reimage(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit only changed kustomizations' `images:`, each
    environment's kustomize image pins made again from its builds (``image_lists``); else None."""
    return _made_again(image_lists.reimage, known, old, new, settings, cache)


def in_steps(known: Known, old: FileTree, new: FileTree, settings: Settings, cache=None) -> Optional[Known]:
    """What discovery finds in ``new`` when the commit is of several kinds (a squash-merged pull
    request), followed one kind at a time (``split_commits``); else None."""
    return _made_again(split_commits.in_steps, known, old, new, settings, cache)


def _made_again(step, known: Known, old: FileTree, new: FileTree, settings: Settings, cache) -> Optional[Known]:
    """``known`` followed to ``new`` by ``step`` (the parts, what discovery reads and the listing,
    made again from those of ``old``, or None), folded again where they differ."""
    if known.read is None:
        return None
    found = step(known.parts, known.read, old, new, known.index, settings,
                 cache if cache is not None else DEFAULT_CACHE)
    if found is None:
        return None
    parts, read, index, *moved = found
    moves = ()
    if moved and moved[0]:
        known, moves = _relocated(known, moved[0])
        if known is None:
            return None
    return _refolded(known, old, parts, known.problems, read, index, settings, moves)


def _relocated(known: Known, places: dict) -> tuple:
    """(``known`` with the pins written in patches that only moved in their lists located where
    they are now, ((pin before, after), …) of those it folded), or (None, ()): a patch added first
    in a list of thousands moves their lines, and the fold reads a line's pins alike wherever it is
    (by the line, never by where it is), so they move in place, not folded again."""
    parts = tuple(patch_lists.relocated_part(part, places) for part in known.parts)
    if any(part is None for part in parts):
        return None, ()
    place = patch_lists.relocation(places)
    pins, moves = list(known.pins), []
    for i in sorted(i for path in {path for path, _, _ in places} for i in known.at_file.get(path, ())):
        after = place(pins[i].location)
        if after is not None:
            moves.append((pins[i], replace(pins[i], location=after)))
            pins[i] = moves[-1][1]
    return replace(known, pins=tuple(pins), parts=parts), tuple(moves)


def _refolded(known: Known, old: FileTree, parts: tuple, problems: tuple, read: frozenset, index,
              settings: Settings, moves: tuple = ()) -> Known:
    """``known`` at ``parts``, folded again where the fold may read otherwise (the pins of the apps
    and lines they changed), the inventory following it by those apps' pins (after ``moves``)."""
    pins, gone, anew = discovery.refold(known.parts, known.pins, parts, settings)
    return Known(pins, problems, read, parts, index, carried_from=(getattr(old, "commit", None), moves, (gone, anew)))


def _folded_alike(known: Known, parts: tuple) -> Optional[list]:
    """((part pin before, after), …) when each part built again holds as many pins as before, each
    the same to the fold across environments (``units.FOLDED``, with the variables, variable
    references and replacement sources it reads); else None."""
    moves = []
    for before, after in zip(known.parts, parts):
        if after is before:
            continue
        if (before.variables, before.references, before.replacement_sources) != \
                (after.variables, after.references, after.replacement_sources):
            return None
        for was, now in ((before.pins, after.pins), (before.overlay_images, after.overlay_images),
                         (before.release_images, after.release_images)):
            if len(was) != len(now) or not all(units.folds_alike(a, b) for a, b in zip(was, now)):
                return None
            moves.extend((a, b) for a, b in zip(was, now) if a != b)
    return moves


def _fold_moved(known: Known, old: FileTree, parts: tuple, part_moves) -> Optional[Known]:
    """``known`` at ``parts``, where each of ``part_moves`` (a part's pin before, after) keeps what
    the fold across environments reads: each takes the fold's answer it had (its app as named,
    what shares its line) at the place it had, and nothing else moves. None when a pin's place is
    not one."""
    pins, moves = list(known.pins), []
    for before, after in part_moves:
        places = [i for i in known.at_release.get((before.environment, before.release_file), ())
                  if _folded_from(pins[i], before)]
        if len(places) != 1:
            return None
        folded = pins[places[0]]
        pins[places[0]] = replace(after, app=folded.app, shared_with=folded.shared_with,
                                  shared_by=folded.shared_by)
        moves.append((folded, pins[places[0]]))
    carried = _moved(known, old, tuple(pins), parts, tuple(moves))
    if not all(_tracked_alike(before, after) for before, after in moves):
        # What an app is tracked by may change: the inventory is made again, not moved pin by pin.
        carried = replace(carried, carried_from=None)
    return carried


def _folded_from(folded: Pin, pin: Pin) -> bool:
    """Whether the fold made ``folded`` of the part's ``pin`` (it names clashing apps
    ``namespace/name`` and says what shares their line)."""
    return (folded.part == pin.part and folded.namespace == pin.namespace and folded.location == pin.location
            and folded.app.rsplit("/", 1)[-1] == pin.app)


def _tracked_alike(before: Pin, after: Pin) -> bool:
    """Whether ``images.tracked`` reads the two alike (the rest it reads, the fold kept)."""
    return (before.refusal, before.unknown, before.version is None) == \
        (after.refusal, after.unknown, after.version is None)


def _reads(parts: tuple, tree: FileTree) -> frozenset:
    """What discovery reads in ``tree``: each environment's files, and the repository-wide table's
    when an environment looked anything up there (it reads every file it might hold)."""
    read = frozenset().union(*(part.read for part in parts))
    if any(part.finder_used for part in parts):
        read |= frozenset(path for path in tree.files() if kustomizations.in_table(path))
    return read


def changed_files(old: FileTree, new: FileTree) -> Optional[list]:
    """The paths whose content differs, or None when the listings differ (a file added, removed
    or renamed: which files discovery reads may change)."""
    change = units.change(old, new)
    return None if change.listed else sorted(change.changed)


def carry_forward(known: Known, old: FileTree, new: FileTree) -> Optional[Known]:
    """What discovery finds in ``new``, from what it found in ``old``; None when not proven. The
    work is the changed files' (their pins found by ``Known.at_file``), not the fleet's."""
    changed = changed_files(old, new)
    if changed is None or known.read is None:
        return None
    read = [path for path in changed if path in known.read]  # what discovery never read cannot matter
    if not read:
        return _moved(known, old, known.pins, known.parts, ())
    values: dict = {}  # location -> the text now written there
    for path in read:
        old_text, new_text = old.read(path), new.read(path)
        # Parsed once, through the cache: the steps after this one read the new text too.
        parsed = DEFAULT_CACHE.get(old, path), DEFAULT_CACHE.get(new, path)
        if _read_alike(old, new, path, old_text, new_text, parsed):
            continue
        rewritten = rewrites.rewritten([known.pins[i] for i in known.at_file.get(path, ())], old_text, new_text,
                                       images.markers(new, path), parsed)
        if rewritten is None:
            return None
        values.update(rewritten)
    if not values:  # only lines that read the same (quoting, a refused pin's unchanged line)
        return _moved(known, old, known.pins, known.parts, ())
    pins, moves = list(known.pins), []
    for path in {location.file for location in values}:
        for i in known.at_file.get(path, ()):
            before = pins[i]
            if before.location in values:
                after = _with_value(before, values[before.location])
                if after is None:
                    return None
                pins[i] = after
                moves.append((before, after))
    # Each environment's part reads the same lines before anything across environments is decided.
    moved = {after.environment for _, after in moves}
    parts = []
    for part in known.parts:
        if part.environment not in moved:
            parts.append(part)
            continue
        held = (part.pins, part.overlay_images, part.release_images)
        found = [_carried(p, values) for p in held]
        if any(p is None for p in found):
            return None
        locations = {before.location for group, now in zip(held, found)
                     for before, after in zip(group, now) if after is not before}
        kept = part.kept
        if kept is not None and locations:
            kept = release_files.after_versions(kept, locations, old, new, DEFAULT_CACHE)
        parts.append(part.with_pins(*found, kept))
    return _moved(known, old, tuple(pins), tuple(parts), tuple(moves))


def _moved(known: Known, old: FileTree, pins: tuple, parts: tuple, moves: tuple) -> Known:
    """``known`` carried from ``old``'s commit, where ``moves`` are the pins that read another
    version; a new record even when none does, so that each commit says where it came from."""
    carried = replace(known, pins=pins, parts=parts, carried_from=(getattr(old, "commit", None), moves, None))
    for index in ("at_file", "at_release"):  # the same lines at the same positions (made when first needed)
        if index in known.__dict__:
            carried.__dict__[index] = known.__dict__[index]
    return carried


def _read_alike(old: FileTree, new: FileTree, path: str, old_text: str, new_text: str, parsed: tuple) -> bool:
    """Whether discovery reads the file's two texts alike, door by door (see the module's doc);
    ``parsed``: their documents (``DocumentCache.get``)."""
    before, after = parsed
    return (any(k in old_text for k in RELEVANT_KINDS) == any(k in new_text for k in RELEVANT_KINDS)
            and (before.docs, before.error) == (after.docs, after.error)
            and images.markers(old, path) == images.markers(new, path)
            and sharing.file_references(old, path) == sharing.file_references(new, path))


def _carried(pins: tuple, values: dict) -> Optional[tuple]:
    """``pins`` reading ``values`` (location -> text now written there); None when one reads more."""
    moved = {location.file for location in values}  # a path's hash is cached, a location's is not
    pins = tuple(_with_value(pin, values[pin.location])
                 if pin.location is not None and pin.location.file in moved and pin.location in values
                 else pin for pin in pins)
    return None if any(pin is None for pin in pins) else pins


def _with_value(pin: Pin, written: str) -> Optional[Pin]:
    """``pin`` reading ``written`` at its line, as discovery reads it; None when it reads more."""
    if pin.shared_by:
        return None  # the line feeds more than this pin: other apps, a variable's other uses, …
    if pin.written_prefix:  # `repo:tag` in one string: the repository stays, a tag and no digest
        _, tag, digest = images.split_reference(written)
        if digest or not tag or written[:len(written) - len(tag)] != pin.written_prefix:
            return None
        return replace(pin, version=tag)
    if pin.is_image and "@" in written:
        return None  # a tag written with its digest: discovery refuses that line, never carries it
    return replace(pin, version=written, is_range=pin.part == CHART and is_range(written))
