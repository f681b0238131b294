"""Carry an inventory from one commit to another without discovering again, only where it is
proven to be what discovery would find there.

The proof is by construction, not by case. Discovery is a function of the tree's listing and of
the files it reads (``Reading`` records every one). Between two commits with the same listing:
- a file discovery did not read cannot change what it finds, whatever its name or content;
- a file it read must hold pin locations, and its new text must be its old text with only those
  scalars rewritten: every byte outside their one-line tokens the same (so no comment, setter
  marker, key or line moves), each new token one scalar with no ``#`` in it, and the parsed
  documents equal but for those values; a value inside an inline patch must be, byte for byte,
  what Ferry's editor (``editing.set_version``) writes. The values must be read by discovery as
  plain versions (no ``$``; an image reference keeping its repository and taking no digest) at
  lines no refused or unknown pin reads, read by nothing but pins (no ``shared_by``: another
  app, a variable's other uses, a replacement; no setter marker reading it as a repository).
- or a file it read is read alike: discovery reads a file's text through three doors only, its
  documents (``parse_documents``, skipped when the text names no kind discovery looks for), its
  setter markers and its variable references; when all three say the same of both texts (a
  comment, blank lines, indentation or quoting that parse the same), nothing it finds can differ.
Anything else (a file added, removed or renamed, a setter marker, a key, a patch, a resource
list) is not proven: None, and the caller discovers again (only what the commit touched).
Ferry's own commits go through the same proof (``PinCache.derive``), so there is one way an
inventory moves on.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Optional

from yaml import events as ev

from . import editing
from ..errors import FerryError
from ..flux import discovery, images, kustomizations, sharing
from ..flux.kustomize import RELEVANT_KINDS, TreeIndex
from ..flux import units
from ..flux.units import Reading
from ..flux.manifests import FileTree, parse_documents
from ..model import CHART, Pin, PinLocation
from ..safeyaml import events
from ..settings import Settings
from ..versions import is_range


@dataclass(frozen=True)
class Known:
    """What discovery found at one commit, and what it read to find it."""

    pins: tuple  # tuple[Pin, ...], as ``discovery.discover`` orders them
    problems: tuple  # tuple[Problem, ...]: what it could not follow
    read: frozenset  # every path whose content it looked at
    parts: tuple = ()  # the environments' ``units.Part``, for ``rediscover``
    # The commit's listing (``TreeIndex``), for the next rediscovery: the next commit mostly lists
    # the same files. Not part of what was found; the pin cache keeps it at its newest commit only.
    index: object = field(default=None, compare=False, repr=False)
    # (the commit it was carried from, ((pin there, pin here), …)) when carried, else None: the
    # inventory follows a carried commit pin by pin (``inventory.Inventory.carried``).
    carried_from: Optional[tuple] = field(default=None, compare=False, repr=False)

    @cached_property
    def at_file(self) -> dict:
        """{file: the positions in ``pins`` of the pins whose line is in it}: carrying a commit
        looks at the pins of the files it changed, not at the fleet's."""
        found: dict = {}
        for i, pin in enumerate(self.pins):
            if pin.location is not None:
                found.setdefault(pin.location.file, []).append(i)
        return found


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
    ``old``: only the environments the commit touched are built again (``discovery.rediscover``);
    (None, …) when ``known`` has no parts to build on."""
    if not known.parts:
        return None, frozenset()
    parts, rebuilt, index = discovery.rediscover(known.parts, old, new, settings, with_images=True,
                                                 cache=cache, index=known.index)
    if not rebuilt:
        # The same parts; the repository-wide table reads the new listing's files, when it is read.
        read = _reads(parts, new) if any(p.finder_used for p in parts) else known.read
        return replace(known, read=read, index=index), rebuilt
    return Known(discovery.fold(parts, settings), tuple(discovery.problems_of(parts)), _reads(parts, new),
                 parts, index), rebuilt


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
    if changed is None:
        return None
    read = [path for path in changed if path in known.read]  # what discovery never read cannot matter
    if not read:
        return _moved(known, old, known.pins, known.parts, ())
    values: dict = {}  # location -> the text now written there
    for path in read:
        old_text, new_text = old.read(path), new.read(path)
        if _read_alike(old, new, path, old_text, new_text):
            continue
        rewritten = _rewritten([known.pins[i] for i in known.at_file.get(path, ())], old_text, new_text,
                               images.markers(new, path))
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
        found = [_carried(p, values) for p in (part.pins, part.overlay_images, part.release_images)]
        if any(p is None for p in found):
            return None
        parts.append(part.with_pins(*found))
    return _moved(known, old, tuple(pins), tuple(parts), tuple(moves))


def _moved(known: Known, old: FileTree, pins: tuple, parts: tuple, moves: tuple) -> Known:
    """``known`` carried from ``old``'s commit, where ``moves`` are the pins that read another
    version; a new record even when none does, so that each commit says where it came from."""
    carried = replace(known, pins=pins, parts=parts, carried_from=(getattr(old, "commit", None), moves))
    if "at_file" in known.__dict__:  # the same lines at the same positions (made when first needed)
        carried.__dict__["at_file"] = known.__dict__["at_file"]
    return carried


def _read_alike(old: FileTree, new: FileTree, path: str, old_text: str, new_text: str) -> bool:
    """Whether discovery reads the file's two texts alike, door by door (see the module's doc)."""
    return (any(k in old_text for k in RELEVANT_KINDS) == any(k in new_text for k in RELEVANT_KINDS)
            and parse_documents(old_text) == parse_documents(new_text)
            and images.markers(old, path) == images.markers(new, path)
            and sharing.file_references(old, path) == sharing.file_references(new, path))


def _carried(pins: tuple, values: dict) -> Optional[tuple]:
    """``pins`` reading ``values`` (location -> text now written there); None when one reads more."""
    moved = {location.file for location in values}  # a path's hash is cached, a location's is not
    pins = tuple(_with_value(pin, values[pin.location])
                 if pin.location is not None and pin.location.file in moved and pin.location in values
                 else pin for pin in pins)
    return None if any(pin is None for pin in pins) else pins


def _rewritten(pins: list, old_text: str, new_text: str, marked: dict) -> Optional[dict]:
    """``{location: new text}`` when ``new_text`` is ``old_text`` with only the scalars of
    ``pins`` rewritten; else None. ``marked``: the file's setter markers (``images.markers``),
    the same in both texts when only those scalars changed."""
    readers: dict = {}
    for pin in pins:
        readers.setdefault(pin.location, []).append(pin)
    moving = [location for location, at in readers.items()
              if not any(p.refusal or p.unknown for p in at) and not _read_otherwise(location, marked)]
    (old_docs, old_error), (new_docs, new_error) = parse_documents(old_text), parse_documents(new_text)
    if old_error or new_error or len(old_docs) != len(new_docs):
        return None
    values = {}
    for location in moving:
        value = _value(new_docs, location)
        if not isinstance(value, str) or not value or "$" in value:
            return None  # gone, or a substitution expression: discovery reads it another way
        values[location] = value
    if any(location.inner is not None for location in moving) or old_text.startswith("\ufeff"):
        same = _as_ferry_writes(old_text, new_text, values)
    else:
        same = _same_but_tokens(old_text, new_text, moving)
        patched = copy.deepcopy(old_docs)
        same = same and all(_put(patched, location, value) for location, value in values.items()) \
            and patched == new_docs
    if not same:
        return None  # anything else changed: refused pins' lines, comments, keys, …
    return {location: value for location, value in values.items() if value != _value(old_docs, location)}


def _value(docs: list, location):
    """The scalar at ``location`` as discovery reads it (inside the inline patch, for one)."""
    value = _at(docs, location)
    if location.inner is not None and isinstance(value, str):
        return editing.read_version(value, _inner(location))
    return value


def _as_ferry_writes(old_text: str, new_text: str, values: dict) -> bool:
    """Whether Ferry's editor, writing ``values``, makes ``new_text`` of ``old_text``."""
    text = old_text
    for location, value in values.items():
        try:
            text = editing.set_version(text, location, value)
        except FerryError:  # a line the editor refuses to write is no line it wrote
            return False
    return text == new_text


def _same_but_tokens(old_text: str, new_text: str, locations: list) -> bool:
    """Whether the two texts differ only inside the one-line scalar tokens at ``locations``,
    each new token holding no comment."""
    old_spans = sorted(_span(old_text, location) or (-1, -1) for location in locations)
    new_spans = sorted(_span(new_text, location) or (-1, -1) for location in locations)
    if not locations or old_spans[0][0] < 0 or new_spans[0][0] < 0:
        return not locations and old_text == new_text
    old_at = new_at = 0
    for (old_start, old_end), (new_start, new_end) in zip(old_spans, new_spans):
        token = new_text[new_start:new_end]
        if old_text[old_at:old_start] != new_text[new_at:new_start] or "#" in token:
            return False
        old_at, new_at = old_end, new_end
    return old_text[old_at:] == new_text[new_at:]


def _span(text: str, location) -> Optional[tuple]:
    """(start, end) of the scalar written at ``location`` when it is one plain or quoted token on
    one line, not an anchor or an alias, and written there once; else None."""
    document, stack, found = -1, [], None
    try:
        for event in events(text):
            kind = type(event)
            if kind is ev.DocumentStartEvent:
                document, stack = document + 1, []
                continue
            if document != location.document:
                continue
            if kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                stack.pop()
                continue
            if kind not in (ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent, ev.AliasEvent):
                continue
            path = _node_path(stack, event)
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                stack.append([kind is ev.MappingStartEvent, path, _KEY if kind is ev.MappingStartEvent else 0])
            elif path == location.path:
                plain_or_quoted = kind is ev.ScalarEvent and (event.style or "") in ("", "'", '"')
                if found is not None or not plain_or_quoted or event.anchor \
                        or event.start_mark.line != event.end_mark.line:
                    return None
                found = (event.start_mark.index, event.end_mark.index)
    except Exception:  # not YAML: no token to find
        return None
    return found


_KEY, _COMPLEX = object(), object()  # a mapping waiting for its next key; a key that is no scalar


def _node_path(stack: list, event) -> Optional[tuple]:
    """The path of the node ``event`` starts (None inside a key), moving its parent on."""
    if not stack:
        return ()
    frame = stack[-1]
    mapping, parent, at = frame
    if not mapping:
        frame[2] += 1
        return None if parent is None else parent + (at,)
    if at is _KEY:  # this node is a key
        frame[2] = event.value if type(event) is ev.ScalarEvent else _COMPLEX
        return None
    frame[2] = _KEY
    return None if parent is None or at is _COMPLEX else parent + (at,)


def _inner(location):
    return PinLocation(location.file, location.inner[0], location.inner[1])


def _at(docs: list, location):
    node = docs[location.document] if location.document < len(docs) else None
    for step in location.path:
        if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return None
    return node


def _put(docs: list, location, value: str) -> bool:
    """Write ``value`` at ``location`` (a scalar of the documents themselves)."""
    *parents, last = location.path
    holder = _at(docs, PinLocation(location.file, location.document, tuple(parents)))
    if not (isinstance(holder, dict) and last in holder
            or isinstance(holder, list) and isinstance(last, int) and 0 <= last < len(holder)):
        return False
    holder[last] = value
    return True


def _read_otherwise(location, marked: dict) -> bool:
    """A setter marker makes the line more than a version: an image's repository or digest."""
    return location.inner is None and any(
        path == location.path and kind not in ("tag", "") for path, kind in marked.get(location.document, ()))


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
