"""What runs where: every HelmRelease of every environment and where its chart version is pinned.

Pure functions over a ``FileTree``: no Git, no HTTP. ``discover`` returns one ``Pin`` per release
and environment, ordered by environment order then app name. One release is ``releases``'.

Discovery is a fold over units (``units``): each environment's builds give a ``Part`` (its pins
before anything across environments is decided, its problems, and everything it depended on),
and the parts together give the pins (sharing across environments, apps and variables; names
made unique). ``rediscover`` folds again after a commit, building again only the environments
the commit touched: the same function of the same inputs, so the same pins.

- Two releases with one name in one environment make that name ambiguous: every release with that
  name, in every environment discovered together, is called ``namespace/name``.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Iterable, Optional

from . import kustomizations, overlay_images, held_releases, releases, sharing, units
from .chart_sources import Sources
from .helmvalues import release_values_text
from .kustomize import ScopeIds
from .tree_index import TreeIndex
from .manifests import DEFAULT_CACHE, DirTree, DocumentCache, FileTree
from ..model import Pin, Problem, in_order
from ..settings import EnvironmentSettings, Settings

__all__ = ["FileTree", "DirTree", "DocumentCache", "discover", "discover_environments",
           "discover_parts", "rediscover", "fold", "refold", "problems_of", "qualify_clashes",
           "release_values_text"]

log = logging.getLogger(__name__)
NOTHING_ASKED = frozenset()  # one set for every release that found its source in its own builds


def discover(tree: FileTree, settings: Settings,
             environments: Optional[Iterable] = None, *, warnings: Optional[list] = None,
             cache: Optional[DocumentCache] = None, with_images: bool = False) -> tuple:
    """The pins of ``environments`` (default: all of them) found in ``tree``.

    Environments may be ``EnvironmentSettings`` or names; pass those whose repository ``tree`` is.
    What discovery cannot follow (broken YAML, missing files, Kustomizations of other sources)
    is appended to ``warnings`` as ``Problem`` objects. ``with_images``: the image tags the
    releases' values and the kustomizations' ``images:`` pin too (``images``), as more pins.
    """
    parts = discover_parts(tree, settings, environments, cache=cache, with_images=with_images)
    if warnings is not None:
        warnings.extend(problems_of(parts))
    return fold(parts, settings)


def discover_parts(tree: FileTree, settings: Settings, environments: Optional[Iterable] = None, *,
                   cache: Optional[DocumentCache] = None, with_images: bool = False,
                   index: Optional[TreeIndex] = None) -> tuple:
    """One ``units.Part`` per environment, in the order given (``fold`` makes them pins).
    ``index``: ``tree``'s listing, when in hand."""
    envs = _environments(settings, environments)
    cache = cache if cache is not None else DEFAULT_CACHE
    index = index if index is not None else TreeIndex(tree.files())
    built = _build(tree, settings, envs, {}, [e.name for e in envs], index, cache, with_images)
    return tuple(built[e.name] for e in envs)


def rediscover(parts: tuple, old: FileTree, new: FileTree, settings: Settings, *,
               cache: Optional[DocumentCache] = None, with_images: bool = False,
               index: Optional[TreeIndex] = None) -> tuple:
    """(the parts of ``new``, the environments built again, ``new``'s listing or None) from
    ``parts``, those of ``old`` (whose listing is ``index``, when in hand): what
    ``discover_parts`` finds in ``new``, building again only what the commit touched."""
    cache = cache if cache is not None else DEFAULT_CACHE
    change = units.change(old, new)
    if change.listed:  # another listing: moved from the last one's when in hand
        index = index.moved(change.added, change.removed) if index is not None else None
    if not change:
        return parts, frozenset(), index
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    dirty = {p.environment for p in parts if p.touched(change, keys)}
    if not dirty:
        return parts, frozenset(), index
    envs = _environments(settings, [p.environment for p in parts])
    order = [e.name for e in envs]
    index = index if index is not None else TreeIndex(new.files())
    while True:
        held = {p.environment: p.source_keys for p in parts if p.environment not in dirty}
        try:
            built = _build(new, settings, [e for e in envs if e.name in dirty], held, order, index, cache,
                           with_images)
        except units.NeedEnvironment as need:  # a source only an environment not built holds
            dirty.add(need.environment)
            continue
        # An environment that took a source from another's builds (or looked for one there) is
        # touched when that other one's sources change.
        moved = set().union(*(p.source_keys for p in parts if p.environment in dirty),
                            *(part.source_keys for part in built.values()))
        more = {p.environment for p in parts if p.environment not in dirty and not p.looked_up.isdisjoint(moved)}
        if not more:
            return tuple(built.get(p.environment, p) for p in parts), frozenset(dirty), index
        dirty |= more


def fold(parts: Iterable, settings: Settings) -> tuple:
    """The pins of ``parts`` together: variables used elsewhere, replacement sources, lines
    shared by environments or apps, clashing names qualified."""
    parts = list(parts)
    return _fold(_readers(parts, None, None), parts, settings)


def refold(before: tuple, folded: tuple, parts: tuple, settings: Settings) -> tuple:
    """(``fold(parts)``, the pins of ``folded`` it holds no more, those it holds anew), from
    ``folded``, ``fold(before)``, where some environments were built again: only the pins the fold
    may read otherwise are folded again, the rest of ``folded`` stands (the same objects).

    The fold reads a pin with those sharing its line (another environment or app, a variable at
    that line, a replacement reading it) and those sharing its name (a clash in any environment
    qualifies it in every one). Seeds: the pins of a part built again that differ from its pins
    before (compared in order, past what both start and end with), and the lines of its variables
    and replacements when those changed. Closed over lines and names: the pins chosen then hold
    every pin the fold reads with them, so folding them alone gives what folding all gives them."""
    if [p.environment for p in before] != [p.environment for p in parts]:
        anew = fold(parts, settings)
        return anew, folded, anew
    lines, names = set(), set()
    for was, now in zip(before, parts):
        if was is now:
            continue
        for old, new in ((tuple(zip(was.pins, was.variables)), tuple(zip(now.pins, now.variables))),
                         (was.overlay_images, now.overlay_images), (was.release_images, now.release_images)):
            for p in (p for middle in differing(old, new) for p in middle):
                _seed(p[0] if isinstance(p, tuple) else p, lines, names)
        for old, new in ((was.replacement_sources, now.replacement_sources), (was.references, now.references)):
            if old != new:
                lines.update(_lines_read(old))
                lines.update(_lines_read(new))
    if not lines and not names:
        return folded, (), ()
    while True:  # closed over lines and names
        chosen = _readers(parts, lines, names)
        more = ({p.location for p, _ in chosen} - lines, {p.app for p, _ in chosen} - names)
        if not any(more):
            break
        lines |= more[0]
        names |= more[1]
    anew = _fold(chosen, parts, settings)
    # A pin folded before at one of ``lines`` is either there still (chosen: its name is in
    # ``names``) or differed (seeded by its name): its name says it all.
    gone, kept = [], []
    for p in folded:
        (gone if _bare(p.app) in names else kept).append(p)
    return tuple(in_order(kept, anew, settings.environment_names)), tuple(gone), anew


def _readers(parts: list, lines: Optional[set], names: Optional[set]) -> list:
    """(pin, its variable) of the parts' pins in the fold's order (chart pins, then kustomize
    images, then the releases' images); only those at ``lines`` or named ``names`` when given."""
    if lines is None:
        found = [(p, v) for part in parts for p, v in zip(part.pins, part.variables)]
        found += [(p, None) for part in parts for p in part.overlay_images]
        found += [(p, None) for part in parts for p in part.release_images]
        return found
    # The test written out, not called: a refold looks at every pin of the fleet, twice or so.
    found = [(p, v) for part in parts for p, v in zip(part.pins, part.variables)
             if p.location in lines or p.app in names]
    # An image tag's variable is not a version site of its own: a variable that is also an image
    # tag stays "used elsewhere" for the chart pin, and the two share one line (sharing.finish).
    found += [(p, None) for part in parts for p in part.overlay_images if p.location in lines or p.app in names]
    found += [(p, None) for part in parts for p in part.release_images if p.location in lines or p.app in names]
    return found


def _fold(chosen: list, parts: list, settings: Settings) -> tuple:
    pins = sharing.variable_uses([p for p, _ in chosen], [v for _, v in chosen],
                                 [r for part in parts for r in part.references])
    pins = sharing.replacement_sources(pins, [s for part in parts for s in part.replacement_sources])
    return sharing.finish(qualify_clashes(pins), [e.name for e in settings.environments])


def differing(old: tuple, new: tuple) -> tuple:
    """(the items of ``old``, those of ``new``) past what both start and end with."""
    start, end = common_ends(old, new)
    return old[start:len(old) - end], new[start:len(new) - end]


def common_ends(old, new) -> tuple:
    """(how many items both start with, how many more both end with)."""
    start, end, common = 0, 0, min(len(old), len(new))
    while start < common and old[start] == new[start]:
        start += 1
    while end < common - start and old[-1 - end] == new[-1 - end]:
        end += 1
    return start, end


def _seed(pin, lines: set, names: set) -> None:
    lines.add(pin.location)
    names.add(_bare(pin.app))


def _lines_read(held: tuple) -> set:
    """The lines replacements read (``Part.replacement_sources``) or variables are defined at
    (``Part.references``)."""
    found = set()
    for item in held:
        if isinstance(item, dict):
            found.update(defined[0] for defined in item.values())
        else:
            found.add(item[0])
    return found


def problems_of(parts: Iterable) -> list:
    """What the parts could not follow, as discovery says it: building first, then releases."""
    parts = list(parts)
    return [p for part in parts for p in part.built_problems] + [p for part in parts for p in part.found_problems]


# ---- one environment ---------------------------------------------------------------------------

def _build(tree: FileTree, settings: Settings, envs: list, held: dict, order: list, index: TreeIndex,
           cache: DocumentCache, with_images: bool) -> dict:
    """{environment: Part} of ``envs``, each read through its own recorders. ``held``: the source
    keys of the other environments discovered with them (not built here)."""
    finder = kustomizations.Finder(tree, index, cache)
    ids = ScopeIds()
    built = []
    for env in envs:
        reading, listing, lookups = units.Reading(tree), units.Listing(index), units.Lookups(finder)
        problems: list = []
        paths = []
        for pattern in env.paths:
            matched = listing.expand(pattern)
            if not matched:
                problems.append(Problem(env.name, pattern, "matches nothing in the repository."))
            paths.extend(matched)
        env_units = kustomizations.build_environment(reading, listing, cache, env.name, env.repo, paths,
                                                     problems, lookups, ids)
        built.append((env, env_units, problems, (reading, listing, lookups)))
    sources = Sources(finder, [(env, env_units) for env, env_units, _, _ in built], held, order)
    return {env.name: _part(env, env_units, problems, recorders, sources, settings, cache, with_images)
            for env, env_units, problems, recorders in built}


def _part(env: EnvironmentSettings, env_units: list, built_problems: list, recorders: tuple,
          sources: Sources, settings: Settings, cache: DocumentCache, with_images: bool) -> units.Part:
    reading, listing, lookups = recorders
    problems: list = []
    overlay = []
    if with_images:
        for unit in env_units:
            overlay.extend(p for p, _ in overlay_images.kustomize_images(env.name, unit, cache, reading, settings))
    found, seen = [], set()
    # (unit position, resource, chart pin position or -1, the sources it looked for outside its
    # environment's builds) of every HelmRelease
    held = []
    for position, unit in enumerate(env_units):
        for res in unit.build.resources:
            if res.kind == "ResourceSet" and releases.generates_releases(res.doc):
                problems.append(Problem(env.name, res.file, f"ResourceSet {res.namespace}/{res.name} "
                                        "(Flux Operator) generates HelmReleases Ferry cannot follow: "
                                        "change them by hand."))
            if res.kind != "HelmRelease" or not res.api_version.startswith(releases.HELM_API):
                continue
            calls, used = len(sources.calls), len(sources.used)
            release = releases.release(env.name, unit, res, sources)
            asked = frozenset(sources.calls[calls:]) if len(sources.calls) > calls else NOTHING_ASKED
            uses = tuple(sources.used[used:]) if len(sources.used) > used else ()
            if release is None:
                held.append((position, res, -1, asked, uses))
                continue
            if (release.namespace, release.name) in seen:
                problems.append(Problem(env.name, release.file, f"HelmRelease {release.namespace}/"
                                        f"{release.name} is defined twice; kept the one in "
                                        f"{_first_file(found, release)}."))
                held.append((position, res, -1, asked, uses))
                continue
            seen.add((release.namespace, release.name))
            held.append((position, res, len(found), asked, uses))
            found.append(release)
            if with_images:
                release.image_reader = (unit, res)
    if not seen:
        problems.append(Problem(env.name, ", ".join(env.paths), "no HelmRelease found there."))
    for problem in [*built_problems, *problems]:
        log.debug("discovery: %s", problem)
    pins = tuple(releases.pin(r, settings) for r in found)
    release_images, image_spans = [], []
    for release, pin in zip(found, pins):
        start = len(release_images)
        if release.image_reader is not None:
            release_images.extend(p for p, _ in releases.release_images(reading, pin, *release.image_reader,
                                                                         settings, cache))
        image_spans.append((start, len(release_images)))
    for unit in env_units:  # what each names, defined or not: a variable defined anew finds its uses there
        unit.named = sharing.named(unit, reading, cache) if unit.variables.enabled else None
    references = tuple(r for r in (sharing.defined_references(u.variables, u.named) for u in env_units
                                   if u.named is not None) if r)
    own = sources.own(env.name)  # the keys of the sources its builds hold: one set, two uses
    kept = held_releases.keep(env_units, held, image_spans, sources.answers(env.name), own, sources.repeated(env.name),
                              with_images)
    replaced = any(unit.build.replacements for unit in env_units)
    return units.Part(
        env.name, pins, tuple(r.found.variable for r in found), tuple(overlay), tuple(release_images),
        tuple(built_problems), tuple(problems),
        tuple(s for u in env_units for s in u.build.replacement_sources), references,
        own,
        frozenset(lookups.keys | sources.asked(env.name)),
        bool(lookups.keys) or env.name in sources.searched,
        frozenset(reading.paths), frozenset(listing.paths - reading.paths), frozenset(listing.folders),
        listing.everything, None if replaced else kept, replaced_files=kept if replaced else None)


def discover_environments(tree: FileTree, settings: Settings, environments: Iterable,
                          **options) -> tuple:
    """The pins of only those environments that live in ``tree``'s repository."""
    return discover(tree, settings, environments, **options)


def qualify_clashes(pins: Iterable[Pin]) -> tuple:
    """Call ``namespace/name`` every release whose name is not unique within one environment.

    Idempotent, so the core may apply it again to pins merged from several repositories.
    """
    pins = list(pins)
    namespaces: dict = {}
    for p in pins:
        namespaces.setdefault((p.environment, _bare(p.app)), set()).add(p.namespace)
    clashing = {name for (_, name), nss in namespaces.items() if len(nss) > 1}
    return tuple(_replace(p, app=f"{p.namespace}/{_bare(p.app)}") if _bare(p.app) in clashing else p
                 for p in pins)


# ---- helpers ---------------------------------------------------------------------------------

def _environments(settings: Settings, environments) -> list:
    if environments is None:
        return list(settings.environments)
    return [e if isinstance(e, EnvironmentSettings) else settings.environment(e) for e in environments]


def _first_file(found: list, release: releases.Release) -> str:
    return next((r.file for r in found if r.environment == release.environment
                 and r.name == release.name and r.namespace == release.namespace), "?")


def _replace(pin: Pin, **changes) -> Pin:
    return dataclasses.replace(pin, **changes)


def _bare(app: str) -> str:
    return app.rsplit("/", 1)[-1]
