"""What one environment's builds keep to read its HelmReleases again on their own
(``ReleaseFiles``: its builds without their resources, and the releases they made), and reading
them again: each as discovery reads it (``releases.release``, ``releases.pin``, its image pins),
with its unit's patches and variables, finding its sources where its environment found them at
its last build (``Answers``). ``release_files`` (a release, source or patch file changed),
``resource_lists`` (an app listed or taken away) and ``patch_lists`` (a kustomization's patches
changed) prove when that is all a commit changes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple, Optional

from . import releases, replacements, units
from .kustomize import RELEVANT_KINDS, Build, Patch, Resource
from .kustomizations import Unit, flux_kustomization
from .manifests import DocumentCache, FileTree
from ..settings import Settings


class HeldRelease(NamedTuple):
    """One HelmRelease a build made of a file."""

    unit: int  # its unit's position in ``ReleaseFiles.units``
    resource: Resource  # as the build made it; of its document only the kind, API and names
    # are read again (``_same_object``) and its labels and annotations (``ReleaseFiles.renewed``)
    pin: int  # its chart pin's position in the part's pins; -1: it made none (no name, a duplicate)
    first_image: int  # its image pins: ``release_images[first_image:end_image]``
    end_image: int
    asked: frozenset  # the sources it looked for outside its environment's own builds
    uses: tuple  # the keys of those it found in its environment's own builds, in turn


@dataclass(frozen=True)
class ReleaseFiles:
    """What one environment's builds keep to read files of HelmReleases again on their own."""

    # its units with their patches, variables and kustomizations, not their resources; of a unit's
    # Flux Kustomization only its name is read again (its document may be an older commit's)
    units: tuple
    held: tuple  # every HelmRelease its builds made (HeldRelease), in build order
    files: dict  # file -> (HeldRelease, …): those of each file read only as a release file
    # (kind, namespace, name) -> (Resource, its unit: a position in ``units`` when one of the
    # environment's own, else the unit itself) or None: what its releases found
    sources: dict
    own: frozenset  # the keys of ``sources`` its own builds hold (the rest it looked for elsewhere)
    repeated: frozenset  # the keys more than one source of its own builds has
    patch_files: frozenset  # the files it reads as patches and only so
    source_files: frozenset  # the files it reads as resources only, none a HelmRelease (sources)
    with_images: bool
    # (namespace, name) of every Flux Kustomization its builds hold: one with another's key is not
    # followed (``kustomizations.build_environment``); those more than one holds
    followed: frozenset = frozenset()
    followed_twice: frozenset = frozenset()

    @cached_property
    def by_name(self) -> dict:
        """{a name a release goes by: its HeldReleases}, for the releases a patch selects."""
        found: dict = {}
        for held in self.files.values():
            for h in held:
                for name in h.resource.names or (h.resource.name,):
                    found.setdefault(name, []).append(h)
        return found

    def with_units(self, units: dict) -> "ReleaseFiles":
        """These with ``units`` ({id(unit): it made again}) in place: the same releases, their
        index by name stands."""
        again = replace(self, units=tuple(units.get(id(u), u) for u in self.units))
        if "by_name" in self.__dict__:
            again.__dict__["by_name"] = self.by_name
        return again

    def renewed(self, releases: dict) -> "ReleaseFiles":
        """These with ``releases`` ({id(HeldRelease): it with its document now}) in place of those
        read again: a patch selecting by labels or annotations selects what the release says now."""
        if not releases:
            return self
        files = dict(self.files)
        for path in {h.resource.file for h in releases.values()}:
            if path in files:
                files[path] = tuple(releases.get(id(h), h) for h in files[path])
        return replace(self, held=tuple(releases.get(id(h), h) for h in self.held), files=files)


def light(unit: Unit, patches: Optional[list] = None, kustomizations: Optional[list] = None) -> Unit:
    """The unit as the builds keep it: without its resources (the build's list of thousands), its
    replacements kept; with ``patches`` and ``kustomizations`` in place of its own when given."""
    return replace(unit, build=Build(patches=unit.build.patches if patches is None else patches,
                                     kustomizations=unit.build.kustomizations if kustomizations is None
                                     else kustomizations, replacements=unit.build.replacements),
                   patch_index=None if patches is not None else unit.patch_index)


def with_patches(unit: Unit, patches: list, kustomization=None) -> Unit:
    """The unit as the builds keep it (no resources) with ``patches`` in place of its own (and its
    Flux Kustomization's document as ``kustomization`` holds it, when given)."""
    return replace(light(unit, patches), kustomization=unit.kustomization if kustomization is None else kustomization)


def reached(kept: ReleaseFiles, found) -> bool:
    """Whether a kustomize replacement of the builds may select one of ``found`` ((its unit's
    position, Resource), …: objects a step adds, takes away or reads again; before and after, each
    as its unit's patches in ``kept`` make it): it would read or write their fields, which only a
    build does."""
    return any(replacements.reach(kept.units[position].build.replacements, (res,), kept.units[position].build.patches)
               for position, res in found)


def selected_by_replacements(part: units.Part, kept: ReleaseFiles, docs) -> bool:
    """Whether the builds run kustomize replacements and one may select an object of ``docs`` (a
    ConfigMap, a Flux Kustomization the commit changed; where a build holds it is not kept): the
    values it reads or writes there are what only a build says."""
    return part.replaced and any(replacements.may_select(unit.build.replacements, doc)
                                 for unit in kept.units for doc in docs)


def keep(env_units: list, held: list, images: list, sources: dict, own: frozenset, repeated: frozenset,
         with_images: bool) -> ReleaseFiles:
    """``ReleaseFiles`` of one environment's builds (their replacements kept with them).
    ``held``: (unit position, resource, chart pin position or -1, keys looked for elsewhere, keys
    found in its own builds) of every HelmRelease, in build order; ``images``: per chart pin, the (start, end) of its image
    pins; ``sources``: what its releases found (``chart_sources.Sources.answers``), ``own``: the
    keys of its own builds' sources."""
    lighter: dict = {}  # id(unit) -> the unit without its resources (the build's list of thousands)

    def once(unit: Unit) -> Unit:
        if id(unit) not in lighter:
            lighter[id(unit)] = light(unit)
        return lighter[id(unit)]

    position = {id(u): i for i, u in enumerate(env_units)}

    def where(unit: Unit):  # the environment's own by position (their patches may be read again)
        return position[id(unit)] if id(unit) in position else once(unit)

    made = tuple(HeldRelease(u, res, pin, *(images[pin] if pin >= 0 else (0, 0)), asked, uses)
                 for u, res, pin, asked, uses in held)
    files: dict = {}
    for h in made:
        files.setdefault(h.resource.file, []).append(h)
    otherwise, patch_files, source_files = files_read(env_units, set(files))
    return ReleaseFiles(tuple(once(u) for u in env_units), made,
                        {path: tuple(found) for path, found in files.items() if path not in otherwise},
                        {key: None if found is None else (found[0], where(found[1]))
                         for key, found in sources.items()},
                        own, repeated, patch_files, source_files, with_images, *_met(env_units))


def _met(env_units: list) -> tuple:
    """(the keys of the Flux Kustomizations the builds hold, those more than one has)."""
    met, twice = set(), set()
    for unit in env_units:
        for res in unit.build.resources:
            if res.kind == "Kustomization" and flux_kustomization(res.doc):
                key = (res.namespace, res.name)
                (twice if key in met else met).add(key)
    return frozenset(met), frozenset(twice)


def files_read(env_units: list, release_files: set) -> tuple:
    """(the files the units read otherwise than as objects: kustomizations, inline patches'
    holders, patch files; the files they read as patches only; those they read as objects only,
    none of ``release_files``: sources)."""
    otherwise = {kfile for unit in env_units for kfile, _, _ in unit.build.kustomizations}
    otherwise.update(p.file for unit in env_units for p in unit.build.patches if not from_file(p))
    resources = {path for unit in env_units for path in unit.build.files if path not in release_files}
    patch_files = {p.file for unit in env_units for p in unit.build.patches if from_file(p)}
    return frozenset(otherwise | patch_files), frozenset(patch_files - otherwise - resources - release_files), \
        frozenset(resources - otherwise - patch_files)


def from_file(patch: Patch) -> bool:
    """Whether the patch is a document of a patch file (not a kustomization's inline one)."""
    return patch.text_doc is None and not patch.at



class _NotAnswered(Exception):
    """A release looked for a source its environment never found: only a build can tell."""


class Answers:
    """``chart_sources.Sources`` for one environment, as it answered at its last build; ``more``:
    {key: (resource, unit position)} of sources its builds hold now besides, ``without``: keys of
    sources they hold no more."""

    def __init__(self, kept: ReleaseFiles, more: Optional[dict] = None, without: frozenset = frozenset()):
        self._kept, self._more, self._without = kept, more or {}, without
        self.asked: set = set()  # what it looked for outside the environment's own builds
        self.used: list = []  # what it found in them, in turn

    def find(self, environment: str, kind: str, namespace: str, name: str):
        key = (kind, namespace, name)
        if key in self._more:
            self.used.append(key)
            res, position = self._more[key]
            return res, self._kept.units[position]
        if key not in self._kept.sources or key in self._without:
            raise _NotAnswered()
        if key not in self._kept.own:
            self.asked.add(key)
        else:
            self.used.append(key)
        found = self._kept.sources[key]
        if found is not None and isinstance(found[1], int):
            return found[0], self._kept.units[found[1]]
        return found



def read_release(environment: str, kept: ReleaseFiles, unit: Unit, res: Resource, sources: "Answers",
                 reading: units.Reading, settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(its chart pin, its image pins, its variable) as discovery reads the HelmRelease ``res`` of
    ``unit`` (``releases.release``, ``releases.pin``, its image pins), finding its sources where
    its environment found them (``sources``); None when it makes no pin or looks a source up that
    its environment never found."""
    try:
        release = releases.release(environment, unit, res, sources)
    except _NotAnswered:
        return None
    if release is None:
        return None
    pin = releases.pin(release, settings)
    image_pins = []
    if kept.with_images:
        image_pins = [p for p, _ in releases.release_images(reading, pin, unit, res, settings, cache)]
    return pin, image_pins, release.found.variable


def read_again(part: units.Part, kept: ReleaseFiles, touched: dict, tree: FileTree, settings: Settings,
               cache: DocumentCache, alike, variables: Optional[list] = None) -> Optional[tuple]:
    """(its pins, its releases' image pins, ((pin before, after), …) of those that differ, ``kept``
    with their documents now) of ``part`` with the releases ``touched`` ({id: (HeldRelease, its
    document now, or None: its file's in ``tree``)}) read again in ``tree``. None when one makes no
    pin or another number of image pins, reads another variable (unless ``variables``, the
    part's, take it) or other sources, or a file not its own, or a pin is not ``alike`` (before,
    after) the one it had; or where the builds run replacements, one may select it (``reached``):
    its document here is its file's, not what they wrote into it."""
    pins, images, moves, renewed = list(part.pins), list(part.release_images), [], {}
    reading = units.Reading(tree)
    for h, doc in touched.values():
        if h.pin < 0:
            return None
        if doc is None:  # only its patches or sources changed: its own document is its file's
            doc = cache.get(tree, h.resource.file, RELEVANT_KINDS).docs[h.resource.index]
        res = replace(h.resource, doc=doc)
        if part.replaced and reached(kept, ((h.unit, h.resource), (h.unit, res))):
            return None
        sources = Answers(kept)
        found = read_release(part.environment, kept, kept.units[h.unit], res, sources, reading, settings, cache)
        if found is None or len(found[1]) != h.end_image - h.first_image:
            return None
        pin, image_pins, variable = found
        if variables is not None:
            variables[h.pin] = variable
        elif part.variables[h.pin] != variable:
            return None
        if sources.asked != h.asked or tuple(sources.used) != h.uses:
            return None  # other lookups: the part's would change
        for into, at, after in [(pins, h.pin, pin),
                                *((images, h.first_image + i, p) for i, p in enumerate(image_pins))]:
            before = into[at]
            if not alike(before, after):
                return None
            if after != before:
                into[at] = after
                moves.append((before, after))
        if doc is not h.resource.doc and doc != h.resource.doc:
            renewed[id(h)] = h._replace(resource=res)
    if not reading.paths <= {h.resource.file for h, _ in touched.values()}:
        return None  # it read another file: what the part read would change
    return tuple(pins), tuple(images), moves, kept.renewed(renewed)
