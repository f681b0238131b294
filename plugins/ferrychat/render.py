"""Replies people can read in a chat window: the important fact first, tables in code blocks."""
from __future__ import annotations

from datetime import datetime
from typing import Collection, Iterable, Optional, Sequence

from ferrychat.feedback import age as short_age
from ferrychat.forges import commit_url, proposed

from gitops.identity import mention, person
from gitops.model import AuditEntry, Change, ChartInfo, HistoryEntry, PendingChange, Pin, Plan
from gitops.versions import older, same_version

MAX_ROWS = 40
MAX_REPLY = 8000  # characters: no answer is longer (Slack folds long messages; a list must not flood)
MAX_CELL = 80  # characters of one table cell (reasons, subjects)
DIGEST_SHOWN = 12  # hex digits of a digest shown in a version cell (the rest is in Git)
TRACKED = "▸"  # marks the part an app is tracked by; `*` only ever means newer in the registry


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], limit: int = MAX_ROWS,
          more: str = "rows", budget: int = MAX_REPLY - 1000) -> str:
    """A fixed-width table in a code block; past ``limit`` rows or ``budget`` characters, a count
    of what was left out. Long cells are cut."""
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows[:limit])) if rows else len(h)
              for i, h in enumerate(headers)]
    per_line = sum(widths) + 2 * (len(widths) - 1) + 1
    fits = max(1, budget // per_line - 1)  # the header line counts too
    shown = rows[:min(limit, fits)]
    cut = len(rows) - len(shown)
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h)
              for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    body = "\n".join([line(headers)] + [line(r) for r in shown])
    text = f"```\n{body}\n```"
    if cut > 0:
        text += f"\n… and {cut} more {more}."
    return text


def _cell(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def items(parts: Sequence[str], more: str, budget: int = MAX_REPLY - 400, sep: str = "\n\n") -> str:
    """Whole parts (one per change, …) while they fit in ``budget`` (room left for the count
    within a short form's ``sizing.budget``); then a count of the rest."""
    kept, used = [], 0
    for part in parts:
        if kept and used + len(sep) + len(part) > budget:
            break
        kept.append(part)
        used += len(sep) + len(part)
    text = sep.join(kept)
    if len(kept) < len(parts):
        text += f"{sep}… and {len(parts) - len(kept)} more {more}."
    return bounded(text)


def bounded(text: str, limit: int = MAX_REPLY) -> str:
    """At most ``limit`` characters: cut at a line, close an open code block, count what was cut."""
    if len(text) <= limit:
        return text
    lines, kept, used = text.split("\n"), [], 0
    for line in lines:
        if used + len(line) + 1 > limit - 120:
            break
        kept.append(line)
        used += len(line) + 1
    if not kept:  # one endless line
        kept, used = [lines[0][:limit - 120]], limit - 120
    cut = "\n".join(kept)
    if cut.count("```") % 2:
        cut += "\n```"
    rest = len(lines) - len(kept)
    return f"{cut}\n… and {rest} more line(s): the answer is cut at {limit:,} characters."


def pinned(pin: Optional[Pin], newest: Optional[str] = None) -> str:
    """One table cell: the version, ``~`` for a range, ``*`` when the registry has newer."""
    if pin is None:
        return "-"
    if pin.unknown:
        return "?"
    if pin.version is None:
        return "(latest)"
    if pin.is_range:
        return f"~{pin.version}"
    mark = "*" if newest and older(pin.version, newest) else ""
    return short_version(pin.version) + mark


def short_version(version: str) -> str:
    """A version for a table cell: a digest cut to its first hex digits (``1.0.0@sha256:64f3a1b2c4d5…``)."""
    tag, at, digest = version.partition("@")
    algorithm, colon, hex_digits = digest.partition(":")
    if at and colon and len(hex_digits) > DIGEST_SHOWN:
        return f"{tag}@{algorithm}:{hex_digits[:DIGEST_SHOWN]}…"
    return version


def live(pin: Optional[Pin], record: Optional[dict], now: float) -> str:
    """The live part of a cell, from the last Flux event: ``live 3m`` (the pinned version runs),
    ``≠6.5.2 live 2h`` (another version runs: drift), ``!6.5.3 failed 5m`` (the last release failed;
    ``!6.5.2 rolled-back``: Flux rolled a failed upgrade back to 6.5.2)."""
    if not record:
        return ""
    age = short_age(now - epoch(record.get("received") or record.get("at", "")))
    version = record.get("version") or "?"
    if record.get("state") == "failed":
        what = {"RollbackSucceeded": "rolled-back", "UninstallSucceeded": "uninstalled"}
        return f"!{version} {what.get(record.get('reason'), 'failed')} {age}"
    if pin is None or pin.version is None or pin.is_range:
        return f"{version} live {age}"
    if pin.part != "chart":  # Flux reports the chart's version: an image tag is not compared to it
        return f"chart {version} live {age}"
    if same_version(pin.version, version):
        return f"live {age}"
    return f"≠{version} live {age}"


LIVE_LEGEND = ("Live as Flux last reported, and how long ago: `live` the pinned version runs, "
               "`≠` another version runs (drift), `!` its last release failed.")


def epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def overview(pins: Sequence[Pin], environments: Sequence[str], newest: dict, notes: Sequence[str] = (),
             live_states: Optional[dict] = None, now: float = 0.0, refused: Sequence[str] = (),
             label: str = "apps") -> str:
    """``live_states``: (app, env) -> the last Flux event recorded (``gitops.feedback.waits.live_states``);
    ``refused``: the apps whose registry refused Ferry (their newest is "no access", not "?");
    ``label``: what the rows are ("outdated apps matching `team-a-*`"). A `tracked by` column is
    added as soon as one app is tracked by an image tag rather than its chart."""
    by_image = any(p.part != "chart" for p in pins)
    rows = overview_rows(pins, environments, newest, live_states, now, refused, tracked=by_image)
    text = (f"{len(rows)} {label} across {', '.join(environments)}:\n"
            + table(overview_headers(environments, tracked=by_image), rows,
                    more="apps (use `!versions <app>`)"))
    return "\n".join([text, overview_legend(refused, live_states, tracked=by_image), *notes])


def overview_headers(environments: Sequence[str], tracked: bool = False) -> list:
    return ["app", *environments, "newest", *(["tracked by"] if tracked else [])]


def overview_rows(pins: Sequence[Pin], environments: Sequence[str], newest: dict,
                  live_states: Optional[dict] = None, now: float = 0.0, refused: Sequence[str] = (),
                  tracked: bool = False) -> list:
    """One row per app (sorted): its cell in each environment, then the registry's newest (and,
    with ``tracked``, the part of the app its pins are: `chart`, `image`, `image:<container>`)."""
    apps = sorted({p.app for p in pins})
    by_key = {(p.app, p.environment): p for p in pins}
    parts = {p.app: p.part for p in pins}
    live_states = live_states or {}
    rows = []
    for app in apps:
        cells = [" ".join(filter(None, [pinned(by_key.get((app, e)), newest.get(app)),
                                        live(by_key.get((app, e)), live_states.get((app, e)), now)]))
                 for e in environments]
        rows.append([app, *cells, newest.get(app) or ("no access" if app in refused else "?"),
                     *([parts[app]] if tracked else [])])
    return rows


def overview_legend(refused: Sequence[str] = (), live_states: Optional[dict] = None,
                    tracked: bool = False) -> str:
    legend = "`*` newer in the registry, `~` a range, `-` not deployed there."
    if tracked:
        legend += (" `tracked by`: what `!deploy <app> <version>` changes, the chart version or an "
                   "image tag (`!versions <app>` shows both).")
    if refused:
        legend += " `no access`: the registry refused Ferry that chart (see below)."
    if live_states:
        legend += "\n" + LIVE_LEGEND
    return legend


def app_overview(app: str, pins: Sequence[Pin], newest: Sequence[ChartInfo], note: str = "",
                 live_states: Optional[dict] = None, now: float = 0.0, newest_part: str = "chart") -> str:
    """``newest``: the registry's newest versions of ``newest_part`` (the chart, or the image an
    app is tracked by): only its rows are marked behind them."""
    head = newest[0].version if newest else None
    live_states = live_states or {}
    rows, failing = [], []
    with_parts = any(p.part != "chart" for p in pins)
    for p in pins:
        where = p.location.file if p.location else p.release_file
        shared = f" (shared: {', '.join(p.shared_with)})" if len(p.shared_with) > 1 else ""
        record = live_states.get((p.app, p.environment))
        cells = [live(p, record, now) or "-"] if live_states else []
        part = [_part_cell(p, pins)] if with_parts else []
        rows.append([p.environment, *part, pinned(p, head if p.part == newest_part else None), *cells,
                     where + shared])
        if record and record.get("state") == "failed":
            message = (record.get("message") or "").strip().splitlines()[:1]
            failing.append(f"{p.environment}: Flux reports {record.get('reason')}"
                           + (f": {message[0][:200]}" if message else "") + ".")
    headers = ["env", *(["pins"] if with_parts else []), "version", *(["live"] if live_states else []),
               "pinned in"]
    envs = list(dict.fromkeys(p.environment for p in pins))
    parts = [f"`{app}` runs in {len(envs)} environment(s):", table(headers, rows), *failing,
             *_pin_notes(pins)]
    legend = "`*` newer in the registry, `~` a range."
    if with_parts:
        legend += (f" `{TRACKED}` what the app is tracked by (`!deploy <app> <version>` changes it); "
                   "`!deploy <app> chart|image[:<container>] <version> to <env>` changes the others.")
    parts.append(legend)
    if live_states:
        parts.append(LIVE_LEGEND)
    if newest:
        listed = [f"{i.version} ({i.created[:10] or 'no date'})" for i in newest]
        image = next((p.chart for p in pins if p.part == newest_part), "") if newest_part != "chart" else ""
        of = f" (image {image})" if image else ""
        parts.append(f"Newest in the registry{of}: " + ", ".join(listed) + ".")
    if note:
        parts.append(note)
    return "\n".join(parts)


def _part_cell(pin: Pin, pins: Sequence[Pin]) -> str:
    """The part a row pins, ``TRACKED`` before the one the app is tracked by (the first of its
    environment), with the image repository for an image tag."""
    first = next(p for p in pins if p.environment == pin.environment)
    mark = f"{TRACKED} " if first is pin else "  "
    return mark + pin.part + (f" ({pin.chart})" if pin.part != "chart" else "")


def _pin_notes(pins: Sequence[Pin]) -> list:
    """Where a version comes from when it is not the release's own field, and who else reads it."""
    notes = []
    for p in pins:
        what = "" if p.part == "chart" else f" {p.part}"
        if p.origin:
            notes.append(f"{p.environment}{what}: the version is {p.origin}.")
        if p.unknown or p.refusal:
            notes.append(f"{p.environment}{what}: Ferry cannot change it with one line: {p.refusal}.")
        if p.shared_by:
            notes.append(f"{p.environment}{what}: the pin is shared with {', '.join(p.shared_by)}.")
    return notes


MAX_PROBLEMS = 15


def problems(found: Sequence) -> list:
    """One line per thing discovery could not follow (environment, path, reason), bounded."""
    lines = [f"⚠ {p}" for p in found[:MAX_PROBLEMS]]
    if len(found) > MAX_PROBLEMS:
        lines.append(f"… and {len(found) - MAX_PROBLEMS} more problems (see the log).")
    return lines


def history(app: str, environment: str, entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return f"No version history for `{app}` in {environment}."
    rows = [[e.version, e.requested_by or f"{e.author} <{e.email}>", e.when[:16].replace("T", " "),
             e.commit[:10]] for e in entries]
    return (f"`{app}` in {environment}: now {entries[0].version}, {len(entries)} version(s) in Git.\n"
            + table(["version", "who", "when", "commit"], rows, limit=20, more="older versions"))


def environments_diff(env_a: str, env_b: str, rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return f"{env_a} and {env_b} run the same versions."
    return (f"{len(rows)} app(s) differ between {env_a} and {env_b}:\n"
            + table(["app", env_a, env_b], rows, more="apps"))


def intent(plan: Plan) -> str:
    """What a changing command is about to do, said before it does it."""
    verb = {"deploy": "Deploying", "promote": "Promoting", "rollback": "Rolling back"}[plan.action]
    origin = f" from {plan.source_environment}" if plan.source_environment else ""
    if plan.also:
        moving = [f"{p.part} {p.version or 'unpinned'} → {new}" for p, new in plan.edits if p.version != new]
        return f"{verb} `{plan.app}` ({', '.join(moving)}){origin} in {plan.environment}…"
    return f"{verb} `{plan.app}`{_part(plan.part)} {plan.old or 'unpinned'} → {plan.new}{origin} in {plan.environment}…"


def change(c: Change) -> str:
    """The result of a change: old → new first, then the commit and the file."""
    if c.noop:
        return f"`{c.app}`{_part(c.part)} is already at {c.new} in {c.environment}: nothing to change."
    if c.pending is not None:
        return pending(c.pending, new=True)
    if c.pull_request is not None and not c.dry_run:
        return proposed(c)
    verb = {"deploy": "Deployed", "promote": "Promoted", "rollback": "Rolled back"}[c.action]
    head = f"{verb} `{c.app}`{_part(c.part)} {c.old or 'unpinned'} → {c.new} in {c.environment}"
    if c.source_environment:
        head += f" (from {c.source_environment})"
    lines = []
    if c.dry_run:
        lines.append(f"Dry run, nothing pushed: {c.action} `{c.app}`{_part(c.part)} {c.old} → {c.new} "
                     f"in {c.environment} would change `{c.file}`:")
        lines.append(f"```\n{c.diff.rstrip()}\n```")
    else:
        commit = c.commit.sha[:10] if c.commit else "?"
        link = commit_url(c.commit.remote, c.commit.sha) if c.commit else ""
        link = f" {link}" if link else ""
        lines.append(f"{head}: commit {commit}{link}, file `{c.file}`.")
    if c.moves:
        moved = [f"{part} {old or 'unpinned'} → {new}" for part, old, new in c.moves if old != new]
        lines.append(f"Moves {len(moved)} part(s) in one commit: " + ", ".join(moved) + ".")
    if c.replaced_range:
        lines.append(f"The range `{c.old}` is now the exact version {c.new}.")
    if c.between:
        lines.append(f"Brings {len(c.between)} version(s): {', '.join(c.between[:10])}"
                     + (" …" if len(c.between) > 10 else "") + ".")
    return "\n".join(lines)


def _part(part: str) -> str:
    """`` image:api`` after an app's name when a change is about an image tag, not the chart."""
    return "" if part == "chart" else f" {part}"


def values_diff(pin_a: Pin, pin_b: Pin, diff: str) -> str:
    head = (f"`{pin_a.app}`: {pin_a.environment} {pinned(pin_a)}, "
            f"{pin_b.environment} {pinned(pin_b)}.")
    if not diff:
        return head + f"\nSame Helm values in {pin_a.environment} and {pin_b.environment}."
    lines = diff.splitlines()
    cut = len(lines) - 60
    body = "\n".join(lines[:60])
    more = f"\n… and {cut} more lines of diff." if cut > 0 else ""
    return f"{head}\nHelm values, {pin_a.environment} → {pin_b.environment}:\n```\n{body}\n```{more}"


def pending_list(waiting: Sequence[PendingChange], private: Collection[str] = ()) -> str:
    if not waiting:
        return "No change is waiting for approval."
    return items([pending(p, diff=p.environment not in private) for p in waiting],
                 "changes waiting (`!approve <id>` takes any of them)")


def values_elsewhere(environment: str, channels: Sequence[str]) -> str:
    return f"{environment}'s Helm values are shown only in {', '.join(channels)}: ask there."


def pending(p: PendingChange, new: bool = False, diff: bool = True) -> str:
    """A change waiting for a second person: the exact diff (unless ``diff`` is false: its
    environment's values are not shown here), who may approve, how."""
    who = ", ".join(map(mention, p.approvers)) if p.approvers is not None else "anyone who may make it"
    until = p.expires[11:16]
    head = (f"{p.environment} needs a second person: {p.action} `{p.app}` {p.old} → {p.new} is change "
            f"`{p.id}`, waiting for approval until {until} UTC by {who} (not {person(p.requester)}).")
    if not new:
        head = (f"`{p.id}`: {p.action} `{p.app}` {p.old} → {p.new} in {p.environment}, asked by "
                f"{person(p.requester)}, expires {until} UTC.")
    if not diff:
        return f"{head}\n`!approve {p.id}` or `!reject {p.id}`; its diff is shown only in {p.environment}'s channels."
    return f"{head}\n`!approve {p.id}` or `!reject {p.id}`:\n```\n{p.diff.rstrip()}\n```"


def audit(entries: Sequence[AuditEntry], environment: Optional[str] = None) -> str:
    where = f" in {environment}" if environment else ""
    if not entries:
        return f"Ferry has made no change{where} yet."
    return f"The last {len(entries)} change(s){where}:\n" + table(AUDIT_HEADERS, audit_rows(entries))


AUDIT_HEADERS = ("when", "change", "asked by", "approved by", "", "commit")


def audit_rows(entries: Sequence[AuditEntry]) -> list:
    return [[e.when[:16].replace("T", " "), e.subject, e.requested_by,
             e.approved_by or "-", "forced" if e.forced_by else "", e.commit[:10]] for e in entries]
