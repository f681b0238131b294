"""Pins read by more than one thing: the same line for several environments or apps, or a
postBuild variable that also feeds something else than a version. Pure over discovery's results.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .kustomizations import Unit
from .manifests import DEFAULT_CACHE, DocumentCache
from .substitution import UNDEFINED, references
from ..model import pin_order


def unit_references(unit: Unit, tree, cache: Optional[DocumentCache] = None) -> dict:
    """{variable: (where the unit defines it, ((file, count), …))} of every variable one unit
    both defines and references in what it builds (resources, patches): what ``variable_uses``
    counts, kept per unit so that a unit not built again keeps its count."""
    if not unit.variables.enabled:
        return {}
    return defined_references(unit.variables, named(unit, tree, cache))


def defined_references(variables, names: dict) -> dict:
    """``unit_references`` of a unit with ``variables`` whose builds name ``names`` (``named``)."""
    found: dict = {}
    for name, uses in names.items():
        var = variables.resolve(name)
        if var is not UNDEFINED:
            found[name] = (var.location, tuple(uses))
    return found


def variable_uses(pins: list, variables: list, references: list) -> list:
    """Mark the pins whose variable is used for anything else than their version fields.

    ``variables``: per pin, (variable name, the site that reads it as a version) or None;
    ``references``: ``unit_references`` of every unit, in discovery order."""
    wanted: dict = {}  # (name, location) -> set of sites reading it as a version
    for pin, variable in zip(pins, variables):
        if variable is not None:
            name, site = variable
            wanted.setdefault((name, pin.location), set()).add(site)
    if not wanted:
        return pins
    elsewhere: dict = {}
    for (name, location), sites in wanted.items():
        files, total = [], 0
        for unit in references:
            defined = unit.get(name)
            if defined is None or defined[0] != location:
                continue
            for path, count in defined[1]:
                total += count
                files.append(path)
        if total > len(sites):
            others = [f for f in dict.fromkeys(files)][:3]
            elsewhere[(name, location)] = f"`${{{name}}}` elsewhere in " + ", ".join(f"`{f}`" for f in others)
    if not elsewhere:
        return pins
    return [replace(p, shared_by=(elsewhere[(v[0], p.location)],))
            if v is not None and (v[0], p.location) in elsewhere else p
            for p, v in zip(pins, variables)]


def replacement_sources(pins: list, sources: list) -> list:
    """Mark the pins whose line is the source of a kustomize replacement: it sets other fields too.
    ``sources``: (location, what it feeds) of every unit's replacements."""
    feeds: dict = {}
    for location, described in sources:
        feeds.setdefault(location, []).append(described)
    if not feeds:
        return pins
    return [replace(p, shared_by=p.shared_by + tuple(dict.fromkeys(feeds[p.location])))
            if p.location in feeds else p for p in pins]


def named(unit: Unit, tree, cache: Optional[DocumentCache] = None) -> dict:
    """{variable: [(file, count)]} of the references in what ``unit`` builds (resources, patches),
    defined or not: what a variable defined anew finds (``Unit.named``)."""
    found: dict = {}
    paths = unit.build.files + [p.file for p in unit.build.patches if p.text_doc is None and not p.at]
    for path in dict.fromkeys(paths):
        for name, count in file_references(tree, path, cache).items():
            found.setdefault(name, []).append((path, count))
    for patch in unit.build.patches:
        if patch.text_doc is not None or patch.at:
            for name in body_references(patch.body):
                found.setdefault(name, []).append((patch.file, 1))
    return found


def file_references(tree, path: str, cache: Optional[DocumentCache] = None) -> dict:
    """{variable: how many times the file's text names it}; kept by blob beside its documents."""
    found = (DEFAULT_CACHE if cache is None else cache).fact(tree, path, "references", _references)
    return found if found is not None else {}


def _references(text: str) -> dict:
    counts: dict = {}
    for ref in references(text):
        counts[ref] = counts.get(ref, 0) + 1
    return counts


def body_references(node) -> list:
    """The variables a parsed document (or any part of one) names, as Flux substitutes them."""
    if isinstance(node, str):
        return references(node) if "${" in node else []
    if isinstance(node, dict):
        return [r for v in node.values() for r in body_references(v)]
    if isinstance(node, list):
        return [r for v in node for r in body_references(v)]
    return []


def finish(pins: tuple, order: list) -> tuple:
    """Say which pins share their one line: with other environments (``shared_with``), or with
    other apps (``shared_by``)."""
    rank = {name: i for i, name in enumerate(order)}
    readers: dict = {}
    for p in pins:
        if p.location is not None:
            readers.setdefault(p.location, []).append(p)
    done = []
    for p in pins:
        sharing = readers.get(p.location, ()) if p.location is not None else ()
        envs = {q.environment for q in sharing}
        if len(envs) > 1:
            p = replace(p, shared_with=tuple(sorted(envs, key=lambda e: rank.get(e, len(rank)))))
        others = [f"{q.environment}/{q.app}" for q in sharing if q.app != p.app]
        if others:
            p = replace(p, shared_by=tuple(dict.fromkeys(others)) + p.shared_by)
        # One variable as the chart version and an image tag of one app: neither is one pin.
        parts = [f"{q.environment}/{q.label}" for q in sharing if q.app == p.app and q.part != p.part]
        if parts:
            p = replace(p, shared_by=p.shared_by + tuple(dict.fromkeys(parts)))
        done.append(p)
    return tuple(sorted(done, key=pin_order(order)))
