"""What a release is, whatever Ferry calls it: the stable identity locks, waiting changes and
rolled-back records are keyed by, and who decided, by chat user ID. No I/O here.

An app's display name is for people: it turns into ``namespace/name`` everywhere as soon as any
environment gains a second release of that name. A record keyed by it silently stops applying.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Callable, Optional

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


# Ferry's own mentions travel as a marker no outside text can contain: private-use characters
# around a per-process random nonce (never written anywhere) and the ID. The Slack backend turns
# exactly these into ``<@U…>``/``<#C…>`` after escaping everything else (``marks``: it finds this
# module in ``sys.modules`` as ``MODULE``, backends cannot import plugins); every other way out
# turns them into plain text with ``plain``.
MODULE = "gitops.identity"
MARK_OPEN, MARK_CLOSE = "\ue0f0", "\ue0f1"
_NONCE = secrets.token_hex(12)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")  # nothing Slack could read as markup
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,20}$")
_MARK = re.compile(MARK_OPEN + re.escape(_NONCE) + r":([@#])([A-Za-z0-9._-]{1,80})" + MARK_CLOSE)


def mention(user_id: str) -> str:
    """A chat user ID as chat shows it: a Slack mention of that person (``<@U…>`` once in Slack);
    IDs that are mentions as they are (``@alice`` on the text console) unchanged. Decisions are
    said by ID, never by a display name anyone can copy."""
    if not _ID.match(user_id or ""):
        return user_id
    return f"{MARK_OPEN}{_NONCE}:@{user_id}{MARK_CLOSE}"


def channel(channel_id: str) -> str:
    """A Slack channel ID as a link to the channel (``<#C…>`` in Slack); a name (``#deploys``) or
    anything else unchanged."""
    if not _CHANNEL_ID.match(channel_id or ""):
        return channel_id
    return f"{MARK_OPEN}{_NONCE}:#{channel_id}{MARK_CLOSE}"


def marks(text: str, shown: Callable[[str, str], str]) -> str:
    """``text`` with each of Ferry's mentions (``@``) and channel links (``#``) replaced by
    ``shown(kind, id)``."""
    return _MARK.sub(lambda m: shown(m.group(1), m.group(2)), text) if MARK_OPEN in text else text


def person(who) -> str:
    """Who asked or decided (a ``Requester``), as chat names them: a mention of the person, or
    the bot by its ID. ``Name <id>`` (``Requester.signature``) is for commits only."""
    if getattr(who, "bot", False):
        return f"the bot {who.id}" if who.id else "an integration without a bot ID"
    return mention(who.id)


def plain(text: str) -> str:
    """``text`` with Ferry's mentions and channel links as the bare IDs they name: for every way
    out but Slack (the console, Git commits, logs, HTTP answers, ``str`` of an error)."""
    return marks(text, lambda kind, ident: ident)
