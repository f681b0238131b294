"""Kustomizations' `images:` changed, each environment's kustomize image pins made again from the
kustomizations its builds walked (``flux.image_lists``): what the bot then holds equals a fresh
discovery, and what the proof cannot cover builds the environment again (and equals a fresh
discovery too). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

from gitops.changes.carry import reimage
from tests import following
from tests.test_refold import fleet, settings
from tests.test_resource_lists import APPS

QA = "apps/qa/kustomization.yaml"
BASE = "apps/qa/web/kustomization.yaml"


def followed(before: dict, after: dict):
    return following.followed(reimage, before, after, settings())


def image(held, app: str, env: str = "qa"):
    return [(p.version, p.location.file if p.location else None, p.refusal)
            for p in held.pins if (p.environment, p.app, p.part) == (env, app, "image") and p.kind == "kustomize-image"]


def test_an_image_entry_added_edited_and_taken_away():
    files = fleet(APPS)
    added = {**files, QA: files[QA] + "images:\n  - name: ghcr.io/acme/web\n    newTag: 4.0.0\n"}
    held = followed(files, added)
    assert held is not None and image(held, "web") == [("4.0.0", QA, "")]
    edited = {**added, QA: added[QA].replace("newTag: 4.0.0", "newName: ghcr.io/acme/web2\n    newTag: 4.1.0")}
    held = followed(added, edited)
    assert held is not None and image(held, "web2") == [("4.1.0", QA, "")]
    assert followed(edited, files) is not None and not image(followed(edited, files), "web2")


def test_the_outermost_entry_decides_and_two_branches_are_refused():
    """`web` includes its own kustomization setting the image: qa's entry, around it, decides;
    a sibling setting it too is refused, naming both."""
    files = fleet(APPS)
    files[BASE] = "resources:\n  - ../app0-app0.yaml\nimages:\n  - name: ghcr.io/acme/web\n    newTag: 1.0.0\n"
    files[QA] = files[QA].replace("  - app0-app0.yaml\n", "  - web\n")
    outer = {**files, QA: files[QA] + "images:\n  - name: ghcr.io/acme/web\n    newTag: 2.0.0\n"}
    held = followed(files, outer)
    assert held is not None and image(held, "web") == [("2.0.0", QA, "")]
    sibling = "apps/qa/other/kustomization.yaml"
    files[sibling] = "resources:\n  - ../app1-app1.yaml\n"
    files[QA] = files[QA].replace("  - app1-app1.yaml\n", "  - other\n")
    twice = {**files, sibling: files[sibling] + "images:\n  - name: ghcr.io/acme/web\n    newTag: 3.0.0\n"}
    held = followed(files, twice)
    assert held is not None and "none of which includes the others" in image(held, "web")[0][2]


def test_another_key_or_a_file_added_build_it_again():
    files = fleet(APPS)
    entry = "images:\n  - name: ghcr.io/acme/web\n    newTag: 4.0.0\n"
    assert followed(files, {**files, QA: files[QA] + entry + "namePrefix: x-\n"}) is None
    assert followed(files, {**files, QA: files[QA] + entry, "apps/qa/notes.yaml": "x: 1\n"}) is None


def test_an_entry_beside_replacements():
    """kustomize replacements act on objects, `images:` entries are the kustomization's own: qa's
    builds keep what they make, and its image pins are made again from them."""
    files, entry = fleet(APPS), "images:\n  - name: ghcr.io/acme/web\n    newTag: 4.0.0\n"
    files[QA] += ("replacements:\n  - source:\n      kind: HelmRelease\n      name: app1\n"
                  "      fieldPath: spec.values.replicaCount\n    targets:\n      - select:\n"
                  "          kind: HelmRelease\n          name: app2\n        fieldPaths:\n"
                  "          - spec.values.copies\n")
    held = followed(files, {**files, QA: files[QA] + entry})
    assert held is not None and image(held, "web") == [("4.0.0", QA, "")]
