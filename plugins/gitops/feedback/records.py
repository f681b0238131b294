"""What a change waiting for Flux is, as plain data: where to answer, and what was pushed."""
from __future__ import annotations

from dataclasses import dataclass

from ..identity import CHART


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
    requester: str
    target: ReplyTarget
    pushed_at: float  # epoch seconds
    timed_out: bool = False
    part: str = CHART  # an image tag's change is settled by the release's event after the push
    token: str = ""  # the release's values token (Flux's event metadata) live before the push, if known
