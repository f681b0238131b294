"""Whether a file's new text is its old text with only some pins' scalars rewritten, and the
values written there: the text half of ``carry``'s proof (see its doc). Every byte outside the
scalars' one-line tokens the same, each new token one scalar with no ``#``, the parsed documents
equal but for those values; a value inside an inline patch written byte for byte as Ferry's editor
writes it."""
from __future__ import annotations

import copy
from typing import Optional

from yaml import events as ev

from . import editing
from ..errors import FerryError
from ..flux.manifests import parse_documents
from ..model import PinLocation
from ..safeyaml import events


def rewritten(pins: list, old_text: str, new_text: str, marked: dict, parsed: Optional[tuple] = None
              ) -> Optional[dict]:
    """``{location: new text}`` when ``new_text`` is ``old_text`` with only the scalars of
    ``pins`` rewritten; else None. ``marked``: the file's setter markers (``images.markers``),
    the same in both texts when only those scalars changed; ``parsed``: the two texts' documents
    when parsed already (``DocumentCache.get``: never changed in place)."""
    if old_text.count("\n") != new_text.count("\n"):
        return None  # a one-line token rewritten keeps every line: lines came or went
    readers: dict = {}
    for pin in pins:
        readers.setdefault(pin.location, []).append(pin)
    moving = [location for location, at in readers.items()
              if not any(p.refusal or p.unknown for p in at) and not _read_otherwise(location, marked)]
    if parsed is None:
        (old_docs, old_error), (new_docs, new_error) = parse_documents(old_text), parse_documents(new_text)
    else:
        (old_docs, old_error), (new_docs, new_error) = ((p.docs, p.error) for p in parsed)
    if old_error or new_error or len(old_docs) != len(new_docs):
        return None
    values = {}
    for location in moving:
        if location.inner is not None and _at(new_docs, location) == _at(old_docs, location):
            continue  # the inline patch holding it is the same text: so is its value (not parsed again)
        value = _value(new_docs, location)
        if not isinstance(value, str) or not value or "$" in value:
            return None  # gone, or a substitution expression: discovery reads it another way
        values[location] = value
    if any(location.inner is not None for location in moving) or old_text.startswith("\ufeff"):
        # Ferry's editor writes the values that changed (each write reads the whole text again:
        # a file of thousands of inline patches is not written thousands of times for one)
        same = _as_ferry_writes(old_text, new_text, {location: value for location, value in values.items()
                                                     if value != _value(old_docs, location)})
    else:
        same = _same_but_tokens(old_text, new_text, moving)
        patched = copy.deepcopy(old_docs)
        same = same and all(_put(patched, location, value) for location, value in values.items()) \
            and patched == new_docs
    if not same:
        return None  # anything else changed: refused pins' lines, comments, keys, …
    return {location: value for location, value in values.items() if value != _value(old_docs, location)}


def _value(docs: list, location):
    """The scalar at ``location`` as discovery reads it (inside the inline patch, for one)."""
    value = _at(docs, location)
    if location.inner is not None and isinstance(value, str):
        return editing.read_version(value, _inner(location))
    return value


def _as_ferry_writes(old_text: str, new_text: str, values: dict) -> bool:
    """Whether Ferry's editor, writing ``values``, makes ``new_text`` of ``old_text``."""
    text = old_text
    for location, value in values.items():
        try:
            text = editing.set_version(text, location, value)
        except FerryError:  # a line the editor refuses to write is no line it wrote
            return False
    return text == new_text


def _same_but_tokens(old_text: str, new_text: str, locations: list) -> bool:
    """Whether the two texts differ only inside the one-line scalar tokens at ``locations``,
    each new token holding no comment."""
    old_spans = sorted(_span(old_text, location) or (-1, -1) for location in locations)
    new_spans = sorted(_span(new_text, location) or (-1, -1) for location in locations)
    if not locations or old_spans[0][0] < 0 or new_spans[0][0] < 0:
        return not locations and old_text == new_text
    old_at = new_at = 0
    for (old_start, old_end), (new_start, new_end) in zip(old_spans, new_spans):
        token = new_text[new_start:new_end]
        if old_text[old_at:old_start] != new_text[new_at:new_start] or "#" in token:
            return False
        old_at, new_at = old_end, new_end
    return old_text[old_at:] == new_text[new_at:]


def _span(text: str, location) -> Optional[tuple]:
    """(start, end) of the scalar written at ``location`` when it is one plain or quoted token on
    one line, not an anchor or an alias, and written there once; else None."""
    document, stack, found = -1, [], None
    try:
        for event in events(text):
            kind = type(event)
            if kind is ev.DocumentStartEvent:
                document, stack = document + 1, []
                continue
            if document != location.document:
                continue
            if kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                stack.pop()
                continue
            if kind not in (ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent, ev.AliasEvent):
                continue
            path = _node_path(stack, event)
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                stack.append([kind is ev.MappingStartEvent, path, _KEY if kind is ev.MappingStartEvent else 0])
            elif path == location.path:
                plain_or_quoted = kind is ev.ScalarEvent and (event.style or "") in ("", "'", '"')
                if found is not None or not plain_or_quoted or event.anchor \
                        or event.start_mark.line != event.end_mark.line:
                    return None
                found = (event.start_mark.index, event.end_mark.index)
    except Exception:  # not YAML: no token to find
        return None
    return found


_KEY, _COMPLEX = object(), object()  # a mapping waiting for its next key; a key that is no scalar


def _node_path(stack: list, event) -> Optional[tuple]:
    """The path of the node ``event`` starts (None inside a key), moving its parent on."""
    if not stack:
        return ()
    frame = stack[-1]
    mapping, parent, at = frame
    if not mapping:
        frame[2] += 1
        return None if parent is None else parent + (at,)
    if at is _KEY:  # this node is a key
        frame[2] = event.value if type(event) is ev.ScalarEvent else _COMPLEX
        return None
    frame[2] = _KEY
    return None if parent is None or at is _COMPLEX else parent + (at,)


def _inner(location):
    return PinLocation(location.file, location.inner[0], location.inner[1])


def _at(docs: list, location):
    node = docs[location.document] if location.document < len(docs) else None
    for step in location.path:
        if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return None
    return node


def _put(docs: list, location, value: str) -> bool:
    """Write ``value`` at ``location`` (a scalar of the documents themselves)."""
    *parents, last = location.path
    holder = _at(docs, PinLocation(location.file, location.document, tuple(parents)))
    if not (isinstance(holder, dict) and last in holder
            or isinstance(holder, list) and isinstance(last, int) and 0 <= last < len(holder)):
        return False
    holder[last] = value
    return True


def _read_otherwise(location, marked: dict) -> bool:
    """A setter marker makes the line more than a version: an image's repository or digest."""
    return location.inner is None and any(
        path == location.path and kind not in ("tag", "") for path, kind in marked.get(location.document, ()))
