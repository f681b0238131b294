"""What Ferry says when Flux reports back: one ``Outcome`` of ``gitops.feedback.events`` in, chat text out."""
from __future__ import annotations

from ferrychat.forges import request_name
from gitops.feedback.events import REMEDIATED, Outcome
from gitops.identity import person

MESSAGE_LIMIT = 600  # characters of Flux's message quoted in chat


def duration(seconds: float) -> str:
    """``45s``, ``3m 12s``, ``2h 5m``, ``3d 4h``."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m" if s % 3600 // 60 else f"{s // 3600}h"
    return f"{s // 86400}d {s % 86400 // 3600}h" if s % 86400 // 3600 else f"{s // 86400}d"


def age(seconds: float) -> str:
    """One unit, for table cells: ``40s``, ``3m``, ``2h``, ``5d``."""
    s = int(max(0, seconds))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def say(outcome: Outcome, timeout_minutes: float = 10) -> str:
    """The reply for one outcome: in the command's thread, or in the environment's channel."""
    o, event, pending = outcome, outcome.event, outcome.pending
    version = (pending.version if pending else "") or (event.version if event else "")
    part = f" {pending.part}" if pending is not None and pending.part != "chart" else ""
    what = f"`{o.app}`{part} {version}".rstrip()
    if o.kind == "live":
        late = " after all" if pending and pending.timed_out else ""
        return (f"{what} is live in {o.environment}{late}: Flux reports {event.reason}, "
                f"{duration(o.elapsed)} after the push.")
    if o.kind == "failed":
        return (f"{what} failed in {o.environment}: Flux reports {event.reason}, "
                f"{duration(o.elapsed)} after the push.{_quoted(event.message)}")
    if o.kind == "timeout":
        commit = f" (commit {pending.commit[:10]})" if pending and pending.commit else ""
        return (f"{what} in {o.environment}: no word from Flux within {_minutes(timeout_minutes)} "
                f"of the push{commit}. I will still answer here if it reports.")
    if o.kind == "superseded":
        newer = o.by
        who = f" by {person(newer.requester)}" if newer and newer.requester.id else ""
        return (f"{what} in {o.environment}: {newer.version if newer else 'another version'} was pushed{who} "
                f"before Flux reported on this one; I follow that change instead.")
    # a notice for the environment's channel: nobody's command waits for it
    release = f"`{o.app}`" + (f" {event.version}" if event and event.version else "")
    if event.outcome == "live":
        head = f"{o.environment}: {release} is live (Flux reports {event.reason})."
    elif event.reason in REMEDIATED and event.reason.endswith("Succeeded"):
        verb = "rolled back to" if event.reason.startswith("Rollback") else "uninstalled at"
        head = f"{o.environment}: `{o.app}` {verb} {event.version or '?'} by Flux ({event.reason})."
    elif event.outcome == "failed":
        head = f"{o.environment}: {release} failed (Flux reports {event.reason})."
    else:
        head = f"{o.environment}: `{o.app}`: Flux reports {event.reason}."
    return head + _quoted(event.message)


def _quoted(message: str) -> str:
    text = (message or "").strip()
    if not text:
        return ""
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + "…"
    return "\n```\n" + text.replace("```", "'''") + "\n```"


def _minutes(minutes: float) -> str:
    if minutes >= 1 and float(minutes).is_integer():
        return f"{int(minutes)} minute{'s' if minutes != 1 else ''}"
    return duration(minutes * 60)


def say_verdict(verdict) -> str:
    """What a verification's thread hears (``gitops.feedback.verifier.Verdict``)."""
    r, kind = verdict.record, verdict.kind
    part = f" {r.part}" if r.part != "chart" else ""
    what = f"`{r.app}`{part} {r.version}"
    figures = ", ".join(f"`{label}` = {value}" for label, value in r.figures.items())
    if kind == "verifying":
        checks = ", ".join(f"`{label}`" for label in verdict.checks)
        return f"{what} in {r.environment}: verifying, {checks} must hold for {duration(verdict.soak)}."
    if kind == "verified":
        held = f": {figures}, held for {duration(r.verified_at - r.since)}" if figures else ""
        return f"{what} is verified in {r.environment}{held}."  # no checks: live is verified
    if kind == "failed" and r.cause == "timeout":  # the wait was just said
        return f"{what} failed its verification in {r.environment}: no word from Flux."
    if kind == "failed" and r.cause == "flux":  # Flux's own words were just said, quoted
        return f"{what} failed its verification in {r.environment}: Flux reported a failure."
    if kind == "failed":
        return f"{what} failed its verification in {r.environment}: {_one_line(r.reason)}"
    if kind == "rolled-back" and verdict.change is not None and verdict.change.pull_request is not None:
        pr = verdict.change.pull_request  # `write: pull-request`: the revert waits for its merge
        return (f"{what} failed its verification in {r.environment}: Ferry opened "
                f"{request_name(pr.kind, pr.number)} on behalf of {person(r.requester)} to roll it back "
                f"to {r.old}: {pr.url}. It lands when it is merged; then {r.version} cannot come back "
                "without `--force`.")
    if kind == "rolled-back":
        change = verdict.change
        commit = f" (commit {change.commit.sha[:10]})" if change is not None and change.commit else ""
        back = f"{what} rolled back to {r.old} in {r.environment}"
        gone = f"{r.version} cannot"
        if change is not None and change.moves:  # the whole app the failed change moved
            back = f"`{r.app}` rolled back in {r.environment} (" + ", ".join(
                f"{part} {old} → {new}" for part, old, new in change.moves) + ")"
            gone = "Those versions cannot"
        return (f"{back} by Ferry on behalf of {person(r.requester)}{commit}: its verification failed. "
                f"{gone} come back without `--force`.")
    if kind == "not-rolled-back":
        return (f"{what} was not rolled back in {r.environment}: {_one_line(verdict.problem)} "
                f"Roll it back by hand: `!rollback {r.app} on {r.environment}`.")
    if kind == "superseded":
        return f"{what} in {r.environment}: its verification ended: {_one_line(r.reason)}."
    if kind == "resumed":
        read = ("Prometheus shows every check held while it was away" if verdict.checks else
                "it missed no evaluation")
        return (f"{what} in {r.environment}: Ferry restarted during its verification; {read}, so the soak "
                f"goes on: {duration(verdict.soak)} remain.")
    if kind == "restarted":
        return (f"{what} in {r.environment}: Ferry restarted during its verification and could not read "
                f"what it missed from Prometheus ({_one_line(verdict.problem).rstrip('.')}); the soak of "
                f"{duration(verdict.soak)} begins again now.")
    return f"{what} in {r.environment}: its verification was lost at a restart: {_one_line(r.reason)}."


def _one_line(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"
