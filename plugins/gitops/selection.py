"""Which rows and columns of the versions table a filter keeps (a pure function over pins).

``!versions team-a-*`` keeps the apps whose name matches the glob (fnmatch, case-insensitive),
``--env prod`` keeps one environment's column, ``--outdated`` keeps the apps that are behind in a
kept environment: pinned to an exact version older than the registry's newest release, or older
than what the previous environment of the promotion chain pins. Ranges, unknown and unpinned
versions are never "behind": Ferry cannot say which version they resolve to.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Mapping, Optional, Sequence

from gitops.model import Pin
from gitops.versions import older


@dataclass(frozen=True)
class Selection:
    pins: tuple  # the kept pins, in the inventory's order
    environments: tuple  # the kept columns, in promotion order
    apps: tuple  # the kept app names, sorted
    behind_registry: tuple  # kept apps with a kept pin older than the registry's newest release
    behind_previous: tuple  # kept apps with a kept pin older than the previous environment's


def exact(pin: Optional[Pin]) -> Optional[str]:
    """The one version ``pin`` holds, or None (absent, a range, unknown, no version field)."""
    if pin is None or pin.unknown or pin.is_range or not pin.version:
        return None
    return pin.version


def behind(pin: Pin, newest: Optional[str], previous: Optional[Pin]) -> tuple[bool, bool]:
    """(behind the registry's newest release, behind the previous environment's pin)."""
    version = exact(pin)
    return older(version, newest), older(version, exact(previous))


def select(pins: Sequence[Pin], chain: Sequence[str], newest: Mapping[str, Optional[str]],
           pattern: Optional[str] = None, outdated: bool = False,
           column: Optional[str] = None) -> Selection:
    """The pins a filter keeps. ``chain``: every environment name in promotion order (the previous
    environment of a column is taken from it even when only one column is kept); ``column``: a
    name of ``chain``; ``newest``: app -> the registry's newest release (or None)."""
    environments = tuple(e for e in chain if column is None or e == column)
    by_key = {(p.app, p.environment): p for p in pins}
    previous = {e: chain[i - 1] if i > 0 else None for i, e in enumerate(chain)}
    wanted = pattern.lower() if pattern else None
    kept, registry, chained = [], set(), set()
    for pin in pins:
        if pin.environment not in environments:
            continue
        if wanted is not None and not fnmatchcase(pin.app.lower(), wanted):
            continue
        before = previous.get(pin.environment)
        late_registry, late_chain = behind(pin, newest.get(pin.app),
                                           by_key.get((pin.app, before)) if before else None)
        if late_registry:
            registry.add(pin.app)
        if late_chain:
            chained.add(pin.app)
        kept.append(pin)
    if outdated:
        late = registry | chained
        kept = [p for p in kept if p.app in late]
    apps = tuple(sorted({p.app for p in kept}))
    return Selection(tuple(kept), environments, apps,
                     tuple(a for a in apps if a in registry), tuple(a for a in apps if a in chained))

