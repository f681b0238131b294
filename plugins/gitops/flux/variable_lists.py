"""Variables defined anew in a ConfigMap a Flux Kustomization substitutes from or in its own
`postBuild.substitute`, or no more (the cluster's `VERSION_WEB: "1.2.3"` added beside a new app,
or taken away with it): the HelmReleases and patches that name them read again on their own, so
that a variable costs what names it, not a build of its environment. ``variable_values`` proves a
value changed; this proves the keys did.

The proof is by construction, as ``variable_values``'. A unit reads its variables through its
``Variables`` only (``kustomizations._variables``: inline first, then its ConfigMaps, later ones
winning), and a variable where a document of the unit names it: every name its builds name,
defined or not, is kept per unit (``Unit.named``: the patch steps keep it standing, the others
change no `${VAR}`). A commit may change files when, for each environment reading one:
- no environment looked its objects up outside its builds; its documents are equal but for the
  `data:` of ConfigMaps and Flux Kustomizations' `spec.postBuild.substitute`, and its text says
  the same of setter markers and variables (no value names one anew; a Kustomization's names
  none: its parent's variables would make it);
- each unit substituting from such a ConfigMap (``Source.at``), or whose Kustomization it is,
  takes its variables as the build reads them (no patch of the environment selects anything but
  HelmReleases, so none writes the ConfigMap or the Kustomization: the file's values, at their
  lines), and substitutes still (a unit given its first variable substitutes everything it
  builds);
- the variables whose reading changed (defined, gone, another value or line) are named only in
  files of HelmReleases whose other documents name none, or in patches: those releases, or the
  ones the patches select, are read again with the new variables and keep their name, namespace,
  image pins and the sources they found; a pin may take or lose its variable and its line;
- what each unit references (``sharing.defined_references``) is made again from what it names.
Else None: the environment is built again. The fold across environments then reads again the pins
that differ, and those sharing their lines or names.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import sharing, units
from .held_releases import ReleaseFiles, light, read_again, selected_by_replacements
from .kustomize import Resource
from .kustomizations import flux_kustomization, scalar_text
from .manifests import DocumentCache, FileTree, dig
from .patches import applies, origin, selects_releases_only
from .substitution import Variable
from .tree_index import TreeIndex
from .variable_values import VARIABLE_FIELDS, differing_documents, names_variables_besides, parts_read_again
from ..settings import Settings

DATA, INLINE = VARIABLE_FIELDS  # a ConfigMap's variables, a Flux Kustomization's own


def redefine(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
             settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from ``parts`` and
    ``read``, those of ``old``, when the commit changes the keys of ConfigMaps' `data:` that units
    substitute from, or of Flux Kustomizations' own `substitute` (see the module's doc); else None."""
    change = units.change(old, new)
    if index is None or not change.changed or change.listed:
        return None
    data = {}  # (file, document) of each ConfigMap or Kustomization changed -> it now
    for path in change.changed:
        found = _data(path, old, new, cache)
        if found is None:
            return None
        data.update(found)
    found = parts_read_again(parts, old, new, change, cache,
                             lambda part: _redefine_part(part, data, new, settings, cache))
    return None if found is None else (found[0], read, index)


def changed_data(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> bool:
    """Whether the commit changed the file in ConfigMaps' `data:` only (``_data``)."""
    return bool(_data(path, old, new, cache))


def _data(path: str, old: FileTree, new: FileTree, cache: DocumentCache) -> Optional[dict]:
    """{(file, document): it now} of the ConfigMaps whose `data:` changed, and of the Flux
    Kustomizations whose `spec.postBuild.substitute` did, when the file's documents are equal but
    for those (values text naming no variable) and its text says the same of setter markers and
    variables; else None."""
    differ = differing_documents(path, old, new, cache)
    if differ is None:
        return None
    found = {}
    for i, a, b in differ:
        field = DATA if b.get("kind") == "ConfigMap" else INLINE if flux_kustomization(b) else None
        values = None if field is None else dig(b, *field) if dig(b, *field) is not None else {}
        if not isinstance(values, dict) or not isinstance(dig(a, *field) or {}, dict) or \
                not all(isinstance(k, str) for k in values):
            return None  # (a value naming a variable changes what the text names, above)
        if field == INLINE and any("${" in (scalar_text(v) or "") for v in values.values()):
            return None  # its parent's variables make its values: only a build reads them
        found[(path, i)] = b
    return found


def _redefine_part(part: units.Part, data: dict, new: FileTree, settings: Settings, cache: DocumentCache
                   ) -> Optional[tuple]:
    """The part with its units' variables as the changed ConfigMaps define them and the releases
    naming the variables that read otherwise read again; or None."""
    kept: ReleaseFiles = part.kept
    if kept is None or selected_by_replacements(part, kept, data.values()):
        return None
    built, names = [], {}  # the units now; position -> the names whose reading changed
    for position, unit in enumerate(kept.units):
        variables, res = unit.variables, unit.kustomization
        sources = tuple(_defined(source, data[source.at]) if source.at in data else source
                        for source in variables.sources)
        mine = res is not None and (res.file, res.index) in data
        if sources == variables.sources and not mine:
            built.append(unit)
            continue
        if mine:  # its own `substitute`, as its parent builds it when no patch writes it
            res = replace(res, doc=data[(res.file, res.index)])
        now = replace(variables, sources=sources, inline=_inline(res) if mine else variables.inline)
        if unit.named is None or not now.enabled or \
                any(not selects_releases_only(p) for u in kept.units for p in u.build.patches):
            return None  # a unit substituting anew, or a patch that may write the ConfigMap or Kustomization
        held = (variables.inline, now.inline, *(source.variables for source in (*variables.sources, *sources)))
        changed = {name for names in held for name in names if variables.resolve(name) != now.resolve(name)}
        if changed:
            names[position] = changed
        built.append(replace(light(unit, unit.build.patches), variables=now, kustomization=res))
    again = replace(kept, units=tuple(built))
    touched = _touched(again, names, new, cache)
    if touched is None:
        return None
    variables = list(part.variables)
    found = read_again(part, again, touched, new, settings, cache, lambda before, after: True, variables)
    if found is None:
        return None
    pins, release_images, _, again = found
    references = tuple(r for r in (sharing.defined_references(u.variables, u.named) for u in again.units
                                   if u.named is not None) if r)
    # (the refold reads again what differs: no pin moves in place)
    return replace(part.with_pins(pins, part.overlay_images, release_images, again), variables=tuple(variables),
                   references=references), ()


def _defined(source, doc: dict):
    """``source`` with the variables of the ConfigMap ``doc`` (its `data:`), as the build reads
    them when no patch writes it: each at its line, when it is written as one."""
    path, index = source.at
    res = Resource(path, index, doc, frozenset(), "", "")
    found = {}
    for key, value in (dig(doc, *DATA) or {}).items():
        written, location, _ = origin(res, [], DATA + (key,))
        if written is None or "${" in written:  # as ``kustomizations._variables`` reads them
            location = None
        found[key] = Variable(key, scalar_text(value), location, source.description)
    return replace(source, variables=found)


def _inline(res: Resource) -> dict:
    """The variables of a Flux Kustomization's own `spec.postBuild.substitute` (``res``), as the
    build reads them when no patch writes it (``kustomizations._variables``)."""
    where = f"`spec.postBuild.substitute` of Kustomization {res.namespace}/{res.name} ({res.file})"
    # Its values name no variable (``_data``): each is the text at its line, or none (not text).
    return {str(name): Variable(str(name), scalar_text(value), origin(res, [], INLINE + (name,))[1], where)
            for name, value in (dig(res.doc, *INLINE) or {}).items()}


def _touched(kept: ReleaseFiles, names: dict, new: FileTree, cache: DocumentCache) -> Optional[dict]:
    """{id: (HeldRelease, None)} of the releases of the units whose variables ``names`` read
    otherwise, that name them in their files or through patches; None when something else does."""
    touched = {}
    for position, changed in names.items():
        unit = kept.units[position]
        for path in {path for name in changed for path, _ in unit.named.get(name, ())}:
            if path in kept.files and not names_variables_besides(kept.files[path], cache.get(new, path).docs):
                touched.update((id(h), (h, None)) for h in kept.files[path] if h.unit == position)
            elif any(p.file == path for p in unit.build.patches):
                touched.update((id(h), (h, None)) for h in kept.held if h.unit == position
                               and any(p.file == path and applies(p, h.resource) for p in unit.build.patches))
            else:
                return None  # a source or another object names it: what reads that is not a release's own
    return touched
