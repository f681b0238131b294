"""Carry an inventory from one commit to another without discovering again, only where it is
proven to be what discovery would find there.

The proof is by construction, not by case. Discovery is a function of the tree's listing and of
the files it reads (``Reading`` records every one). Between two commits with the same listing:
- a file discovery did not read cannot change what it finds, whatever its name or content;
- a file it read must hold pin locations, and its new text must be, byte for byte, its old text
  with those scalars rewritten by the editor Ferry writes with (``editing.set_version``), to
  values discovery reads as plain versions (no ``$``; an image reference keeping its repository
  and taking no digest) at lines no refused, unknown or otherwise-used pin reads.
Anything else (a file added, removed or renamed, a comment or a setter marker, a key, a patch, a
resource list) is not proven: None, and the caller discovers again. Ferry's own commits go
through the same proof (``PinCache.derive``), so there is one way an inventory moves on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Optional

from . import editing
from ..errors import NotEditable
from ..flux import discovery, images
from ..flux.manifests import FileTree
from ..model import CHART, Pin
from ..settings import Settings
from ..versions import is_range


@dataclass(frozen=True)
class Known:
    """What discovery found at one commit, and what it read to find it."""

    pins: tuple  # tuple[Pin, ...], as ``discovery.discover`` orders them
    problems: tuple  # tuple[Problem, ...]: what it could not follow
    read: frozenset  # every path whose content it looked at


class Reading:
    """A ``FileTree`` that notes every path whose content (or identity) is asked for."""

    def __init__(self, tree: FileTree):
        self._tree = tree
        self.paths: set = set()

    def files(self) -> list[str]:
        return self._tree.files()

    def read(self, path: str) -> str:
        self.paths.add(path)
        return self._tree.read(path)

    def blob_id(self, path: str) -> str:
        self.paths.add(path)
        return self._tree.blob_id(path)


def discover(tree: FileTree, settings: Settings, environments: Optional[Iterable] = None) -> Known:
    """Discovery of ``environments`` in ``tree`` (chart versions and image tags), with its reads."""
    reading = Reading(tree)
    problems: list = []
    pins = discovery.discover(reading, settings, environments, warnings=problems, with_images=True)
    return Known(pins, tuple(problems), frozenset(reading.paths))


def changed_files(old: FileTree, new: FileTree) -> Optional[list]:
    """The paths whose content differs, or None when the listings differ (a file added, removed
    or renamed: which files discovery reads may change)."""
    old_files, new_files = old.files(), new.files()
    if old_files != new_files:
        return None
    return [path for path in new_files if old.blob_id(path) != new.blob_id(path)]


def carry_forward(known: Known, old: FileTree, new: FileTree) -> Optional[Known]:
    """What discovery finds in ``new``, from what it found in ``old``; None when not proven."""
    changed = changed_files(old, new)
    if changed is None:
        return None
    by_file: dict = {}
    for pin in known.pins:
        if pin.location is not None:
            by_file.setdefault(pin.location.file, []).append(pin)
    values: dict = {}  # location -> the text now written there
    for path in changed:
        if path not in known.read:
            continue  # discovery never looked at it
        rewritten = _rewritten(by_file.get(path, ()), old.read(path), new.read(path),
                               images.markers(new, path))
        if rewritten is None:
            return None
        values.update(rewritten)
    pins = []
    for pin in known.pins:
        if pin.location in values:
            pin = _with_value(pin, values[pin.location])
            if pin is None:
                return None
        pins.append(pin)
    return replace(known, pins=tuple(pins))


def _rewritten(pins: list, old_text: str, new_text: str, marked: dict) -> Optional[dict]:
    """``{location: new text}`` when ``new_text`` is ``old_text`` with only the scalars of
    ``pins`` rewritten as Ferry's editor writes them; else None. ``marked``: the file's setter
    markers (``images.markers``), the same in both texts when only scalars changed."""
    readers: dict = {}
    for pin in pins:
        readers.setdefault(pin.location, []).append(pin)
    text, values = old_text, {}
    for location, at in readers.items():
        if any(p.refusal or p.unknown for p in at) or _read_otherwise(location, marked):
            continue  # not a line Ferry moves: it must stay as it was (the byte check below)
        value = editing.read_version(new_text, location)
        if value is None or "$" in value:
            return None  # gone, or a substitution expression: discovery reads it another way
        try:
            text = editing.set_version(text, location, value)
        except NotEditable:
            return None
        if value != editing.read_version(old_text, location):
            values[location] = value
    return values if text == new_text else None


def _read_otherwise(location, marked: dict) -> bool:
    """A setter marker makes the line more than a version: an image's repository or digest."""
    return location.inner is None and any(
        path == location.path and kind not in ("tag", "") for path, kind in marked.get(location.document, ()))


def _with_value(pin: Pin, written: str) -> Optional[Pin]:
    """``pin`` reading ``written`` at its line, as discovery reads it; None when it reads more."""
    if pin.kind == "substitute" and pin.shared_by:
        return None  # the variable feeds other readers too: names, values, other apps
    if pin.written_prefix:  # `repo:tag` in one string: the repository stays, a tag and no digest
        _, tag, digest = images.split_reference(written)
        if digest or not tag or written[:len(written) - len(tag)] != pin.written_prefix:
            return None
        return replace(pin, version=tag)
    return replace(pin, version=written, is_range=pin.part == CHART and is_range(written))
