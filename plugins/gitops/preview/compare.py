"""What a chart upgrade brings to one environment, as a pure function of plain data: the two
charts (``charts.Chart``), the change notes of the versions in between, and the Helm values the
environment sets (as ``flux.helmvalues`` replays them from Git).

Nothing here downloads, reads Git or a clock: ``preview`` takes what the edges fetched and
returns a ``Preview`` that the chat renders short (a few lines next to a change) or whole.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional, Sequence

from ..versions import parse
from .charts import Chart
from .keys import Path, flatten, key_paths, shown_path
from .notes import chart_images, change_notes
from .schema import schema_errors

CRD_ADDED, CRD_CHANGED, CRD_REMOVED = "added", "changed", "removed"
DEFAULT_CHANGED, KEY_REMOVED = "default changed", "not in the new chart"


@dataclass(frozen=True)
class KeyFinding:
    """A key the environment sets, and what the new chart does to it."""

    path: Path  # the key as the environment sets it (or its ancestor the old chart knew)
    kind: str  # DEFAULT_CHANGED or KEY_REMOVED
    old: object = None  # the old default (DEFAULT_CHANGED)
    new: object = None  # the new default
    moved_to: Optional[Path] = None  # KEY_REMOVED: where a key of the same name appeared

    @property
    def key(self) -> str:
        return shown_path(self.path)


@dataclass(frozen=True)
class Preview:
    """One environment's upgrade of one chart: ``old`` → ``new`` and everything that differs."""

    app: str
    environment: str
    chart: str
    old_version: str
    new_version: str
    old_app_version: str = ""
    new_app_version: str = ""
    major: bool = False  # the major version changes (0.x: the minor)
    deprecated: bool = False  # the new version says `deprecated: true`
    kube_version: tuple = ()  # (old, new) when kubeVersion changed
    dependencies: tuple = ()  # ((name, old version or "", new version or ""), ...) that differ
    notes: tuple = ()  # Note, for every version after old up to new; security first
    links: tuple = ()  # the new chart's home and sources
    values_diff: str = ""  # unified diff of the two values.yaml
    findings: tuple = ()  # KeyFinding for the keys the environment sets
    schema_errors: tuple = ()  # (key path, problem) of the environment's values against the new schema
    crds: tuple = ()  # ((name, CRD_ADDED|CRD_CHANGED|CRD_REMOVED, detail), ...)
    images: tuple = ()  # ((name, old image or "", new image or ""), ...) that differ
    unknown: tuple = ()  # values Flux merges that Ferry does not know (Secrets, outside Git)
    problems: tuple = ()  # what could not be read: said, never guessed

    @property
    def removed_keys(self) -> tuple:
        return tuple(f for f in self.findings if f.kind == KEY_REMOVED)

    @property
    def changed_defaults(self) -> tuple:
        return tuple(f for f in self.findings if f.kind == DEFAULT_CHANGED)

    @property
    def clean(self) -> bool:
        """Nothing the environment sets breaks: no schema error, no key it sets that is gone."""
        return not self.schema_errors and not self.removed_keys

    @property
    def breaking_notes(self) -> tuple:
        return tuple(n for n in self.notes if n.breaking)


def preview(app: str, environment: str, old: Chart, new: Chart, between: Sequence[tuple] = (),
            values: Optional[dict] = None, unknown: Sequence[str] = ()) -> Preview:
    """``between``: ((version, its ``artifacthub.io/changes`` text), ...) of the versions after
    ``old`` and before ``new``, in any order; ``values``: what the environment sets (``None``: not
    known, so nothing is said about its keys)."""
    env_values = values if isinstance(values, dict) else {}
    texts = [(v, t) for v, t in between] + [(new.version, new.annotations.get("artifacthub.io/changes", ""))]
    notes, note_problems = change_notes(texts)
    errors, schema_problem = schema_errors(new.schema, env_values, new.values) if values is not None else ((), "")
    problems = list(old.problems) + list(new.problems) + note_problems + ([schema_problem] if schema_problem else [])
    return Preview(
        app=app, environment=environment, chart=str(new.metadata.get("name") or old.metadata.get("name") or app),
        old_version=old.version, new_version=new.version,
        old_app_version=old.app_version, new_app_version=new.app_version,
        major=major_jump(old.version, new.version),
        deprecated=new.metadata.get("deprecated") is True,
        kube_version=_changed(old.metadata.get("kubeVersion"), new.metadata.get("kubeVersion")),
        dependencies=dependency_changes(old.metadata, new.metadata),
        notes=notes,
        links=links(new.metadata),
        values_diff=values_diff(old, new),
        findings=key_findings(old.values, new.values, env_values) if values is not None else (),
        schema_errors=errors,
        crds=crd_changes(old.crds, new.crds),
        images=image_changes(chart_images(old.annotations), chart_images(new.annotations)),
        unknown=tuple(unknown),
        problems=tuple(problems),
    )


def major_jump(old: str, new: str) -> bool:
    """A change of major version (of minor under 0.x, where semver says anything may break)."""
    a, b = parse(old or ""), parse(new or "")
    if a is None or b is None:
        return False
    if a.major == 0 and b.major == 0:
        return a.minor != b.minor
    return a.major != b.major


def values_diff(old: Chart, new: Chart) -> str:
    return "".join(difflib.unified_diff(
        old.values_text.splitlines(keepends=True), new.values_text.splitlines(keepends=True),
        f"{old.version}/values.yaml", f"{new.version}/values.yaml"))


def key_findings(old_defaults: dict, new_defaults: dict, env_values: dict) -> tuple:
    """The keys the environment sets whose default changed, and those the new chart no longer
    has (the deepest key the old chart knew, with where a key of that name appeared, if one did).
    A key neither chart lists (a free-form map such as ``podAnnotations``) is the environment's own."""
    old_flat, new_flat = flatten(old_defaults), flatten(new_defaults)
    old_paths, new_paths = key_paths(old_defaults), key_paths(new_defaults)
    found, reported = [], set()
    for path in sorted(flatten(env_values), key=lambda p: tuple(map(str, p))):
        known = next((path[:i] for i in range(len(path), 0, -1) if path[:i] in old_paths), None)
        if known is None or known in reported:
            continue
        if known not in new_paths:
            reported.add(known)
            found.append(KeyFinding(known, KEY_REMOVED, old_flat.get(known), None,
                                    _moved(known, old_paths, new_paths)))
        elif known == path and path in old_flat and path in new_flat and old_flat[path] != new_flat[path]:
            found.append(KeyFinding(path, DEFAULT_CHANGED, old_flat[path], new_flat[path]))
    return tuple(found)


def _moved(path: Path, old_paths: set, new_paths: set) -> Optional[Path]:
    """The one new key of the same name the old chart did not have, if exactly one."""
    candidates = [p for p in new_paths - old_paths if p[-1] == path[-1]]
    return candidates[0] if len(candidates) == 1 else None


def dependency_changes(old: dict, new: dict) -> tuple:
    a, b = _dependencies(old), _dependencies(new)
    return tuple((name, a.get(name, ""), b.get(name, "")) for name in sorted(set(a) | set(b))
                 if a.get(name) != b.get(name))


def _dependencies(metadata: dict) -> dict:
    found = {}
    for item in metadata.get("dependencies") or ():
        if isinstance(item, dict) and item.get("name"):
            found[str(item.get("alias") or item["name"])] = str(item.get("version") or "*")
    return found


def crd_changes(old: dict, new: dict) -> tuple:
    found = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            found.append((name, CRD_ADDED, ", ".join(new[name])))
        elif name not in new:
            found.append((name, CRD_REMOVED, ", ".join(old[name])))
        elif old[name] != new[name]:
            added = [v for v in new[name] if v not in old[name]]
            gone = [v for v in old[name] if v not in new[name]]
            schema = [v for v in new[name] if v in old[name] and old[name][v] != new[name][v]]
            detail = "; ".join(part for part in (
                f"versions added {', '.join(added)}" if added else "",
                f"versions removed {', '.join(gone)}" if gone else "",
                f"schema of {', '.join(schema)} changed" if schema else "") if part)
            found.append((name, CRD_CHANGED, detail))
    return tuple(found)


def image_changes(old: dict, new: dict) -> tuple:
    return tuple((name, old.get(name, ""), new.get(name, "")) for name in sorted(set(old) | set(new))
                 if old.get(name) != new.get(name))


def links(metadata: dict) -> tuple:
    found = [str(metadata["home"])] if isinstance(metadata.get("home"), str) else []
    found += [str(s) for s in metadata.get("sources") or () if isinstance(s, str)]
    return tuple(dict.fromkeys(u for u in found if u.startswith(("https://", "http://"))))


def _changed(old, new) -> tuple:
    a, b = ("" if old is None else str(old)), ("" if new is None else str(new))
    return (a, b) if a != b else ()



