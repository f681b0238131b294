"""Carry an inventory forward from one commit to a newer one without discovering again.

Most commits to a Flux repository only bump chart versions (Ferry's, or a colleague's, or CI's).
When every YAML file that changed between two commits differs only in version scalars the old
inventory already knows, the new inventory is the old one with those versions read from the new
files. Anything else (a new app, changed values, a moved base) returns None: discover again.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Optional

from ..flux.manifests import YAML_SUFFIXES, FileTree, parse_documents
from ..versions import is_range


def changed_files(old: FileTree, new: FileTree) -> dict:
    """``{path: (old text or None, new text or None)}`` for every file whose content differs."""
    old_files, new_files = set(old.files()), set(new.files())
    changed = {}
    for path in old_files | new_files:
        before = old.blob_id(path) if path in old_files else None
        after = new.blob_id(path) if path in new_files else None
        if before != after:
            changed[path] = (old.read(path) if before else None, new.read(path) if after else None)
    return changed


def carry_forward(pins: tuple, changes: dict) -> Optional[tuple]:
    """The pins after ``changes``, or None when the changes are more than version bumps."""
    by_file: dict = {}
    for pin in pins:
        if pin.location is not None:
            by_file.setdefault(pin.location.file, []).append(pin)
    versions: dict = {}
    for path, (old_text, new_text) in changes.items():
        if not path.endswith(YAML_SUFFIXES):
            continue  # discovery reads YAML only
        located = by_file.get(path)
        if old_text is None or new_text is None or not located:
            return None
        (old_docs, old_error), (new_docs, new_error) = parse_documents(old_text), parse_documents(new_text)
        if old_error or new_error or len(old_docs) != len(new_docs):
            return None
        patched = copy.deepcopy(old_docs)
        for pin in located:
            written = _at(new_docs, pin.location)  # for an inline patch: the whole patch text
            if not isinstance(written, str) or not _put(patched, pin.location, written):
                return None
            value = written
            if pin.location.inner is not None:
                value = _inner_value(_at(old_docs, pin.location), written, pin.location.inner)
            if not isinstance(value, str):
                return None
            if pin.written_prefix:  # an image tag inside `repo:tag`: the repository must stay
                if not value.startswith(pin.written_prefix):
                    return None
                value = value[len(pin.written_prefix):]
            if pin.kind == "substitute" and pin.shared_by and value != pin.version:
                return None  # the variable feeds more than versions: names, values, …
            versions[pin.location] = value
        if patched != new_docs:
            return None
    return tuple(replace(p, version=versions[p.location], is_range=is_range(versions[p.location]))
                 if p.location in versions else p for p in pins)


def _inner_value(old_text, new_text: str, inner: tuple):
    """The version in an inline patch, when nothing else in that patch changed."""
    if not isinstance(old_text, str):
        return None
    (old_docs, old_error), (new_docs, new_error) = parse_documents(old_text), parse_documents(new_text)
    document, path = inner
    where = _Where(document, path)
    value = _at(new_docs, where)
    if old_error or new_error or len(old_docs) != len(new_docs) or not isinstance(value, str):
        return None
    if not _put(old_docs, where, value) or old_docs != new_docs:
        return None
    return value


class _Where:
    def __init__(self, document, path):
        self.document, self.path = document, path


def _at(docs: list, location):
    node = docs[location.document] if location.document < len(docs) else None
    for step in location.path:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return None
    return node


def _put(docs: list, location, value: str) -> bool:
    *parents, last = location.path
    holder = _at(docs, _Where(location.document, tuple(parents)))
    if isinstance(holder, dict) and last in holder or isinstance(holder, list) and isinstance(last, int) \
            and last < len(holder):
        holder[last] = value
        return True
    return False
