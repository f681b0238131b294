"""The long lists as whole answers (``sizing.Table``): `!versions` and its filters, `!audit`,
`!pending`. Every row is rendered; ``replies.answers`` decides whether it is a message or a file."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Collection, Iterable, Optional, Sequence

from ferrychat import render
from ferrychat.feedback import age, duration
from ferrychat.grammar import VersionsQuery
from ferrychat.sizing import Table
from gitops.errors import shown
from gitops.inventory import Inventory
from gitops.model import AuditEntry, PendingChange
from gitops.selection import Selection, select

WHOLE = 10 ** 9  # no row or character cut: the whole table is the answer, or the file


def whole_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return render.table(headers, rows, limit=max(1, len(rows)), budget=WHOLE)


def versions(query: VersionsQuery, chosen: Selection, newest: dict, notes: Sequence[str] = (),
             live_states: Optional[dict] = None, now: float = 0.0, refused: Sequence[str] = ()):
    """The versions table of the apps and environments ``chosen`` keeps, or one line when it is
    empty. The head is today's ("3 apps across dev, qa, stag, prod:") with the filter said
    ("2 outdated apps matching `team-a-*` across prod:")."""
    match = f" matching `{shown(query.pattern)}`" if query.pattern else ""
    label = ("outdated apps" if query.outdated else "apps") + match
    envs = chosen.environments
    if not chosen.apps:
        where = f" in {', '.join(envs)}" if query.column else ""
        what = f"No app{match}" + (" is behind" if query.outdated else " is deployed") + where + "."
        return "\n".join([what, *notes])
    tracked = any(p.part != "chart" for p in chosen.pins)  # a `tracked by` column, as render.overview
    rows = render.overview_rows(chosen.pins, envs, newest, live_states, now, refused, tracked)
    body = "\n".join([whole_table(render.overview_headers(envs, tracked), rows),
                      render.overview_legend(refused, live_states, tracked)])
    counts = [f"{len(chosen.behind_registry):,} behind the registry"]
    if chosen.behind_previous:
        counts.append(f"{len(chosen.behind_previous):,} behind the previous environment")
    plural = "s" if len(envs) > 1 else ""
    summary = f"{len(rows):,} {label} across {len(envs)} environment{plural}, " + ", ".join(counts)
    short = render.overview(chosen.pins, envs, newest, notes, live_states, now, refused, label)
    return Table(summary, f"{len(rows)} {label} across {', '.join(envs)}:", body, "versions.txt",
                 f"Versions: {len(rows):,} {label}", tuple(notes), short)


class VersionsTables:
    """`!versions` tables kept per inventory (one commit of each repository): a warm table costs
    what its inputs cost to compare, not a pass of selection and rendering over every pin.

    An answer is reused only when everything it was made of is equal: the same inventory object,
    the same query, the registry's newest versions, the notes, the refusals, the live records
    and the ages they show. Safe to share between threads."""

    def __init__(self, size: int = 8):
        self.size = size
        self._kept: OrderedDict = OrderedDict()  # (query, column) -> (inventory, inputs, answer)
        self._named: OrderedDict = OrderedDict()  # pattern -> (inventory, pins)
        self._lock = threading.Lock()

    def named(self, inventory: Inventory, chain: Sequence[str], pattern: Optional[str]) -> tuple:
        """The pins of the apps ``pattern`` names, in every environment."""
        with self._lock:
            kept = self._named.get(pattern)
            if kept is not None and kept[0] is inventory:
                return kept[1]
        pins = select(inventory.pins, chain, {}, pattern).pins
        self._keep(self._named, pattern, (inventory, pins))
        return pins

    def versions(self, inventory: Inventory, query: VersionsQuery, chain: Sequence[str],
                 column: Optional[str], newest_of: Callable, live_of: Callable, now: float):
        """``listing.versions`` of the apps ``query`` names; ``newest_of(pins)``: (newest, notes,
        refused) as ``GitOps.newest``; ``live_of(pins)``: their live records."""
        named = self.named(inventory, chain, query.pattern)
        newest, notes, refused = newest_of(named)  # the registry is asked of these apps only
        notes = [*notes, *render.problems(inventory.problems)]
        live = live_of(named)
        inputs = (newest, notes, tuple(refused), live, _ages(live, now))
        key = (query, column)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] is inventory and kept[1] == inputs:
                self._kept.move_to_end(key)
                return kept[2]
        chosen = select(named, chain, newest, outdated=query.outdated, column=column)
        chosen_keys = {(p.app, p.environment) for p in chosen.pins}
        answer = versions(query, chosen, newest, notes,
                          {k: v for k, v in live.items() if k in chosen_keys}, now, refused)
        self._keep(self._kept, key, (inventory, inputs, answer))
        return answer

    def _keep(self, kept: OrderedDict, key, value) -> None:
        with self._lock:
            kept[key] = value
            kept.move_to_end(key)
            while len(kept) > self.size:
                kept.popitem(last=False)


def _ages(live: dict, now: float) -> tuple:
    """The ages the live records show now (``render.live``): the answer changes when they do."""
    return tuple(age(now - render.epoch(r.get("received") or r.get("at", ""))) for r in live.values())


def audit(entries: Sequence[AuditEntry], environment: Optional[str] = None):
    where = f" in {environment}" if environment else ""
    if not entries:
        return render.audit(entries, environment)
    return Table(f"The last {len(entries):,} changes{where}", f"The last {len(entries)} change(s){where}:",
                 whole_table(render.AUDIT_HEADERS, render.audit_rows(entries)), "audit.txt",
                 f"Audit: the last {len(entries):,} changes{where}", short=render.audit(entries, environment))


def pending(waiting: Sequence[PendingChange], private: Collection[str] = ()):
    """``private``: the environments whose diffs are not shown here (``show_values: channels``)."""
    if not waiting:
        return render.pending_list(waiting)
    return Table(f"{len(waiting):,} changes waiting for approval (`!approve <id>` takes any of them)",
                 "", "\n\n".join(render.pending(p, diff=p.environment not in private) for p in waiting),
                 "pending.txt", f"Pending: {len(waiting):,} changes", short=render.pending_list(waiting, private))


def verifications(records: Sequence, settings, now: float) -> str:
    """`!versions <app>`'s last verification per environment (``gitops.feedback.verify``), and
    how long a verified version still soaks before it may be promoted; "" when there is none."""
    lines = []
    for r in records:
        part = f" {r.part}" if r.part != "chart" else ""
        line = f"{r.environment}:{part} {r.version} {r.state}"
        figures = ", ".join(f"`{label}` = {value}" for label, value in r.figures.items())
        if r.state == "verified":
            line += f" {age(now - r.verified_at)} ago" + (f" ({figures})" if figures else "")
            remaining = soak_remaining(r, settings, now)
            if remaining > 0:
                line += f"; soaking: {duration(remaining)} before it may be promoted"
        elif r.state == "verifying":
            line += f" for {age(now - r.since)}" + (f" ({figures})" if figures else "")
        else:
            line += f": {' '.join(r.reason.split())[:300]}" if r.reason else ""
        lines.append(line)
    return "Last verification:\n" + "\n".join(lines) if lines else ""


def soak_remaining(record, settings, now: float) -> float:
    """How long a verified version still soaks before it may be promoted (0: it may)."""
    if record.state != "verified" or record.environment not in settings.environment_names:
        return 0.0
    verify = settings.environment(record.environment).verify
    return record.verified_at + verify.promote_after - now if verify is not None else 0.0


def soaking(records: Sequence, pins: Iterable, settings, now: float) -> list:
    """`!versions`'s notes: the versions of the releases of ``pins`` still soaking, and how long
    they have left, each by the name its app goes by now."""
    still = [(r, remaining) for r in records if (remaining := soak_remaining(r, settings, now)) > 0]
    if not still:
        return []  # most of the time: no pass over the fleet's pins (a warm whole table's cost)
    by_name: dict = {}
    for p in pins:  # by the release's own name (``Pin.release``), without making one per pin
        by_name.setdefault((p.environment, p.app.rsplit("/", 1)[-1], p.part), []).append(p)
    said = []
    for r, remaining in still:
        release = r.release
        pin = next((p for p in by_name.get((release.environment, release.name, release.part), ())
                    if release.covers(p.release)), None)
        if pin is not None:
            said.append(f"Soaking: `{pin.app}` {r.version} in {r.environment}, {duration(remaining)} before "
                        "it may be promoted.")
    return said
