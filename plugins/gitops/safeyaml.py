"""One way to read YAML and JSON that Ferry did not write: manifests and values in Git, Helm
repository indexes, registry JSON, webhook bodies, chart files.

Every read is bounded before it can cost much, and a read that passes no bound is one
``UnreadableDocument`` naming its source:

- size: at most ``Limits.bytes`` of text;
- nesting: at most ``Limits.depth`` levels of mappings and sequences (callers recurse over the
  data: deeper would be a ``RecursionError`` somewhere else, later);
- aliases: at most ``Limits.aliases`` alias uses in a stream, which together may repeat at most
  ``Limits.expansion`` nodes and characters. The size of each anchored node is known when it
  closes, so an alias is priced before anything is built: a 0.6 KB "billion laughs" stops at its
  sixth line. The data built here shares an aliased value instead of copying it, but callers
  print, compare and copy it: an unbounded expansion would be theirs;
- an alias inside its own anchor (data that contains itself) is refused, as Flux refuses it.

Anchors behave as in Flux's parser (go-yaml): an anchor may be defined again, and an alias names
the latest definition before it (libyaml's composer would refuse the file).

Plain data is built straight from libyaml's events (PyYAML's binding): about four times faster
than a constructor, which matters for discovery (thousands of files) and for Helm indexes (tens of
MB). Scalars stay the text written (``1.10`` is not 1.1) but for null and booleans. When types
matter (values shown in a diff) or positions do (the editor), ``load_typed`` and
``load_round_trip`` run ruamel's constructors after the same bounded pass.
"""
from __future__ import annotations

import json
import re
import sys
import warnings
from dataclasses import dataclass
from itertools import accumulate
from typing import Optional, Union

import yaml  # PyYAML for events: libyaml 0.2.6 (ruamel.yaml.clib carries 0.1.7, which refuses `[https://x]`)
from ruamel.yaml import YAML

from .errors import UnreadableDocument

try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML without libyaml: its pure-Python parser gives the same events
    CParser = None

MAX_BYTES = 16 * 1024 * 1024  # a Kubernetes object is at most 1.5 MB; a file of many is rarely 16
MAX_DEPTH = 100  # manifests nest about 15 levels; callers recurse up to ~5 frames a level
MAX_ALIASES = 10_000
MAX_EXPANSION = 1_000_000  # nodes and characters aliases may repeat, in one stream


@dataclass(frozen=True)
class Limits:
    bytes: int = MAX_BYTES
    depth: int = MAX_DEPTH
    aliases: int = MAX_ALIASES
    expansion: int = MAX_EXPANSION


LIMITS = Limits()
# Scalars up to this length are interned: the keys and values that repeat across ten thousand
# manifests (``apiVersion``, ``HelmRelease``, ``1.2.3``) are then held once, not per document.
INTERNED = 64


class _Bound(Exception):
    """A bound was passed: ``str()`` is the predicate after the source's name."""


# ---- YAML: plain data from events ------------------------------------------------------------

_NO_KEY = object()
_PLAIN = {"": None, "~": None, "null": None, "Null": None, "NULL": None,
          "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_TRUE = frozenset(("true", "True", "TRUE"))


def _scalar(event) -> object:
    tag = event.tag
    if tag is not None and tag != "!":
        if tag.endswith(":null"):
            return None
        if tag.endswith(":bool"):
            return event.value in _TRUE
        return event.value  # !!str, !!int, custom tags: the text as written
    if event.style or not event.implicit[0]:
        return event.value  # quoted
    return _PLAIN.get(event.value, event.value)


def _parse(text):
    """(next event, dispose) of a parser over ``text``."""
    if CParser is not None:
        parser = CParser(text)
        return parser.get_event, parser.dispose
    events = yaml.parse(text, Loader=yaml.BaseLoader)  # pragma: no cover - PyYAML without libyaml
    return events.__next__, events.close  # pragma: no cover


def events(text: str):
    """libyaml's events over ``text``, one at a time: where each scalar is written, for a caller
    that needs a file's tokens (the carry's proof), never a built value, so no alias is expanded."""
    next_event, dispose = _parse(text)
    try:
        while True:
            event = next_event()
            yield event
            if isinstance(event, yaml.StreamEndEvent):
                return
    finally:
        dispose()


def _build(text, limits: Limits, docs: list) -> None:
    """Append each document of ``text`` to ``docs`` as it completes; raise ``_Bound`` or the
    parser's error."""
    if len(text) > limits.bytes:
        raise _Bound(f"is larger than {_size(limits.bytes)} (Ferry's bound)")
    max_depth, max_aliases, max_expansion = limits.depth, limits.aliases, limits.expansion
    intern = sys.intern
    scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end, seq_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    stack: list = []  # [container, pending key (mappings) or None, anchor, size at its start]
    anchors: dict = {}  # name -> value
    sizes: dict = {}  # name -> expanded size of its value, once complete
    size = aliases = expansion = 0  # size: nodes and scalar characters so far, aliases expanded
    root = None
    next_event, dispose = _parse(text)
    try:
        while True:
            event = next_event()
            kind = type(event)
            if kind is scalar_event:
                written = event.value
                size += 1 + len(written)
                value = written if written not in _PLAIN and event.tag is None else _scalar(event)
                if type(value) is str and len(value) <= INTERNED:
                    value = intern(value)  # keys, kinds, versions: one string each, fleet-wide
                anchor = event.anchor
                if anchor:
                    anchors[anchor] = value
                    sizes[anchor] = 1 + len(written)
                frame = None
            elif kind is map_start or kind is seq_start:
                if len(stack) >= max_depth:
                    raise _Bound(f"nests deeper than {max_depth} levels (Ferry's bound)")
                size += 1
                value = {} if kind is map_start else []
                anchor = event.anchor
                if anchor:
                    anchors[anchor] = value
                    sizes.pop(anchor, None)  # open: an alias to it now would be to itself
                frame = [value, _NO_KEY if kind is map_start else None, anchor, size]
            elif kind is map_end or kind is seq_end:
                closed = stack.pop()
                if closed[2]:
                    sizes[closed[2]] = size - closed[3] + 1
                continue
            elif kind is alias_event:
                anchor = event.anchor
                if anchor not in anchors:
                    raise ValueError(f"found undefined alias *{anchor}")
                repeated = sizes.get(anchor)
                if repeated is None:
                    raise _Bound(f"has the YAML alias *{anchor} inside its own anchor: data that "
                                 "contains itself")
                aliases += 1
                expansion += repeated
                size += repeated
                if aliases > max_aliases:
                    raise _Bound(f"uses more than {max_aliases:,} YAML aliases (Ferry's bound)")
                if expansion > max_expansion:
                    raise _Bound(f"repeats more than {max_expansion:,} nodes and characters through "
                                 "YAML aliases (Ferry's bound: an alias bomb?)")
                value = anchors[anchor]
                frame = None
            elif kind is yaml.DocumentStartEvent:
                root, stack, anchors, sizes = None, [], {}, {}
                continue
            elif kind is yaml.DocumentEndEvent:
                docs.append(root)
                continue
            elif kind is yaml.StreamEndEvent:
                return
            else:
                continue
            if stack:
                top = stack[-1]
                container = top[0]
                if type(container) is list:
                    container.append(value)
                elif top[1] is _NO_KEY:
                    # A mapping or sequence as a key is never one Ferry looks up: an empty marker,
                    # not its text (an aliased one could be large).
                    top[1] = ("{}" if type(value) is dict else "[]") \
                        if isinstance(value, (dict, list)) else value
                else:
                    key = top[1]
                    top[1] = _NO_KEY
                    if key == "<<" and isinstance(value, (dict, list)):
                        for merged in (value if isinstance(value, list) else [value]):
                            if isinstance(merged, dict):
                                for k, v in merged.items():
                                    container.setdefault(k, v)
                    else:
                        container[key] = value
            else:
                root = value
            if frame is not None:
                stack.append(frame)
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(getattr(e, "problem", "")):  # libyaml's own bound, 1000
            raise _Bound(f"nests deeper than {max_depth} levels (Ferry's bound)") from None
        raise
    finally:
        dispose()


def parse_documents(text: str, limits: Limits = LIMITS) -> tuple[list, Optional[str]]:
    """Every document of a YAML stream as plain data, and what stopped the reading, if anything
    did (one phrase: ``line 3: …`` or the bound passed). Tolerant: documents before a problem are
    kept (their indexes are right); an empty document is ``None``, as in ruamel's ``load_all``."""
    docs: list = []
    try:
        _build(text, limits, docs)
    except _Bound as e:
        return docs, str(e)
    except Exception as e:  # any parser error: keep what came before it
        return docs, describe_error(e)
    return docs, None


def load_documents(text, source: str, limits: Limits = LIMITS) -> list:
    """Every document of ``text`` as plain data (scalars as written), or ``UnreadableDocument``."""
    docs: list = []
    _read(text, source, limits, docs)
    return docs


def load_yaml(text, source: str, limits: Limits = LIMITS):
    """The first document of ``text`` as plain data (None when there is none)."""
    docs = load_documents(text, source, limits)
    return docs[0] if docs else None


def load_typed(text: str, source: str, limits: Limits = LIMITS, version=None) -> list:
    """Every document through ruamel's safe constructor (``3`` is an int), after the bounds.
    ``version``: (1, 1) or (1, 2) to read as that YAML version."""
    _read(text, source, limits, [])
    try:
        return _construct(_typed(version, pure=False), text, source)
    except UnreadableDocument:
        # ruamel's libyaml (0.1.7) refuses an anchor defined twice and `[https://x]`, both of which
        # Flux reads: its pure-Python parser (five times slower) has the last word.
        return _construct(_typed(version, pure=True), text, source)


def _typed(version, pure: bool) -> YAML:
    loader = YAML(typ="safe", pure=pure)
    if version is not None:
        loader.version = version
    return loader


def load_round_trip(text: str, source: str, limits: Limits = LIMITS) -> list:
    """Every document as ruamel's round-trip tree (each value's line and column), after the bounds."""
    _read(text, source, limits, [])
    return _construct(YAML(), text, source)


def _read(text, source: str, limits: Limits, docs: list) -> None:
    try:
        _build(text, limits, docs)
    except _Bound as e:
        raise UnreadableDocument(source, str(e)) from None
    except Exception as e:
        raise UnreadableDocument(source, f"is not valid YAML ({describe_error(e)})") from None


def _construct(loader: YAML, text: str, source: str) -> list:
    try:
        with warnings.catch_warnings():  # an anchor defined twice; YAML 1.1 floats such as `1e3`
            warnings.simplefilter("ignore")
            return list(loader.load_all(text))
    except Exception as e:  # the constructors' own refusals: duplicate keys, bad timestamps, …
        raise UnreadableDocument(source, f"is not valid YAML ({describe_error(e)})") from None


def describe_error(error: Exception) -> str:
    """A YAML error in one line: where, and the problem."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or (str(error).splitlines() or [type(error).__name__])[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return f"{where}{problem}"


# ---- JSON --------------------------------------------------------------------------------------

# A string from its opening quote to its closing one or the end: it never fails, so no position
# is scanned twice (a body of unclosed strings stays linear).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: Union[bytes, str]) -> int:
    """How deeply ``text``'s JSON arrays and objects nest, strings aside; linear in its length
    (right for valid JSON; for invalid JSON ``json`` stops no deeper than this says). Bytes are
    read one character per byte (a request body, before anything knows it is text): brackets,
    quotes and backslashes are ASCII, so they stay where they were."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    opened = brackets.count("[") + brackets.count("{")
    if opened <= 1:
        return opened
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets))))


def load_json(data: Union[bytes, str], source: str, limits: Limits = LIMITS):
    """``data`` as JSON (UTF-8, -16 or -32 when bytes), within the size and depth bounds, or
    ``UnreadableDocument``."""
    if len(data) > limits.bytes:
        raise UnreadableDocument(source, f"is larger than {_size(limits.bytes)} (Ferry's bound)")
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode(json.detect_encoding(data))
        except UnicodeDecodeError:
            raise UnreadableDocument(source, "is not valid JSON (not UTF-8 text)") from None
    if json_depth(data) > limits.depth:
        raise UnreadableDocument(source, f"nests deeper than {limits.depth} levels (Ferry's bound)")
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise UnreadableDocument(source, f"is not valid JSON (line {e.lineno} column {e.colno}: "
                                         f"{e.msg})") from None
    except ValueError as e:  # e.g. an integer longer than Python converts
        raise UnreadableDocument(source, f"is not valid JSON ({str(e).splitlines()[0]})") from None
    except RecursionError:  # not reached within the depth bound; a 400, never a crash
        raise UnreadableDocument(source, "nests too deeply to read") from None


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"
