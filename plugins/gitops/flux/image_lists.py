"""Kustomizations' `images:` changed (an image entry added, edited or taken away): each
environment's kustomize image pins made again from the kustomizations its builds walked, nothing
else read again, so that an image override costs its environment's kustomizations, not a build.

The proof is by construction: kustomize's `images:` transformer rewrites container images, which
discovery never reads; discovery reads `images:` in one place, ``overlay_images.kustomize_images``,
a pure function of the kustomizations a build walked (``Build.kustomizations``, kept for each
unit) and their documents, and of the Flux Kustomization's own `spec.images` (read as the commit
has it). A commit may change kustomization files when each one's documents are equal but for
`images:`: what else discovery reads of a kustomization's text (its patches' bodies, the variables
they name) is in its other keys, and its setter markers are read from the text by whatever carries
a version, never kept. Every environment reading one keeps its builds (None: it is built again)
and takes the image pins those kustomizations make now, in its units' order; the fold across
environments then reads again the ones that differ. Else None.
"""
from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Optional

from . import units
from .kustomization_edits import changed_spec
from .kustomize import KUSTOMIZATION_FILES, RELEVANT_KINDS
from .manifests import DocumentCache, FileTree
from .overlay_images import kustomize_images
from .tree_index import TreeIndex
from ..settings import Settings


def reimage(parts: tuple, read: frozenset, old: FileTree, new: FileTree, index: Optional[TreeIndex],
            settings: Settings, cache: DocumentCache) -> Optional[tuple]:
    """(the parts of ``new``, what discovery reads there, its listing) from those of ``old``, when
    the commit changes kustomizations' `images:` only (see the module's doc); else None."""
    change = units.change(old, new)
    if not change.changed or change.listed or \
            any(posixpath.basename(path) not in KUSTOMIZATION_FILES for path in change.changed):
        return None
    if any(changed_spec(kfile, old, new, cache, ("images",)) is None for kfile in change.changed):
        return None
    done = []
    for part in parts:
        if not part.read.isdisjoint(change.changed):
            kept = part.kept
            if kept is None:
                return None
            overlay = tuple(pin for unit in kept.units
                            for pin, _ in kustomize_images(part.environment, _as_now(unit, new, cache), cache, new,
                                                           settings))
            part = part.with_pins(part.pins, overlay, part.release_images, kept)
        done.append(part)
    return tuple(done), read, index


def _as_now(unit, tree: FileTree, cache: DocumentCache):
    """The unit with its Flux Kustomization's document as ``tree`` holds it (its `spec.images`)."""
    if unit.kustomization is None:
        return unit
    doc = cache.get(tree, unit.kustomization.file, RELEVANT_KINDS).docs[unit.kustomization.index]
    return replace(unit, kustomization=replace(unit.kustomization, doc=doc))
