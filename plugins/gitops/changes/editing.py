"""Changing one version in one manifest: exactly one line changes, every other byte stays.

ruamel's round-trip loader tells where the value starts (line and column); the new text replaces
that one token in the raw text. Dumping the round-trip tree instead would re-indent and re-space
real files. Every edit is checked by parsing the result: the field holds the new version and
nothing else changed, or the edit is refused with ``NotEditable``.
"""
from __future__ import annotations

import difflib
import re
from typing import Optional

from ruamel.yaml.comments import CommentedBase
from ruamel.yaml.scalarstring import LiteralScalarString

from ..errors import NotEditable, UnreadableDocument
from ..flux.manifests import parse_documents
from ..safeyaml import load_round_trip, load_typed
from ..model import PinLocation

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what YAML 1.2 (and ruamel's line counter) breaks on


def read_version(text: str, location: PinLocation) -> Optional[str]:
    """The version text at ``location`` as written (``1.10`` stays ``"1.10"``), or None.

    Never raises on broken YAML: history reads old revisions, some of which may not parse.
    """
    docs, _ = parse_documents(text)
    if location.document >= len(docs):
        return None
    node = docs[location.document]
    for key in location.path:
        node = _child(node, key)
        if node is _MISSING:
            return None
    if location.inner is not None:
        if not isinstance(node, str):
            return None
        return read_version(node, _inner(location))
    if node is None or isinstance(node, (bool, dict, list)):
        return None
    return str(node)


def set_version(text: str, location: PinLocation, new: str) -> str:
    """``text`` with the value at ``location`` replaced by ``new``, one line changed."""
    field = _dotted(location.path)
    where = f"`{field}` in `{location.file}`"
    gone = f"`{field}` is not in `{location.file}` any more."
    if not isinstance(new, str) or not new or _LINE_BREAK.search(new):
        raise NotEditable(f"Cannot write {new!r} to {where}: a version is one line of text.")
    if location.inner is not None:
        return _set_inline(text, location, new)
    old_value = read_version(text, location)

    docs = _round_trip(text, location)
    if location.document >= len(docs) or not location.path:
        raise NotEditable(gone)
    parent = docs[location.document]
    for key in location.path[:-1]:
        parent = _child(parent, key)
        if parent is _MISSING:
            raise NotEditable(gone)
    last = location.path[-1]
    value = _child(parent, last)
    if value is _MISSING or not isinstance(parent, CommentedBase):
        raise NotEditable(gone)
    if isinstance(value, (dict, list)):
        raise NotEditable(f"{where} holds a {'mapping' if isinstance(value, dict) else 'list'}, "
                          "not a version.")
    if old_value is None:
        raise NotEditable(f"{where} is empty: Ferry changes a version, it does not add one.")
    if old_value == new:
        return text

    try:
        line, column = parent.lc.item(last) if isinstance(parent, list) else parent.lc.value(last)
    except (KeyError, TypeError, AttributeError):  # e.g. the value comes through a `<<:` merge key
        raise NotEditable(f"{where} is not written in that place of the file (a YAML merge key?): "
                          "change it where it is written.") from None
    flow = bool(parent.fa.flow_style())
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
    if line >= len(starts):
        raise NotEditable(f"Cannot find {where} in the text of the file.")
    bom = 1 if line == 0 and text.startswith("\ufeff") else 0  # ruamel counts columns after a BOM
    line_end = starts[line + 1] if line + 1 < len(starts) else len(text)
    row = text[starts[line]:line_end]
    row_text = row.rstrip("\r\n")
    start, end, style = _token(row_text, column + bom, flow, where, old_value)
    token = _render(new, style, row_text[start:end], flow)
    new_row = row_text[:start] + token + row_text[end:] + row[len(row_text):]
    new_text = text[:starts[line]] + new_row + text[line_end:]
    _verify(text, new_text, location, new, where)
    return new_text


def _inner(location: PinLocation) -> PinLocation:
    return PinLocation(location.file, location.inner[0], location.inner[1])


def _set_inline(text: str, location: PinLocation, new: str) -> str:
    """Change a version inside YAML written in a literal block (``patch: |``): the block's lines
    are the file's lines, indented, so the one changed line of the patch is one line of the file."""
    where = f"the inline patch at `{_dotted(location.path)}` in `{location.file}`"
    docs = _round_trip(text, location)
    parent = docs[location.document] if location.document < len(docs) else _MISSING
    for key in location.path[:-1]:
        parent = _child(parent, key)
    last = location.path[-1] if location.path else None
    block = _child(parent, last) if parent is not _MISSING and last is not None else _MISSING
    if not isinstance(block, LiteralScalarString):
        raise NotEditable(f"{where} is not a literal block (`|`): edit it by hand.")
    old_inner = str(block)
    new_inner = set_version(old_inner, _inner(location), new)
    if new_inner == old_inner:
        return text
    old_lines, new_lines = old_inner.split("\n"), new_inner.split("\n")
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    if len(old_lines) != len(new_lines) or len(changed) != 1:
        raise NotEditable(f"Changing {where} would touch more than one line: refused.")
    try:
        line, _ = parent.lc.item(last) if isinstance(parent, list) else parent.lc.value(last)
    except (KeyError, TypeError, AttributeError):
        raise NotEditable(f"Cannot find {where} in the text of the file.") from None
    rows = _lines(text)
    at = line + 1 + changed[0]
    row = rows[at] if at < len(rows) else ""
    content = row.rstrip("\r\n")
    old_line = old_lines[changed[0]]
    indent = content[:len(content) - len(old_line)]
    if not content.endswith(old_line) or indent.strip():
        raise NotEditable(f"Cannot find {where} line by line in the file: edit it by hand.")
    rows[at] = indent + new_lines[changed[0]] + row[len(content):]
    new_text = "".join(rows)
    _verify(text, new_text, location, new_inner, where, inline=True)
    return new_text


def unified_diff(path: str, old_text: str, new_text: str) -> str:
    """``diff -u`` of one file, with ``a/`` and ``b/`` headers; "" when nothing changed."""
    lines = difflib.unified_diff(_lines(old_text), _lines(new_text), f"a/{path}", f"b/{path}")
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# ---- finding and writing the token ------------------------------------------------------------

def _token(row: str, column: int, flow: bool, where: str, old_value: str):
    """(start, end, style) of the scalar starting at ``column`` of ``row``."""
    start = column
    head = row[start:start + 1]
    if head == "*":
        raise NotEditable(f"{where} is an alias (`{row[start:].split()[0]}`): change the anchored "
                          "value instead.")
    if head == "&":  # ruamel reports an alias at its anchor, so this covers both
        raise NotEditable(f"{where} is shared through the YAML anchor `{row[start:].split()[0]}`: "
                          "changing it would change every alias of it.")
    if head == "!":  # a tag such as `!!str 1.10`: the value follows it
        match = re.match(r"!\S*\s+", row[start:])
        if not match:
            raise NotEditable(f"{where} is a tagged value Ferry cannot read.")
        start += match.end()
        head = row[start:start + 1]
    if head in ("|", ">"):
        raise NotEditable(f"{where} is a block scalar (`{head}`): Ferry only edits one-line values.")
    if head == '"':
        end = _closing_double(row, start)
        style = '"'
        content = _unescape_double(row[start + 1:end - 1]) if end else None
    elif head == "'":
        end = _closing_single(row, start)
        style = "'"
        content = row[start + 1:end - 1].replace("''", "'") if end else None
    else:
        end = _plain_end(row, start, flow)
        style = ""
        content = row[start:end]
    if not end or content != old_value:
        raise NotEditable(f"{where} spans several lines: Ferry only edits one-line values.")
    return start, end, style


def _closing_double(row: str, start: int) -> int:
    i = start + 1
    while i < len(row):
        if row[i] == "\\":
            i += 2
            continue
        if row[i] == '"':
            return i + 1
        i += 1
    return 0


def _closing_single(row: str, start: int) -> int:
    i = start + 1
    while i < len(row):
        if row[i] == "'":
            if row[i + 1:i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return 0


def _plain_end(row: str, start: int, flow: bool) -> int:
    end = len(row)
    comment = re.search(r"[ \t]#", row[start:])
    if comment:
        end = start + comment.start()
    if flow:
        stop = re.search(r"[,\]}]|:[ \t]", row[start:end])
        if stop:
            end = start + stop.start()
    while end > start and row[end - 1] in " \t":
        end -= 1
    return end


_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
            "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
            "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}


def _unescape_double(body: str) -> Optional[str]:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        code = body[i + 1:i + 2]
        width = {"x": 2, "u": 4, "U": 8}.get(code)
        if width:
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        elif code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        else:
            return None
    return "".join(out)


def _render(new: str, style: str, old_token: str, flow: bool) -> str:
    if style == "'":
        return "'" + new.replace("'", "''") + "'"
    if style == '"' or not _plain_safe(new, flow):
        return '"' + new.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return new


def _plain_safe(value: str, flow: bool) -> bool:
    """Whether ``value`` written plain reads back as that same string (not 1.1, true, null, …)."""
    if flow and re.search(r"[,\[\]{}]", value):
        return False
    if value != value.strip() or re.search(r"[ \t]#|:[ \t]|:$", value):
        return False
    # Kubernetes reads YAML 1.1 (`on`, `yes`, `1_0` are not strings there), ruamel 1.2: both.
    for version in ((1, 1), (1, 2)):
        try:
            loaded = load_typed(f"k: {value}\n", "the version", version=version)
        except UnreadableDocument:  # does not load plain: the caller quotes it, which is always safe
            return False
        if not (loaded and isinstance(loaded[0], dict) and loaded[0].get("k") == value):
            return False
    return True


# ---- checking the result ---------------------------------------------------------------------

def _verify(old_text: str, new_text: str, location: PinLocation, new: str, where: str,
            inline: bool = False) -> None:
    gone = f"`{_dotted(location.path)}` is not in `{location.file}` any more."
    old_lines, new_lines = _lines(old_text), _lines(new_text)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    if len(old_lines) != len(new_lines) or len(changed) != 1:
        raise NotEditable(f"Changing {where} would touch more than one line: refused.")
    try:
        after = load_typed(new_text, f"`{location.file}`")
        before = load_typed(old_text, f"`{location.file}`")
    except UnreadableDocument:
        raise NotEditable(f"Changing {where} would make `{location.file}` invalid YAML: refused.") from None
    node = after[location.document] if location.document < len(after) else None
    for key in location.path:
        node = _child(node, key)
    if node != new or not isinstance(node, str):
        if inline:
            raise NotEditable(f"Changing {where} would not read back as written: refused.")
        raise NotEditable(f"Writing `{new}` to {where} would not read back as `{new}`: refused.")
    try:
        expected = _with(before, (location.document,) + tuple(location.path), new)
    except (KeyError, IndexError, TypeError):
        raise NotEditable(gone) from None
    if _comparable(expected) != _comparable(after):
        raise NotEditable(f"Changing {where} would change more than that value: refused.")


def _with(node, path: tuple, value):
    """A copy of ``node`` with the value at ``path`` replaced."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, key: _with(node[key], rest, value)}
    copied = list(node)
    copied[key] = _with(node[key], rest, value)
    return copied


def _comparable(node):
    # NaN is not equal to itself; compare floats by their text.
    if isinstance(node, dict):
        return {k: _comparable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_comparable(v) for v in node]
    if isinstance(node, float):
        return repr(node)
    return node


# ---- helpers ---------------------------------------------------------------------------------

_MISSING = object()


def _child(node, key):
    if isinstance(node, dict):
        return node[key] if key in node else _MISSING
    if isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
        return node[key]
    return _MISSING


def _dotted(path: tuple) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _lines(text: str) -> list:
    """Lines with their endings, split on newlines only (``splitlines`` also splits on \\x0b…)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _round_trip(text: str, location: PinLocation) -> list:
    try:
        return load_round_trip(text, f"`{location.file}`")
    except UnreadableDocument as e:
        raise NotEditable(f"`{location.file}` {e.problem}: fix it first.") from None
