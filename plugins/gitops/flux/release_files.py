"""Files of HelmReleases and their patch files read again on their own, inside the builds that
hold them, so that a commit changing what Flux applies beyond a version (a label, a value, an
annotation) costs the releases it changed, not a build of their environment.

The proof is by construction. Discovery reads a resource file as objects of its builds
(``kustomize.Walker``), each given the scopes, namespace and names of the route that reached it,
and a patch file as patches of its builds, each selecting objects by its target (or its own kind
and name). A commit may change:
- a release file: every HelmRelease in it keeps its kind, API, name and namespace, and every other
  document in it stays equal or is a chart source that does (below): the builds hold the same
  objects in the same order and only those documents differ;
- a chart source (HelmRepository, OCIRepository; beside a release or in a file of sources): it
  keeps its kind, API, name and namespace, is the one its environment's builds find by its key,
  and no environment looked for it outside its builds: the releases that found it
  (``HeldRelease.uses``) read again with it, and nothing else reads it (a Flux Kustomization
  follows a GitRepository, never these);
- a patch file: each of its patches keeps its shape and what it selects (the target is its
  kustomization's; an untargeted one keeps its kind and name), and selects HelmReleases only:
  the builds apply the same patches to the same releases, and only their bodies differ.
Nothing in a build looks a HelmRelease up (the lookups are of sources, ConfigMaps, Flux
Kustomizations and generators), so what changes is the touched releases' own reading:
``releases.release``, ``releases.pin`` and its image pins, run again with the new documents, their
unit's patches and variables and the sources their environment found. What could cross releases
is checked, never assumed; else None, and the environment is built again (``discovery.rediscover``):
- the file is read by the environment only that way (no kustomization, no other resource), and
  names the same ``${VAR}`` as before; where the environment runs kustomize replacements (they
  select objects by their fields: ``Part.replaced``), no replacement of a touched release's
  unit selects it, before or after (``held_releases.read_again`` asks, for every step: as its
  source, a target or a rejected one; one in a file of its own selects anything), and no chart
  source changed;
- no environment looked its objects up outside its builds; a release finds a source its
  environment found at its last build (in its own builds, another environment's or anywhere):
  that answer stands while the part stands (``units``: a part that looked a source up is built
  again when what it looked up changes), and it looks for the same ones outside as before;
- each release keeps its name (no duplicate appears or goes), reads no other file, and each of its
  pins keeps what the fold across environments reads (``units.FOLDED``): what the fold says of every
  other pin stands, and of this one is what it said before.
What a part keeps for this (``ReleaseFiles``) is its builds without their resources: their patches,
variables and sources, and the releases of each file.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import sharing, units, variable_values
from .chart_sources import CHART_SOURCE_KINDS
from .held_releases import ReleaseFiles, from_file, read_again, with_patches
from .kustomize import RELEVANT_KINDS, Patch
from .manifests import DocumentCache, FileTree, dig, parse_documents
from .patches import applies, literal, selected_name, selects_releases_only
from ..settings import Settings


def reread(parts: tuple, old: FileTree, new: FileTree, settings: Settings, cache: DocumentCache
           ) -> Optional[tuple]:
    """(the parts of ``new``, ((part pin before, after), …) of the pins that read otherwise) from
    ``parts``, those of ``old``, when every changed file a part read is a release file or a patch
    file it reads again on its own (see the module's doc); else None."""
    change = units.change(old, new)
    if not change or change.listed:
        return None
    keys = units.object_keys(old, new, change, cache) if any(p.looked_up for p in parts) else set()
    if any(not p.looked_up.isdisjoint(keys) for p in parts):
        return None
    elsewhere = frozenset().union(*(p.looked_up for p in parts))
    done, moves = [], []
    for part in parts:
        files = sorted(path for path in change.changed if path in part.read)
        if not files:
            done.append(part)
            continue
        if part.kept is None:
            return None
        found = _reread_part(part, files, old, new, elsewhere, settings, cache)
        if found is None:
            return None
        done.append(found[0])
        moves.extend(found[1])
    return tuple(done), tuple(moves)


def after_versions(kept: ReleaseFiles, locations, old: FileTree, new: FileTree, cache: DocumentCache
                   ) -> Optional[ReleaseFiles]:
    """``kept`` after versions carried at ``locations`` (``changes.carry``: only those scalars
    rewritten), or None: a version in a release file moves nothing kept but its documents (read
    again for their names only); one in a patch file, or in an inline patch, moves its patches'
    bodies, read again; one at a variable's line moves its units' variables
    (``variable_values``); one elsewhere (a source) moves what only a build makes again."""
    for path in sorted({location.file for location in locations}):
        if path in kept.patch_files:
            kept = _patches_read_again(kept, path, old, new, cache)
        elif path in kept.files:
            continue
        elif all(_in_inline_patch(kept, location) for location in locations if location.file == path):
            kept = _inline_read_again(kept, path, {at.document for at in locations if at.file == path}, new, cache)
        else:
            kept = variable_values.after_versions(kept, path, old, new, cache)
        if kept is None:
            return None
    return kept


def _reread_part(part: units.Part, files: list, old: FileTree, new: FileTree, elsewhere: frozenset,
                 settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    replaced, kept = part.replaced, part.kept
    touched: dict = {}  # id(HeldRelease) -> (it, its document now)
    for path in files:
        if sharing.file_references(old, path, cache) != sharing.file_references(new, path, cache):
            return None  # a `${VAR}` named more or fewer times: its other uses change
        if path in kept.files or path in kept.source_files:
            found = _resource_file_read_again(kept, kept.files.get(path, ()), path, old, new, elsewhere, cache)
            if found is None:
                return None
            docs, sources = found
            touched.update((id(h), (h, docs[h.resource.index])) for h in kept.files.get(path, ()))
            if sources and replaced:
                return None  # a source a replacement may read or write
            if sources:  # the releases that find them read again, with them
                kept = replace(kept, sources={**kept.sources, **sources})
                touched.update((id(h), (h, None)) for h in kept.held
                               if id(h) not in touched and not sources.keys().isdisjoint(h.uses))
        elif path in kept.patch_files:
            before = kept
            kept = _patches_read_again(kept, path, old, new, cache)
            if kept is None:
                return None
            for h in _patched(before, path):
                touched.setdefault(id(h), (h, None))
        else:
            return None
    found = read_again(part, kept, touched, new, settings, cache, units.folds_alike)
    if found is None:
        return None
    pins, images, moves, kept = found
    return part.with_pins(pins, part.overlay_images, images, kept), moves


def _resource_file_read_again(kept: ReleaseFiles, held: tuple, path: str, old: FileTree, new: FileTree,
                              elsewhere: frozenset, cache: DocumentCache) -> Optional[tuple]:
    """(the file's documents now, {key: (resource now, unit position)} of its sources that
    changed) when its HelmReleases (``held``) are the same objects, and every other document of it
    is equal or a chart source of the environment's own builds, the one its key finds there, that
    keeps its kind, API, name and namespace and that no environment looked for elsewhere; else
    None."""
    before, after = cache.get(old, path, RELEVANT_KINDS), cache.get(new, path, RELEVANT_KINDS)
    if before.error or after.error or len(before.docs) != len(after.docs):
        return None
    releases_at = {h.resource.index: h for h in held}
    changed = {}  # document index -> its text now
    for i, (was, now) in enumerate(zip(before.docs, after.docs)):
        h = releases_at.get(i)
        if h is not None and not _same_object(h.resource.doc, now):
            return None
        if h is None and was != now:
            if not (_same_object(was, now) and now.get("kind") in CHART_SOURCE_KINDS):
                return None
            changed[i] = now
    sources = {}
    if changed:
        for key, found in kept.sources.items():
            if found is not None and found[0].file == path and found[0].index in changed:
                if key not in kept.own or key in kept.repeated or key in elsewhere or not isinstance(found[1], int):
                    return None
                sources[key] = (replace(found[0], doc=changed[found[0].index]), found[1])
        if len(sources) != len(changed):
            return None  # a source its builds do not find by its key (another has it first)
    return after.docs, sources


def _patches_read_again(kept: ReleaseFiles, path: str, old: FileTree, new: FileTree, cache: DocumentCache
                        ) -> Optional[ReleaseFiles]:
    """``kept`` with the patches of the patch file ``path`` read again from ``new``, when each
    keeps its shape and what it selects, and selects HelmReleases only; else None."""
    before, after = cache.get(old, path), cache.get(new, path)
    if before.error or after.error or len(before.docs) != len(after.docs):
        return None
    patched = set()
    renewed = {}  # id(old unit) -> the unit with this file's patches read again
    for unit in kept.units:
        if not any(p.file == path and from_file(p) for p in unit.build.patches):
            continue
        patches = []
        for p in unit.build.patches:
            if p.file == path and from_file(p):
                body = after.docs[p.index]
                if not _same_selection(p, body):
                    return None
                patched.add(p.index)
                p = replace(p, body=body)
            patches.append(p)
        # Its index of patches made when first read (a deploy carries many commits in a row).
        renewed[id(unit)] = with_patches(unit, patches)
    if any(was != now for i, (was, now) in enumerate(zip(before.docs, after.docs)) if i not in patched):
        return None  # a document no patch was made of now may be one
    # Its patches select HelmReleases only: the sources found in other environments' builds
    # (units of their own, kept as such) are patched as they were.
    return kept.with_units(renewed)


def _inline(patch: Patch, path: str) -> bool:
    return patch.file == path and not from_file(patch)


def _in_inline_patch(kept: ReleaseFiles, location) -> bool:
    """Whether ``location`` is inside an inline patch the builds keep (a kustomization's, a Flux
    Kustomization's): its document, under the key holding the patch."""
    return any(_inline(p, location.file) and p.index == location.document and location.path[:len(p.at)] == p.at
               for unit in kept.units for p in unit.build.patches)


def _inline_read_again(kept: ReleaseFiles, path: str, documents: set, new: FileTree, cache: DocumentCache
                       ) -> ReleaseFiles:
    """``kept`` with the inline patches of ``documents`` of ``path`` read again from ``new``, where
    only versions inside them were rewritten: each keeps its shape and what it selects. They are
    the file's as written: a version is never located in patches a parent wrote, and a Flux
    Kustomization's are all its own or all its parent's (``kustomizations.follow_kustomization``)."""
    docs = cache.get(new, path).docs
    renewed = {}  # id(old unit) -> the unit with this file's patches read again
    for unit in kept.units:
        if any(_inline(p, path) and p.index in documents for p in unit.build.patches):
            patches = [replace(p, body=_inline_body(p, docs)) if _inline(p, path) and p.index in documents else p
                       for p in unit.build.patches]
            renewed[id(unit)] = with_patches(unit, patches)
    return kept.with_units(renewed)


def _inline_body(patch: Patch, docs: tuple):
    """The body of an inline patch as its file's ``docs`` hold it now (the same shape as before)."""
    node = docs[patch.index]
    for key in patch.at:
        node = node[key]
    return node if patch.text_doc is None else parse_documents(node)[0][patch.text_doc]


def _patched(kept: ReleaseFiles, path: str) -> list:
    """The HelmReleases a patch of the file ``path`` applies to."""
    found = {}
    for unit in kept.units:
        for p in unit.build.patches:
            if p.file != path or not from_file(p):
                continue
            name = selected_name(p)
            candidates = kept.by_name.get(name, ()) if literal(name) else \
                [h for held in kept.files.values() for h in held]
            found.update((id(h), h) for h in candidates if applies(p, h.resource))
    return list(found.values())


def _same_selection(patch: Patch, body) -> bool:
    """Whether ``body``, in place of the patch's, is still a patch (``Walker`` makes one of it),
    selects what it selected, and selects HelmReleases only."""
    if not (isinstance(body, dict) or isinstance(body, list) and patch.target):
        return False
    return selects_releases_only(replace(patch, body=body)) and \
        (patch.target is not None or _same_object(patch.body, body))


def _same_object(before, after) -> bool:
    """Whether two documents are one object to kustomize: kind, API, name and namespace."""
    return isinstance(before, dict) and isinstance(after, dict) and \
        all(before.get(k) == after.get(k) for k in ("kind", "apiVersion")) and \
        all(dig(before, "metadata", k) == dig(after, "metadata", k) for k in ("name", "namespace"))
