"""What a change waiting for Flux is, as plain data: where to answer, what was pushed, on whose
behalf, and the release it changed."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Optional

from ..identity import CHART, Release
from ..model import Requester

_KEPT = tuple(f.name for f in fields(Requester))


def requester_of(value) -> Requester:
    """Who asked, as a record keeps it: a ``Requester``, or its fields (JSON). A record written
    before Ferry kept the whole identity has one string, the name or the ID: it stands for both,
    as it did then."""
    if isinstance(value, Requester):
        return value
    if isinstance(value, Mapping):
        kept = {k: value[k] for k in _KEPT if k in value}
        return Requester(**{**kept, "channels": tuple(kept.get("channels") or ())})
    text = str(value or "")
    return Requester(text, text)


def release_of(environment: str, app: str, part: str, namespace: Optional[str], name: str) -> Release:
    """A record's release; one written before records knew it has only the app's name then: its
    release by that name, in any namespace (as locks and rolled-back records migrated so)."""
    if name:
        return Release(environment, namespace, name, part)
    return Release(environment, None, app.rsplit("/", 1)[-1], part)


@dataclass(frozen=True)
class ReplyTarget:
    """Where to answer a command later: the channel (or the person, for a DM) and the thread the
    command started, as the text the chat backend gives for them (it survives a restart)."""

    to: str
    room: bool = False
    thread: str = ""


@dataclass(frozen=True)
class WaitingDeploy:
    """A pushed change waiting for Flux to report on it."""

    app: str
    environment: str
    action: str
    old: str
    version: str
    commit: str
    requester: Requester  # on whose behalf it was pushed: its commit's author and Requested-by
    target: ReplyTarget
    pushed_at: float  # epoch seconds
    timed_out: bool = False
    part: str = CHART  # an image tag's change is settled by the release's event after the push
    token: str = ""  # the release's values token (Flux's event metadata) live before the push, if known
    namespace: Optional[str] = None  # the release it changed (None, "": see ``release_of``)
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "requester", requester_of(self.requester))

    @property
    def release(self) -> Release:
        return release_of(self.environment, self.app, self.part, self.namespace, self.name)
