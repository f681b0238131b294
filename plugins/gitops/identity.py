"""What a release is, whatever Ferry calls it: the stable identity locks, waiting changes and
rolled-back records are keyed by, and who decided, by chat user ID. No I/O here.

An app's display name is for people: it turns into ``namespace/name`` everywhere as soon as any
environment gains a second release of that name. A record keyed by it silently stops applying.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

CHART = "chart"  # Pin.part of a chart version; image tags are "image" or "image:<container>"


@dataclass(frozen=True)
class Release:
    """The stable identity of one part of one release in one environment: what locks, waiting
    changes and rolled-back records are keyed by. ``part`` "" is every part of it (a lock);
    ``name`` "" is the whole environment (a lock); ``namespace`` None is any namespace (records
    migrated from before identities, which knew only the name)."""

    environment: str
    namespace: Optional[str] = ""
    name: str = ""
    part: str = CHART

    @property
    def key(self) -> str:
        """One line for people and for a blocker's key: ``prod``, ``prod/apps/podinfo`` (every
        part), ``prod/apps/podinfo image:api``."""
        if not self.name:
            return self.environment
        where = f"{self.environment}/{'*' if self.namespace is None else self.namespace}/{self.name}"
        return f"{where} {self.part}" if self.part else where

    def covers(self, other: "Release") -> bool:
        """This record (a lock, a rolled-back version) applies to ``other``."""
        return (self.environment == other.environment
                and (not self.name or (self.name == other.name
                                       and self.namespace in (None, other.namespace)
                                       and self.part in ("", other.part))))


def mention(user_id: str) -> str:
    """A chat user ID as chat shows it as a mention: Slack's ``<@U…>``; IDs that are mentions as
    they are (``@alice`` on the text console) unchanged. Decisions are said by ID, never by a
    display name anyone can copy."""
    if not user_id or user_id.startswith("@") or " " in user_id:
        return user_id
    return f"<@{user_id}>"
