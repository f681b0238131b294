"""Artifact Hub's annotations of a chart, read as plain data: ``artifacthub.io/changes`` (the
change notes of one version) and ``artifacthub.io/images`` (the images it runs).

``artifacthub.io/changes`` is YAML in a string, in either of Artifact Hub's two forms: a list of
plain strings, or a list of ``{kind, description, links: [{name, url}]}`` where kind is one of
added, changed, deprecated, removed, fixed, security. Notes are ordered security first, then the
newest version first, then removals and deprecations before the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnreadableDocument
from ..safeyaml import load_typed
from ..versions import parse

CHANGES, IMAGES = "artifacthub.io/changes", "artifacthub.io/images"
KINDS = ("security", "removed", "deprecated", "changed", "added", "fixed")
BREAKING = ("security", "removed", "deprecated")


@dataclass(frozen=True)
class Note:
    version: str
    kind: str  # one of KINDS, or "" for a plain string note
    text: str
    links: tuple = ()  # ((name, url), ...)

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING or "breaking" in self.text.lower()


def change_notes(texts) -> tuple:
    """(notes, problems) from ((version, annotation text), ...)."""
    notes, problems = [], []
    for version, text in texts:
        if not text or not str(text).strip():
            continue
        items = _list(text, f"The change notes (`{CHANGES}`) of {version}", problems)
        for item in items:
            note = _note(version, item)
            if note is not None:
                notes.append(note)
    notes.sort(key=_order)
    return tuple(notes), problems


def chart_images(annotations: dict) -> dict:
    """{name: image reference} from ``artifacthub.io/images`` (a problem reads as no images)."""
    text = annotations.get(IMAGES, "")
    found = {}
    for item in _list(text, IMAGES, []) if text else ():
        if isinstance(item, dict) and isinstance(item.get("image"), str):
            image = item["image"].strip()
            name = str(item.get("name") or image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0])
            found[name] = image
    return found


def _note(version: str, item):
    if isinstance(item, (str, int, float)) and str(item).strip():
        return Note(version, "", " ".join(str(item).split()))
    if not isinstance(item, dict) or not str(item.get("description") or "").strip():
        return None
    kind = str(item.get("kind") or "").strip().lower()
    links = tuple((str(link.get("name") or link.get("url")), str(link["url"]))
                  for link in item.get("links") or () if isinstance(link, dict)
                  and isinstance(link.get("url"), str) and link["url"].startswith(("https://", "http://")))
    return Note(version, kind if kind in KINDS else "", " ".join(str(item["description"]).split()), links)


def _order(note: Note) -> tuple:
    parsed = parse(note.version)
    newest_first = (-parsed.major, -parsed.minor, -parsed.patch, str(parsed.prerelease or "~")) \
        if parsed is not None else (0, 0, 0, note.version)
    kind = KINDS.index(note.kind) if note.kind in KINDS else len(KINDS)
    return (note.kind != "security", newest_first, kind)


def _list(text, source: str, problems: list) -> list:
    try:
        docs = load_typed(str(text), source)
    except UnreadableDocument as e:
        problems.append(e.message)
        return []
    found = docs[0] if docs else None
    if found is None:
        return []
    if not isinstance(found, list):
        problems.append(f"{source} is not a list: Artifact Hub's form is a list of notes.")
        return []
    return found
