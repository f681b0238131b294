"""Variables given other values, in a ConfigMap a Flux Kustomization substitutes from
(`postBuild.substituteFrom`: the cluster's variables) or in its own `postBuild.substitute`: the
HelmReleases and patches that name them read again on their own with the new values, so that a
variable costs what reads it, not a build of its environment.

The proof is by construction, as ``release_files``'. Discovery reads a variable through its
unit's ``Variables`` only, and a variable's value only where a document of that unit names it
(``Unit.document``): the files a unit builds and its patches, counted per variable in the part's
references (``sharing.unit_references``). A commit may change files when, for each environment
reading one:
- no environment looked its objects up outside its builds;
- its documents are equal but for values under `data:` (of a ConfigMap, a strategic merge patch
  of one, or a kind no discovery reads the data of) or under a Flux Kustomization's
  `spec.postBuild.substitute`, each still text naming no `${VAR}`, and its text says the same of
  setter markers and variables: the same objects with the same keys, so each unit substitutes
  the same variables from the same places;
- a variable whose line (where the value it substitutes is written last, ``patches.origin``) is
  one of those values takes it; one another line writes last (a patch) keeps its value;
- every file naming a variable that took another value is a file of HelmReleases whose other
  documents name none, or a file of patches: the releases there, or those the patches select,
  are read again with the new values, and each keeps what the fold across environments reads (a
  version read through the variable moves at its line, as a version carried does).
Else None: a variable defined anew or no more is ``variable_lists``', anything else builds the
environment again. A version carried at a variable's line (``carry``) gives the units that value
the same way (``after_versions``).
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Optional

from . import images, sharing, units
from .held_releases import ReleaseFiles, light, read_again, selected_by_replacements
from .kustomizations import scalar_text
from .manifests import DocumentCache, FileTree, dig
from .patches import applies
from ..model import PinLocation
from ..settings import Settings


def revalue(parts: tuple, old: FileTree, new: FileTree, settings: Settings, cache: DocumentCache
            ) -> Optional[tuple]:
    """(the parts of ``new``, ((part pin before, after), …) of the pins that read otherwise) from
    ``parts``, those of ``old``, when the commit changes only values of ConfigMaps' `data:` that
    units substitute from (see the module's doc); else None."""
    change = units.change(old, new)
    if not change.changed or change.listed:
        return None
    values = {}  # the line of each variable's value the commit changed -> its text now
    for path in change.changed:
        found = _values(path, old, new, cache)
        if not found:
            return None
        values.update(found)
    return parts_read_again(parts, old, new, change, cache,
                            lambda part: _revalue_part(part, values, new, settings, cache))


def parts_read_again(parts: tuple, old: FileTree, new: FileTree, change: units.Change, cache: DocumentCache,
                     read_part) -> Optional[tuple]:
    """(the parts, ((part pin before, after), …)) with each part that reads a changed file read
    again by ``read_part`` (part -> (it now, its pins' moves) or None), when no environment looked
    the changed files' objects up outside its builds; else None."""
    keys = units.object_keys(old, new, change, cache)
    done, moves = [], []
    for part in parts:
        if not part.looked_up.isdisjoint(keys):
            return None
        if part.read.isdisjoint(change.changed):
            done.append(part)
            continue
        found = read_part(part)
        if found is None:
            return None
        done.append(found[0])
        moves.extend(found[1])
    return tuple(done), tuple(moves)


# Where a value is a variable's: a ConfigMap's `data:`, or a Flux Kustomization's own substitute.
VARIABLE_FIELDS = (("data",), ("spec", "postBuild", "substitute"))


def changed_values(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> bool:
    """Whether the commit changed the file in variables' values only (``_values``)."""
    return bool(_values(path, old, new, cache))


def _values(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[dict]:
    """{line: new text} of the values a file changed, when its documents are equal but for values
    under `data:` or a Flux Kustomization's `spec.postBuild.substitute` (the same keys; text naming
    no variable; the same setter markers); else None."""
    differ = differing_documents(path, old, new, cache)
    if differ is None:
        return None
    found = {}
    for i, a, b in differ:
        for field in VARIABLE_FIELDS:
            before, after = dig(a, *field), dig(b, *field)
            if before == after:
                continue
            if not isinstance(before, dict) or not isinstance(after, dict) or before.keys() != after.keys():
                return None
            for key, value in after.items():
                text = scalar_text(value)
                if not isinstance(key, str) or text is None or "${" in text:
                    return None
                if value != before[key]:
                    if scalar_text(before[key]) is None:
                        return None  # no variable before (a null, a mapping): one defined anew
                    found[PinLocation(path, i, field + (key,))] = text
    return found


def differing_documents(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[list]:
    """[(index, before, after)] of the documents of ``path`` the commit changed, when they differ
    in variables only (under ``VARIABLE_FIELDS``) and its text says the same of setter markers
    and variables; else None."""
    was, now = cache.get(old, path), cache.get(new, path)
    if was.error or now.error or len(was.docs) != len(now.docs) or \
            images.markers(old, path, cache) != images.markers(new, path, cache) or \
            sharing.file_references(old, path, cache) != sharing.file_references(new, path, cache):
        return None  # what its text says besides documents: setter markers, variables named
    found = []
    for i, (a, b) in enumerate(zip(was.docs, now.docs)):
        if a == b:
            continue
        if not isinstance(a, dict) or not isinstance(b, dict) or without_values(a) != without_values(b):
            return None
        found.append((i, a, b))
    return found


def without_values(doc: dict) -> dict:
    """``doc`` without the mappings of variables' values (their keys compared by the caller)."""
    doc = copy.deepcopy(doc)
    for field in VARIABLE_FIELDS:
        holder = dig(doc, *field[:-1]) if len(field) > 1 else doc
        if isinstance(holder, dict) and field[-1] in holder:
            holder[field[-1]] = None
    return doc


def _revalue_part(part: units.Part, values: dict, new: FileTree, settings: Settings, cache: DocumentCache
                  ) -> Optional[tuple]:
    """(the part with its units' variables at their new values and the releases naming them read
    again, its pins that moved) or None."""
    kept: ReleaseFiles = part.kept
    if kept is None or selected_by_replacements(part, kept, [cache.get(new, at.file).docs[at.document] for at in values]):
        return None
    again, changed = _substituting(kept, values)
    if not changed:
        return part, ()  # read as resources, substituted from by none of its units
    touched = {}
    for path in {path for defined in part.references for location, uses in defined.values()
                 if location in changed for path, _ in uses}:
        if path in kept.files and not names_variables_besides(kept.files[path], cache.get(new, path).docs):
            touched.update((id(h), (h, None)) for h in kept.files[path])
        elif any(p.file == path for unit in again.units for p in unit.build.patches):
            touched.update((id(h), (h, None)) for h in again.held
                           if any(p.file == path and applies(p, h.resource) for p in again.units[h.unit].build.patches))
        else:
            return None  # a source or another object names it: what reads that is not a release's own
    found = read_again(part, again, touched, new, settings, cache, units.folds_alike)
    if found is None:
        return None
    pins, images, moves, again = found
    return part.with_pins(pins, part.overlay_images, images, again), moves


def after_versions(kept: ReleaseFiles, path: str, old: FileTree, new: FileTree, cache: DocumentCache
                   ) -> Optional[ReleaseFiles]:
    """``kept`` after versions carried in variables' lines of ``path`` (``changes.carry``: read
    only as versions, nothing else names them): its units substitute the new values; None when
    the file changed otherwise than values under `data:`."""
    values = _values(path, old, new, cache)
    return None if values is None else _substituting(kept, values)[0]


def _substituting(kept: ReleaseFiles, values: dict) -> tuple:
    """(``kept`` with its units' variables at their new ``values``, {line: value} of the variables
    that took one)."""
    changed = {}  # the line of each variable given another value -> that value
    built = []
    for unit in kept.units:
        variables = unit.variables
        sources = tuple(_source(source, values, changed) for source in variables.sources)
        inline = _taken(variables.inline, values, changed)
        if sources == variables.sources and inline is variables.inline:
            built.append(unit)
            continue
        built.append(replace(light(unit, unit.build.patches), variables=replace(variables, inline=inline, sources=sources)))
    return (replace(kept, units=tuple(built)) if changed else kept), changed


def _source(source, values: dict, changed: dict):
    """``source`` with its variables given their new ``values`` (``_taken``)."""
    variables = _taken(source.variables, values, changed)
    return source if variables is source.variables else replace(source, variables=variables)


def _taken(variables: dict, values: dict, changed: dict) -> dict:
    """{name: Variable} with those written at a line given another value (``values``) taking it,
    noted in ``changed``; one another line writes last (a patch) keeps its own."""
    moved = {}
    for variable in variables.values():
        if variable.location in values:
            moved[variable.name] = replace(variable, value=values[variable.location])
            changed[variable.location] = values[variable.location]
    return {**variables, **moved} if moved else variables


def names_variables_besides(held: tuple, docs: tuple) -> bool:
    """Whether a document of a file of HelmReleases other than theirs names a variable."""
    releases_at = {h.resource.index for h in held}
    return any(sharing.body_references(doc) for i, doc in enumerate(docs) if i not in releases_at)
