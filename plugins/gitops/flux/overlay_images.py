"""kustomize's ``images:`` (``newTag``) as pins, for apps without a chart: the app is named after
the image. kustomize applies an overlay's ``images:`` after those of what it includes, so the
outermost entry for an image decides, wherever its kustomization sits (a folder holding only its
kustomization.yaml too); Flux's own ``spec.images`` is outside them all. Pure over what a build
walked (``Build.kustomizations``).
"""
from __future__ import annotations

from .images import location
from .manifests import dig
from ..model import Pin, PinLocation
from ..settings import Settings


def kustomize_images(environment: str, unit, cache, tree, settings: Settings) -> list:
    """(pin, None) per image a kustomization of ``unit`` (or its Flux Kustomization) sets with
    ``newTag``. kustomize applies an overlay's ``images:`` after those of what it includes, so the
    outermost entry for an image decides; two entries neither of which includes the other (two
    branches setting one image) are refused, naming both."""
    entries: dict = {}  # (file, document, path) -> [name, entry, ancestor files of each route]
    for kfile, document, chain in unit.build.kustomizations:
        doc = cache.get(tree, kfile).docs[document]
        found = doc.get("images") if isinstance(doc, dict) else None
        ancestors = frozenset(level.file for level in chain[:-1] if level.file)
        for i, entry in enumerate(found if isinstance(found, list) else ()):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                entries.setdefault((kfile, document, ("images", i)), [entry["name"], entry, []])[2].append(ancestors)
    if unit.kustomization is not None:  # Flux's own `spec.images`: around every kustomization
        found = dig(unit.kustomization.doc, "spec", "images")
        for i, entry in enumerate(found if isinstance(found, list) else ()):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                key = (unit.kustomization.file, unit.kustomization.index, ("spec", "images", i))
                entries[key] = [entry["name"], entry, [frozenset()]]
    by_name: dict = {}
    for key, (name, entry, routes) in entries.items():
        if "newTag" in entry or "digest" in entry:
            by_name.setdefault(name, []).append((key, entry, routes))
    pins = []
    for name, found in by_name.items():
        setters = {key[0] for key, _, _ in found}
        # An entry decides on a route where no kustomization around it sets the image again.
        deciding = [f for f in found if any(not (route & (setters - {f[0][0]})) for route in f[2])]
        (file, document, path), entry, _ = (deciding or found)[-1]
        app = (entry.get("newName") or name).rstrip("/").rsplit("/", 1)[-1]
        repo = str(entry.get("newName") or name)
        tag = entry.get("newTag")
        text = None if tag is None else str(tag)
        refusal = ""
        if entry.get("digest") or (text is not None and "@" in text):
            refusal = f"a digest (`digest:` of image `{name}` in `{file}`), which Ferry does not set"
        elif len(deciding) > 1:
            refusal = (f"image `{name}` set in {len(deciding)} kustomizations none of which includes "
                       "the others (" + ", ".join(f"`{f[0][0]}`" for f in deciding) + ")")
        loc = PinLocation(file, document, path + ("newTag",)) if text is not None else None
        pins.append((Pin(app=app, environment=environment, version=text, is_range=False,
                         location=loc, kind="kustomize-image", chart=repo, release_file=file,
                         source=location(repo, settings), source_url=repo, refusal=refusal,
                         part="image"), None))
    return pins
