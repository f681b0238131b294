"""Once, at the first start on the state file: what older Ferry kept in Errbot's shelf (the Ferry
plugin's storage: ``locks``, ``pending``, ``rolled-back`` and ``flux/…`` keys) copied into it.

Those records knew an app only by its display name: a lock on ``prod/podinfo`` becomes a lock on
every release named podinfo in prod, whatever its namespace (it may lock more than it did, never
less); ``prod/apps/podinfo`` keeps its namespace. The shelf is left as it was (an older Ferry can
still read it) and never read again: the import is marked done in the same transaction.
"""
from __future__ import annotations

import json
import logging
from typing import Mapping, Optional

from ..identity import Release
from .store import Store

log = logging.getLogger(__name__)

DONE = "imported-shelf"
FLUX_PREFIX = "flux/"


def import_shelf(store: Store, shelf: Mapping) -> Optional[dict]:
    """Copy ``shelf``'s records into ``store`` unless done before; returns what was copied, per
    kind (None when it was done before). A key the shelf cannot read back is logged and skipped."""
    if store.meta(DONE) is not None:
        return None
    counts = {"locks": 0, "pending": 0, "rolled-back": 0, "flux": 0, "unreadable": 0}
    values = {}
    for key in list(_keys(shelf)):
        if key in ("locks", "pending", "rolled-back") or key.startswith(FLUX_PREFIX):
            try:
                values[key] = shelf[key]
            except Exception as e:  # the shelf's own damage (UnpicklingError, a lost dbm file)
                counts["unreadable"] += 1
                log.error("the shelf's %r cannot be read (%s): not imported", key, e)
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM meta WHERE key = ?", (DONE,)).fetchone():
            return None  # another process imported it meanwhile
        for key, lock in dict(values.get("locks") or {}).items():
            release = _release(key)
            db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (release.environment, release.namespace, release.name, release.part,
                        str(lock.get("by", "")), str(lock.get("when", "")), str(lock.get("reason", ""))))
            counts["locks"] += 1
        for change_id, record in dict(values.get("pending") or {}).items():
            record = dict(record)
            state, settled_by = record.pop("state", "waiting"), record.pop("settled_by", "")
            db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?)",
                       (change_id, state, settled_by, record["requester"]["id"], record["expires"],
                        json.dumps(record)))
            counts["pending"] += 1
        for key, record in dict(values.get("rolled-back") or {}).items():
            release = _release(key)
            db.execute("INSERT OR REPLACE INTO rolled_back VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (release.environment, release.namespace, release.name, release.part,
                        str(record["version"]), str(record.get("by", "")), str(record.get("when", ""))))
            counts["rolled-back"] += 1
        for key, value in values.items():
            if key.startswith(FLUX_PREFIX):
                db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (key, json.dumps(value)))
                counts["flux"] += 1
        db.execute("INSERT INTO meta VALUES (?, ?)", (DONE, json.dumps(counts)))
    return counts


def _keys(shelf: Mapping):
    try:
        return list(shelf.keys())
    except Exception as e:
        log.error("the shelf's keys cannot be listed (%s): nothing imported", e)
        return []


def _release(key: str) -> Release:
    """``env``, ``env/app`` or ``env/namespace/app``: the key older Ferry kept a record under."""
    environment, _, app = key.partition("/")
    if not app:
        return Release(environment, "", "", "")
    namespace, _, name = app.rpartition("/")
    return Release(environment, namespace or None, name, "")
