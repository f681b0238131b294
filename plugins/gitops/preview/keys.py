"""Helm values as key paths: ``{"ingress": {"hosts": [...]}}`` is the path ``("ingress", "hosts")``
with its list. Helm merges maps key by key and replaces anything else whole (a list, a scalar),
so a path ends at the first value that is not a non-empty map."""
from __future__ import annotations

import re

Path = tuple  # the keys from the top, as written

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def flatten(values) -> dict:
    """{path: leaf} of nested maps; an empty map is a leaf (Helm keeps it: ``podAnnotations: {}``)."""
    flat: dict = {}
    stack = [((), values)] if isinstance(values, dict) else []
    while stack:
        path, node = stack.pop()
        for key, value in node.items():
            here = path + (key,)
            if isinstance(value, dict) and value:
                stack.append((here, value))
            else:
                flat[here] = value
    return flat


def unflatten(flat: dict) -> dict:
    """The nested maps ``flat`` was made from (the inverse of ``flatten``)."""
    values: dict = {}
    for path, leaf in flat.items():
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf
    return values


def key_paths(values) -> set:
    """Every path of the values, maps along the way included."""
    return {path[:i] for path in flatten(values) for i in range(1, len(path) + 1)}


def shown_path(path: Path) -> str:
    """``ingress.hosts``; a key that is not a plain name in brackets: ``podLabels["app.kubernetes.io/name"]``."""
    out = ""
    for key in path:
        text = str(key)
        if _PLAIN.match(text):
            out += f".{text}" if out else text
        else:
            out += '["' + text.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out
