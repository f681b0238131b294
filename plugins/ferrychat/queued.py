"""What Ferry says of changes queued for a promotion window (``--queue``): queued, listed by
``!pending``, and what became of each at its opening, in the thread it was asked in."""
from __future__ import annotations

from typing import Sequence

from ferrychat import render
from gitops.guard.queue import LOST, QueuedChange
from gitops.identity import person
from gitops.model import Change


def queued(change: QueuedChange, opens: str, hours: str) -> str:
    """The reply to a command queued for the next window."""
    return (f"Queued change `{change.id}`: {change.words} when {change.environment} opens "
            f"{opens} ({change.environment} takes changes {hours}). It is planned and checked again "
            f"then; `!reject {change.id}` withdraws it.")


def line(change: QueuedChange, opens: str) -> str:
    """One queued change as ``!pending`` lists it."""
    return f"`{change.id}`: {change.words}, asked by {person(change.requester)}, queued for {opens}."


def listing(changes: Sequence[QueuedChange], opens: Sequence[str]) -> str:
    """``!pending``'s part for queued changes ("" when there are none)."""
    if not changes:
        return ""
    return render.items([line(c, o) for c, o in zip(changes, opens)],
                        "changes queued (`!reject <id>` withdraws one)")


def applied(change: QueuedChange, result: Change) -> str:
    """Said in the change's thread when its window opened and it went through."""
    return f"{change.environment}'s window opened: queued change `{change.id}`. {render.change(result)}"


def refused(change: QueuedChange, why: str) -> str:
    return (f"{change.environment}'s window opened, but queued change `{change.id}` ({change.words}) "
            f"was refused: {why}")


def lost(change: QueuedChange) -> str:
    """A queued change that will not be applied, and why."""
    assert change.state == LOST
    return f"Queued change `{change.id}` ({change.words}) was lost: {change.settled}."


def withdrawn(change: QueuedChange, by) -> str:
    return f"Withdrew queued change `{change.id}` ({change.words}), by {person(by)}."


def windows(states: Sequence[str]) -> str:
    """``!locks``'s part for promotion windows: each environment's, open or closed ("" without)."""
    return "Promotion windows:\n" + "\n".join(f"• {s}" for s in states) if states else ""


def closed(states: Sequence[str]) -> str:
    """The environments outside their windows now, as a note under `!versions` and `!pending`."""
    return f"{'; '.join(states)}; `--queue` holds a change for the opening." if states else ""
