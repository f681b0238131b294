"""Changes queued for an environment's next promotion window (``--queue``), in the state file.

What is kept is what was asked, never a plan: the command (deploy, promote, rollback) and its
words (app, environment, version, source, part), the requester (and their names in the chat's
ACLs), and where to answer (the chat target and thread). At the opening the change is planned and
decided again on everything, as if asked then. Nothing of the requester's standing is kept:
``--queue`` never goes with ``--force``, the one thing an admin's status changes, and who may ask
is the answer of the policy and of the chat's ACLs at the opening. Like a change waiting for
approval, a queued one is claimed once (``UPDATE … WHERE state = 'queued'``); one a stopped bot
was applying is said lost, never applied twice.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Callable, Optional

from ..errors import ApprovalRefused
from ..model import Requester
from ..state.store import Store

QUEUED, APPLYING, APPLIED, REFUSED, CANCELLED, LOST = (
    "queued", "applying", "applied", "refused", "cancelled", "lost")
KEEP_SETTLED = timedelta(days=1)  # a settled change is remembered this long, to say what became of it
INTERRUPTED = ("Ferry stopped while applying it: `!versions <app> <env>` shows whether it was pushed; "
               "ask for it again if not")


@dataclass(frozen=True)
class QueuedChange:
    """One change waiting for a window: the command as asked, and where to answer it."""

    id: str
    command: str  # "deploy", "promote" or "rollback"
    app: str
    environment: str  # the environment's name (not an alias)
    opens: str  # ISO 8601 UTC: the window's opening it waits for
    requester: Requester
    version: Optional[str] = None
    source: Optional[str] = None  # promote: from which environment
    part: Optional[str] = None
    asker: tuple = ("", "")  # (sender, room) as the chat's ACLs name them, asked again at the opening
    target: tuple = ("", False, "")  # (to, room, thread) as the chat backend names them
    asked: str = ""  # ISO 8601 UTC
    state: str = QUEUED
    settled: str = ""  # why it was refused, lost or cancelled (and by whom)

    @property
    def opening(self) -> datetime:
        return datetime.fromisoformat(self.opens)

    @property
    def words(self) -> str:
        """The change as a command would say it: ``deploy podinfo 6.6.0 to prod``."""
        part = f" {self.part}" if self.part else ""
        if self.command == "rollback":
            to = f" to {self.version}" if self.version else ""
            return f"rollback {self.app}{part} on {self.environment}{to}"
        what = f"{self.app}@{self.version}" if self.version else self.app
        source = f" from {self.source}" if self.source else ""
        return f"{self.command} {what}{part}{source} to {self.environment}"


class Queue:
    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store, self.clock = store, clock

    def add(self, change: QueuedChange) -> QueuedChange:
        """Keep ``change`` (its id and time of asking are given here)."""
        change = replace(change, id=secrets.token_hex(5), asked=self.clock().isoformat(), state=QUEUED)
        with self.store.transaction() as db:
            db.execute("INSERT INTO queued (id, state, environment, opens, requester_id, record) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (change.id, QUEUED, change.environment, change.opens, change.requester.id,
                        json.dumps(_row(change))))
        return change

    def find(self, change_id: str) -> Optional[QueuedChange]:
        rows = self.store.read("SELECT record, state, settled FROM queued WHERE id = ?", (change_id,))
        return _change(*rows[0]) if rows else None

    def waiting(self) -> list[QueuedChange]:
        """Every change still queued, the soonest opening first."""
        rows = self.store.read("SELECT record, state, settled FROM queued WHERE state = ? ORDER BY opens, id",
                               (QUEUED,))
        return [_change(*row) for row in rows]

    def due(self, now: datetime) -> list[QueuedChange]:
        """The queued changes whose opening has come."""
        return [c for c in self.waiting() if c.opening <= now]

    def claim(self, change_id: str, state: str, why: str = "") -> Optional[QueuedChange]:
        """Move a queued change on (to applying, cancelled or lost) once: None when another got it
        first. Settled changes older than ``KEEP_SETTLED`` are forgotten in the same transaction."""
        with self.store.transaction() as db:
            moved = db.execute("UPDATE queued SET state = ?, settled = ? WHERE id = ? AND state = ?",
                               (state, why, change_id, QUEUED)).rowcount
            cutoff = (self.clock() - KEEP_SETTLED).isoformat()
            db.execute("DELETE FROM queued WHERE state NOT IN (?, ?) AND opens < ?", (QUEUED, APPLYING, cutoff))
        return self.find(change_id) if moved else None

    def settle(self, change_id: str, state: str, why: str = "") -> None:
        """A claimed change's outcome (applied or refused)."""
        with self.store.transaction() as db:
            db.execute("UPDATE queued SET state = ?, settled = ? WHERE id = ? AND state = ?",
                       (state, why, change_id, APPLYING))

    def cancel(self, change_id: str, by: str) -> QueuedChange:
        found = self.claim(change_id, CANCELLED, by)
        if found is None:
            now = self.find(change_id)
            raise ApprovalRefused(f"Change `{change_id}` is {now.state} already, not queued." if now
                                  else f"No queued change `{change_id}`.")
        return found

    def recover(self) -> list[QueuedChange]:
        """At start: changes a stopped bot was applying are lost, never applied twice."""
        with self.store.transaction() as db:
            ids = [i for (i,) in db.execute("SELECT id FROM queued WHERE state = ?", (APPLYING,))]
            db.execute("UPDATE queued SET state = ?, settled = ? WHERE state = ?", (LOST, INTERRUPTED, APPLYING))
        return [self.find(i) for i in ids]


def _row(change: QueuedChange) -> dict:
    row = asdict(change)
    row.pop("state"), row.pop("settled")
    row["requester"]["channels"] = list(change.requester.channels)
    row["target"], row["asker"] = list(change.target), list(change.asker)
    return row


def _change(record: str, state: str, settled: str) -> QueuedChange:
    row = json.loads(record)
    row.pop("force", None), row.pop("admin", None)  # kept by Ferry before its opening decided them anew
    who = row.pop("requester")
    requester = Requester(**{**who, "channels": tuple(who.get("channels", ()))})
    return QueuedChange(**{**row, "requester": requester, "target": tuple(row.get("target", ("", False, ""))),
                           "asker": tuple(row.get("asker", ("", ""))),
                           "state": state, "settled": settled})
