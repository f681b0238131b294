"""Flux's postBuild variable substitution (kustomize-controller's envsubst), as pure functions:
what a Kustomization's variables are, where each is written, and what a text becomes.

Variables come from ``spec.postBuild.substitute`` (which wins) and ``substituteFrom`` ConfigMaps
and Secrets (later ones win); a Secret is never read, so what may come from one is unknown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .manifests import dig
from ..model import PinLocation

SUBSTITUTE_SWITCH = "kustomize.toolkit.fluxcd.io/substitute"


@dataclass(frozen=True)
class Variable:
    """One postBuild variable as Flux would substitute it."""

    name: str
    value: Optional[str]  # None: unknown to Ferry (it may come from a Secret)
    location: Optional[PinLocation]  # its one line, when it is written literally in one place
    where: str  # for people: "spec.postBuild.substitute of Kustomization flux-system/apps"


@dataclass(frozen=True)
class Source:
    """A ``substituteFrom`` entry: a ConfigMap's variables, or a Secret Ferry does not read."""

    description: str
    variables: dict  # name -> Variable; empty for a Secret
    readable: bool = True
    at: Optional[tuple] = None  # (file, document) of the ConfigMap, as written


@dataclass(frozen=True)
class Variables:
    """The variables of one Flux Kustomization, resolved the way Flux resolves them."""

    inline: dict = field(default_factory=dict)  # name -> Variable (`substitute`, wins)
    sources: tuple = ()  # Source, in `substituteFrom` order: later ones overwrite earlier ones
    always: bool = False  # `substituteStrategy: Always`

    @property
    def enabled(self) -> bool:
        # Flux substitutes only when at least one variable is available, unless told Always.
        return self.always or bool(self.inline) or any(
            s.variables or not s.readable for s in self.sources)

    def resolve(self, name: str):
        """The ``Variable`` for ``name``; UNDEFINED when nothing defines it."""
        if name in self.inline:
            return self.inline[name]
        for source in reversed(self.sources):
            if not source.readable:
                return Variable(name, None, None, f"{source.description}, which Ferry never reads")
            if name in source.variables:
                return source.variables[name]
        return UNDEFINED


UNDEFINED = Variable("", None, None, "nothing defines it")
NO_VARIABLES = Variables()

# envsubst as Flux uses it: `${name}`, `${name:=default}` (also `:-`, `=`, `-`); `$${` escapes.
_EXPRESSION = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_SIMPLE = re.compile(r"^([_A-Za-z][_A-Za-z0-9]*)(?:(:?[=-])(.*))?$", re.S)


@dataclass(frozen=True)
class Substituted:
    text: Optional[str]  # the value Flux applies; None when Ferry cannot know it
    variables: tuple  # names referenced
    whole: Optional[str] = None  # the one variable the whole text is, when it is just that
    default: Optional[str] = None  # the default of that one expression, when written
    unknown: str = ""  # why the value cannot be known


def substitute(text: str, variables: Variables) -> Substituted:
    """``text`` after Flux's postBuild substitution with ``variables``."""
    if "$" not in text or not variables.enabled:
        return Substituted(text, ())
    names, out, unknown, last = [], [], "", 0
    matches = list(_EXPRESSION.finditer(text))
    for m in matches:
        out.append(text[last:m.start()])
        last = m.end()
        if m.group(0) == "$${":
            out.append("${")
            continue
        simple = _SIMPLE.match(m.group(1))
        if simple is None:
            unknown = unknown or f"`{m.group(0)}`, an expression Ferry does not evaluate"
            continue
        name, operator, default = simple.groups()
        names.append(name)
        var = variables.resolve(name)
        if var is UNDEFINED or (operator and operator.startswith(":") and var.value == ""):
            out.append(default if operator else "")
        elif var.value is None:
            unknown = unknown or f"`${{{name}}}`, which may come from {var.where}"
        else:
            out.append(var.value)
    out.append(text[last:])
    exprs = [m for m in matches if m.group(0) != "$${"]
    whole = None
    default = None
    if len(exprs) == 1 and exprs[0].span() == (0, len(text)) and names:
        whole = names[0]
        simple = _SIMPLE.match(exprs[0].group(1))
        default = simple.group(3) if simple and simple.group(2) else None
    if unknown:
        return Substituted(None, tuple(names), whole, default, unknown)
    return Substituted("".join(out), tuple(names), whole, default)


def references(text: str) -> list:
    """The variable names ``text`` refers to (escapes left out)."""
    found = []
    for m in _EXPRESSION.finditer(text):
        if m.group(0) != "$${":
            simple = _SIMPLE.match(m.group(1))
            found.append(simple.group(1) if simple else m.group(1))
    return found


def substitute_doc(doc, variables: Variables):
    """``doc`` with every string substituted (unknown values left as written); copies only
    along the paths that change, as the parsed documents are shared."""
    if isinstance(doc, str):
        if "${" not in doc:
            return doc
        result = substitute(doc, variables).text
        return doc if result is None else result
    if isinstance(doc, dict):
        changed = {k: substitute_doc(v, variables) for k, v in doc.items()}
        return changed if any(changed[k] is not v for k, v in doc.items()) else doc
    if isinstance(doc, list):
        changed = [substitute_doc(v, variables) for v in doc]
        return changed if any(a is not b for a, b in zip(changed, doc)) else doc
    return doc


def substitution_disabled(doc: dict) -> bool:
    for meta in ("labels", "annotations"):
        value = dig(doc, "metadata", meta, SUBSTITUTE_SWITCH)
        if isinstance(value, str) and value.lower() == "disabled":
            return True
    return False
