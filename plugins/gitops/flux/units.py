"""Discovery's units: one environment's builds, what they found and everything they depended on,
so that after a commit only the environments it touched are built again.

An environment's ``Part`` holds what its builds found before anything across environments is
decided (its pins, their variables, its image pins, its problems, the sources it holds, the
variable references of its builds) and what that depended on:
- every file whose content or identity it asked for (``read``, through ``Reading``);
- the listing: every path whose presence it asked for, every folder it looked into, or all of it
  (a glob, an ExternalArtifact's copies), through ``Listing``;
- objects looked up by (kind, namespace, name) outside its own builds: in the repository at
  large (``Finder``) or in another environment's builds (a shared source).

A commit touches a part when it changes or removes a file the part read, adds or removes a path
whose presence or folder the part asked about, or changes a file holding (before or after) an
object the part looked up outside its builds. Anything else cannot change what the part finds:
discovery reads the repository only through these three doors.
"""
from __future__ import annotations

import posixpath
import sys
from dataclasses import dataclass, field, replace
from typing import Optional

from .kustomize import RELEVANT_KINDS
from .kustomizations import in_table, table_key
from .manifests import FileTree


def intern(path):
    """The one string of ``path`` (the listing's, when the tree interns its paths): read-sets of
    every environment and every commit hold the same strings, not copies."""
    return sys.intern(path) if type(path) is str else path


class Reading:
    """A ``FileTree`` that notes every path whose content (or identity) is asked for."""

    def __init__(self, tree: FileTree):
        self._tree = tree
        self.paths: set = set()

    def files(self) -> list[str]:
        return self._tree.files()

    def read(self, path: str) -> str:
        self.paths.add(intern(path))
        return self._tree.read(path)

    def blob_id(self, path: str) -> str:
        self.paths.add(intern(path))
        return self._tree.blob_id(path)


class Listing:
    """A ``TreeIndex`` as one environment's builds ask it: which paths were looked for, which
    folders looked into, and whether the whole listing was walked."""

    def __init__(self, index):
        self._index = index
        self.paths: set = set()
        self.folders: set = set()
        self.everything = False
        self.files = _Files(index.files, self)
        self.children = _Children(index.children, self)

    def is_dir(self, path: str) -> bool:
        self.folders.add(intern(path))
        return self._index.is_dir(path)

    def kustomization(self, folder: str) -> Optional[str]:
        self.folders.add(intern(folder))
        return self._index.kustomization(folder)

    def expand(self, pattern: str) -> list:
        if any(c in pattern for c in "*?["):
            self.everything = True
        else:
            self.paths.add(intern(pattern.strip("/")))
            self.folders.add(intern(pattern.strip("/")))
        return self._index.expand(pattern)


class _Files:
    def __init__(self, files: set, listing: Listing):
        self._files, self._listing = files, listing

    def __contains__(self, path) -> bool:
        self._listing.paths.add(intern(path))
        return path in self._files

    def __iter__(self):
        self._listing.everything = True
        return iter(self._files)

    def __len__(self) -> int:
        self._listing.everything = True
        return len(self._files)


class _Children:
    def __init__(self, children: dict, listing: Listing):
        self._children, self._listing = children, listing

    def get(self, folder: str, default=None):
        self._listing.folders.add(intern(folder))
        return self._children.get(folder, default)

    def __contains__(self, folder) -> bool:
        self._listing.folders.add(intern(folder))
        return folder in self._children


class Lookups:
    """The repository-wide ``Finder`` as one environment's builds ask it."""

    def __init__(self, finder):
        self._finder = finder
        self.keys: set = set()

    def find(self, kind: str, namespace: str, name: str):
        self.keys.add((kind, namespace, name))
        return self._finder.find(kind, namespace, name)


# What the fold across environments reads of a part's pin (``discovery.fold``): a pin equal in
# these to one before it, at its place, takes the fold's answer that one had.
FOLDED = ("environment", "app", "namespace", "location", "part", "shared_by", "release_file")


def folds_alike(before, after) -> bool:
    """Whether the fold across environments reads two pins of a part alike (``FOLDED``)."""
    return all(getattr(before, f) == getattr(after, f) for f in FOLDED)


class NeedEnvironment(Exception):
    """A build looked up a source that an environment not built this time holds: build it too."""

    def __init__(self, environment: str):
        super().__init__(environment)
        self.environment = environment


@dataclass(frozen=True)
class Part:
    """What one environment's builds found, before sharing across environments, and what it
    depended on. Pins are shared with the inventory (no copies); paths are the tree's strings."""

    environment: str
    pins: tuple  # chart pins, in discovery order
    variables: tuple  # per chart pin: (variable, the site reading it as a version) or None
    overlay_images: tuple  # image pins of kustomize `images:`
    release_images: tuple  # image pins of the releases' values
    built_problems: tuple  # what building the environment could not follow
    found_problems: tuple  # what reading its releases could not follow
    replacement_sources: tuple  # (location, what it feeds) of its builds' kustomize replacements
    references: tuple  # per build with variables: {variable: (its location, ((file, count), …))}
    source_keys: frozenset  # (kind, namespace, name) of the Flux sources its builds hold
    looked_up: frozenset  # keys it asked for outside its own builds
    finder_used: bool  # whether the repository-wide table answered any of them
    read: frozenset
    listed_paths: frozenset  # besides those it read
    listed_folders: frozenset
    listed_everything: bool
    # What its builds keep to read files of HelmReleases again on their own (``release_files``);
    # None when they run kustomize replacements (below) or a carried version moved what they kept.
    release_files: Optional[object] = field(default=None, compare=False, repr=False)
    # What the builds of an environment running kustomize replacements keep instead (``replaced``):
    # what a step adds, takes away or reads again there is what no replacement selects
    replaced_files: Optional[object] = field(default=None, compare=False, repr=False)

    def touched(self, change: "Change", keys: set) -> bool:
        """Whether ``change`` (with ``keys``, the objects the changed files hold) can change what
        this part finds."""
        if not self.read.isdisjoint(change.changed):
            return True
        listed = change.listed
        if listed and (self.listed_everything or not self.read.isdisjoint(listed)
                       or not self.listed_paths.isdisjoint(listed)
                       or not self.listed_folders.isdisjoint(change.folders)):
            return True
        return not self.looked_up.isdisjoint(keys)

    @property
    def replaced(self) -> bool:
        """Whether its builds run kustomize replacements (and keep what they make)."""
        return self.release_files is None and self.replaced_files is not None

    @property
    def kept(self):
        """What its builds keep (``held_releases.ReleaseFiles``), wherever it keeps it; None when
        they keep nothing. Where they run replacements (``replaced``), a step reading releases
        again on their own asks ``held_releases.reached`` of what it adds, takes or reads again."""
        return self.replaced_files if self.replaced else self.release_files

    def keeping(self, kept) -> "Part":
        """This part with ``kept`` as what its builds keep, where it kept it."""
        replaced = self.replaced
        return replace(self, release_files=None if replaced else kept, replaced_files=kept if replaced else None)

    def with_pins(self, pins: tuple, overlay_images: tuple, release_images: tuple, release_files) -> "Part":
        """This part with versions carried (``changes.carry``), or with files of its HelmReleases
        read again (``release_files``), and what its builds keep after that (where it kept it)."""
        return replace(self, pins=pins, overlay_images=overlay_images,
                       release_images=release_images).keeping(release_files)


@dataclass(frozen=True)
class Change:
    """What one commit changed, as discovery reads a tree."""

    changed: frozenset  # paths in both trees with other content
    added: frozenset
    removed: frozenset

    @property
    def listed(self) -> frozenset:
        return self.added | self.removed

    @property
    def folders(self) -> frozenset:
        """Every folder whose listing (or existence) the added and removed paths change."""
        found = set()
        for path in self.listed:
            while path:
                path = posixpath.dirname(path)
                found.add(path)
        return frozenset(found)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def change(old: FileTree, new: FileTree) -> Change:
    """The paths ``new`` changes, adds and removes against ``old``."""
    made = getattr(new, "rewritten_from", None)
    if made is not None and made[0] == getattr(old, "commit", None):
        # Built from ``old`` by rewriting these files: the listing is the same by construction.
        return Change(frozenset(p for p in made[1] if old.blob_id(p) != new.blob_id(p)), frozenset(),
                      frozenset())
    made = getattr(new, "diffed_from", None)
    if made is not None and made[0] == getattr(old, "commit", None):
        # Made from ``old`` by what git says differs between the two: nothing else moved.
        return Change(*map(frozenset, made[1:]))
    old_files, new_files = old.files(), new.files()
    if old_files == new_files:
        return Change(frozenset(p for p in new_files if old.blob_id(p) != new.blob_id(p)), frozenset(),
                      frozenset())
    old_files, new_files = set(old_files), set(new_files)
    both = old_files & new_files
    return Change(frozenset(p for p in both if old.blob_id(p) != new.blob_id(p)),
                  frozenset(new_files - both), frozenset(old_files - both))


def reads_after(read: frozenset, parts: tuple, change: Change, came: set, went: set) -> frozenset:
    """What discovery reads after a commit, from ``read`` before it, when its ``parts`` (made
    again) read ``came`` anew and ``went`` no more: those still read by a part, or by the
    repository-wide table (it reads every file it may hold, when an environment looked there)."""
    table = any(p.finder_used for p in parts)
    still = {path for path in went if any(path in p.read for p in parts)
             or table and path not in change.removed and in_table(path)}
    read = (read - change.removed - went) | still | {path for path in came if any(path in p.read for p in parts)}
    if table:
        read |= {path for path in change.added if in_table(path)}
    return frozenset(read)


def object_keys(old: FileTree, new: FileTree, change: Change, cache) -> set:
    """(kind, namespace, name) of every object the changed files hold, before or after, as the
    ``Finder`` keys them."""
    keys: set = set()
    for tree, paths in ((old, change.changed | change.removed), (new, change.changed | change.added)):
        for path in paths:
            if in_table(path):
                keys.update(table_key(doc) for doc in cache.get(tree, path, RELEVANT_KINDS).docs or ())
    keys.discard(None)
    return keys
