"""The inventory: every pin of every environment at one commit, with the lookups kept on it, and
how it moves to the next commit: pin by pin where only versions changed (``changes.carry``),
or the pins of the apps the fold made anew put in place of theirs (``discovery.refold``)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from .identity import Release
from .model import Pin, in_order


@dataclass(frozen=True)
class Inventory:
    """Every pin of every environment at one commit."""

    commit: str
    pins: tuple  # tuple[Pin, ...]: the pin each app is tracked by, ordered by environment then app
    problems: tuple = ()  # tuple[Problem, ...]: what discovery could not follow
    others: tuple = ()  # tuple[Pin, ...]: the apps' other parts (chart or image tags not tracked)

    def parts(self, app: str, environment: str) -> list:
        """Every pin of ``app`` in ``environment``: the tracked one first."""
        return [self._at(i) for i in self._parts.get((app, environment), ())]

    def apps(self) -> list[str]:
        return list(self._apps)

    def app_named(self, name: str) -> Optional[str]:
        """The app as this inventory spells it, matched case-insensitively; None when unknown."""
        return self._by_lower.get((name or "").lower())

    def in_environment(self, environment: str) -> list[Pin]:
        return [p for p in self.pins if p.environment == environment]

    def find(self, app: str, environment: str) -> Optional[Pin]:
        parts = self._parts.get((app, environment))
        return self._at(parts[0]) if parts else None

    def released(self, release: "Release") -> Optional[Pin]:
        """The pin of ``release`` (one part), whatever its app is called now (any namespace: by name)."""
        for p in self.pins + self.others:
            if release.covers(p.release) and release.part:
                return p
        return None

    def _at(self, place: int) -> Pin:
        """The pin at ``place``: its index in ``pins``, or -1 - its index in ``others``."""
        return self.pins[place] if place >= 0 else self.others[-1 - place]

    # An inventory is kept and asked many times per commit: indexes built once, on first use
    # (written to the instance's __dict__, which a frozen dataclass allows). They hold places,
    # not pins, so an inventory moved pin by pin shares them: a version moves no pin's place.
    @cached_property
    def _parts(self) -> dict:
        """{(app, environment): the places of its pins, the tracked one first}."""
        found: dict = {}
        for i, p in enumerate(self.pins):
            found.setdefault((p.app, p.environment), []).append(i)
        for i, p in enumerate(self.others):
            found.setdefault((p.app, p.environment), []).append(-1 - i)
        return found

    @cached_property
    def _apps(self) -> tuple:
        return tuple(sorted({p.app for p in self.pins}))

    @cached_property
    def _by_lower(self) -> dict:
        return {a.lower(): a for a in self._apps}

    def carried(self, commit: str, moves, problems: Optional[tuple] = None) -> "Inventory":
        """This inventory at ``commit``, where each pin of ``moves`` ((pin here, pin there), …, in
        the order the commits made them) reads otherwise but keeps its place and what its app is
        tracked by (``changes.carry`` proves both): the same order, split and indexes (shared),
        those pins replaced in place; ``problems``: what discovery could not follow there (default:
        the same). KeyError: a pin this inventory does not hold."""
        held = (list(self.pins), list(self.others))
        for before, after in moves:
            place = next((i for i in self._parts.get((after.app, after.environment), ())
                          if (held[0][i] if i >= 0 else held[1][-1 - i]) is before), None)
            if place is None:
                raise KeyError((after.app, after.environment))
            if place >= 0:
                held[0][place] = after
            else:
                held[1][-1 - place] = after
        inventory = Inventory(commit, tuple(held[0]), self.problems if problems is None else problems,
                              tuple(held[1]))
        inventory.__dict__.update((name, value) for name, value in self.__dict__.items() if name in _INDEXES)
        return inventory

    def spliced(self, commit: str, gone: tuple, tracked: tuple, others: tuple, environments: list,
                problems: Optional[tuple] = None) -> "Inventory":
        """This inventory at ``commit``, where the fold made anew the pins of some apps in some
        environments (``discovery.refold``): ``gone``, every pin of theirs here, makes way for
        ``tracked`` and ``others``, theirs now, split (``images.split``) and in order. The rest
        keeps its order; the indexes, which hold places, are made again when first asked.
        KeyError: a pin gone this inventory does not hold."""
        out = {id(p) for p in gone}
        pins = [p for p in self.pins if id(p) not in out]
        rest = [p for p in self.others if id(p) not in out]
        if len(pins) + len(rest) + len(out) != len(self.pins) + len(self.others):
            raise KeyError(commit)
        return Inventory(commit, tuple(in_order(pins, tracked, environments)),
                         self.problems if problems is None else problems,
                         tuple(in_order(rest, others, environments)))


_INDEXES = ("_parts", "_apps", "_by_lower")  # made on first use, kept on the instance, shared when moved
