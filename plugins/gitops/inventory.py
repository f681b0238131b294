"""The inventory: every pin of every environment at one commit, with the lookups kept on it, and
how it moves pin by pin to a commit that changed only versions (``changes.carry``)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from .identity import Release
from .model import Pin


@dataclass(frozen=True)
class Inventory:
    """Every pin of every environment at one commit."""

    commit: str
    pins: tuple  # tuple[Pin, ...]: the pin each app is tracked by, ordered by environment then app
    problems: tuple = ()  # tuple[Problem, ...]: what discovery could not follow
    others: tuple = ()  # tuple[Pin, ...]: the apps' other parts (chart or image tags not tracked)

    def parts(self, app: str, environment: str) -> list:
        """Every pin of ``app`` in ``environment``: the tracked one first."""
        return list(self._parts.get((app, environment), ()))

    def apps(self) -> list[str]:
        return list(self._apps)

    def app_named(self, name: str) -> Optional[str]:
        """The app as this inventory spells it, matched case-insensitively; None when unknown."""
        return self._by_lower.get((name or "").lower())

    def in_environment(self, environment: str) -> list[Pin]:
        return [p for p in self.pins if p.environment == environment]

    def find(self, app: str, environment: str) -> Optional[Pin]:
        parts = self._parts.get((app, environment))
        return parts[0] if parts else None

    def released(self, release: "Release") -> Optional[Pin]:
        """The pin of ``release`` (one part), whatever its app is called now (any namespace: by name)."""
        for p in self.pins + self.others:
            if release.covers(p.release) and release.part:
                return p
        return None

    # An inventory is kept and asked many times per commit: indexes built once, on first use
    # (written to the instance's __dict__, which a frozen dataclass allows).
    @cached_property
    def _parts(self) -> dict:
        found: dict = {}
        for p in self.pins + self.others:  # the tracked pin first in each list
            found.setdefault((p.app, p.environment), []).append(p)
        return found

    @cached_property
    def _apps(self) -> tuple:
        return tuple(sorted({p.app for p in self.pins}))

    @cached_property
    def _by_lower(self) -> dict:
        return {a.lower(): a for a in self._apps}

    @cached_property
    def _positions(self) -> dict:
        """{id(pin): its index in ``pins``, or -1 - its index in ``others``}: the pins held are
        alive, so their ids are unique (one int each: 50,000 of them at 10,000 apps)."""
        found = {id(p): i for i, p in enumerate(self.pins)}
        found.update((id(p), -1 - i) for i, p in enumerate(self.others))
        return found

    def carried(self, commit: str, moves) -> "Inventory":
        """This inventory at ``commit``, where each pin of ``moves`` ((pin here, pin there), …)
        reads another version and nothing else moved (``changes.carry``): the same order, split
        and indexes, changed where those pins are. A version is neither part of the order (the
        environment, then the app) nor of what an app is tracked by (``images.tracked``)."""
        if not moves:  # the same pins: the indexes made so far, shared (never changed once made)
            inventory = Inventory(commit, self.pins, self.problems, self.others)
            inventory.__dict__.update((name, value) for name, value in self.__dict__.items()
                                      if name in _INDEXES)
            return inventory
        positions = dict(self._positions)
        held = (list(self.pins), list(self.others))
        parts = dict(self._parts)
        renamed: dict = {}
        for before, after in moves:
            at = positions.pop(id(before))
            if at >= 0:
                held[0][at] = after
            else:
                held[1][-1 - at] = after
            positions[id(after)] = at
            renamed[id(before)] = after
            key = (after.app, after.environment)
            parts[key] = [renamed.get(id(p), p) for p in parts[key]]
        inventory = Inventory(commit, tuple(held[0]), self.problems, tuple(held[1]))
        inventory.__dict__.update(_parts=parts, _apps=self._apps, _by_lower=self._by_lower, _positions=positions)
        return inventory


_INDEXES = ("_parts", "_apps", "_by_lower", "_positions")  # made on first use, kept on the instance
