"""Writing one change: edit one line on the remote's newest tip, commit as the requester, push.

The workspace runs the edit again on the new tip after a rejected push, so the edit plans from
the tree it is given: the pin must still be editable there (and, for an approval, still hold the
value the approved diff was made from), and the commit message must describe the diff actually
committed, so a pin that moved under the change means a new message and another attempt.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

from . import editing
from ..flux import images
from . import trailers as t
from ..errors import GitUnauthorized, GitUnavailable, PushRejected, UnknownApp
from ..identity import plain
from ..model import Plan, Pin, Requester
from .planning import require_editable
from ..workspace import Workspace

ATTEMPTS = 5  # as many as the workspace's push attempts: each replan is a new tip


@dataclass(frozen=True)
class Written:
    """What a write found on the tip it planned on, and what it did there."""
    pin: Pin  # the pin on that tip
    base: str = ""  # that tip's commit ("" when nothing was planned)
    diff: str = ""  # the diff committed
    sha: Optional[str] = None  # the commit pushed; None when there was nothing to do
    moved: tuple = ()  # ((pin on that tip, new value), ...) of every line the commit changes


def push(ws: Workspace, plan: Plan, requester: Requester, pins_at: Callable, *,
         forced: tuple = (), approver: Optional[Requester] = None,
         expect: Optional[dict] = None, trailers: tuple = ()) -> Written:
    """Commit ``plan`` on the newest tip and push it. ``pins_at(tree)``: the pins at a tree;
    ``expect``: part -> the value that part's pin must still have (``PinMoved`` otherwise);
    ``trailers``: (name, value) pairs added to the message's."""
    edit = _Edit(plan, pins_at, expect)
    try:
        for _ in range(ATTEMPTS):
            message = commit_message(edit.described, requester, approver, forced, trailers)
            try:
                result = ws.change(edit, author=requester, message=message)
                break
            except _Replan as moved:
                ws.observe.retried("replan")
                edit.described = moved.plan
        else:
            raise PushRejected("the version kept moving under Ferry's change; try again.")
    except (PushRejected, GitUnavailable, GitUnauthorized) as e:
        raise _about(plan, e) from None
    found = edit.found or Written(plan.pin)
    return replace(found, sha=result[0]) if result is not None else found


def to_branch(ws: Workspace, plan: Plan, requester: Requester, pins_at: Callable, branch: str, *,
              onto_existing: bool = False, forced: tuple = (), approver: Optional[Requester] = None,
              expect: Optional[dict] = None) -> Written:
    """``plan`` committed the same way onto ``branch`` (a pull request's), from the environment's
    newest tip or, ``onto_existing``, from that branch's; ``sha`` None when it holds it already."""
    edit = _Edit(plan, pins_at, expect)
    try:
        for _ in range(ATTEMPTS):
            message = commit_message(edit.described, requester, approver, forced)
            try:
                sha, base = ws.change_branch(edit, author=requester, message=message, branch=branch,
                                             onto_existing=onto_existing)
                break
            except _Replan as moved:
                edit.described = moved.plan
        else:
            raise PushRejected("the version kept moving under Ferry's change; try again.")
    except (PushRejected, GitUnavailable, GitUnauthorized) as e:
        raise _about(plan, e) from None
    found = edit.found or Written(plan.pin, base)
    return replace(found, sha=sha)


def _about(plan: Plan, error: Exception) -> Exception:
    """Many commands may be waiting on one remote: say which change this answer is about."""
    return type(error)(f"{plan.action.capitalize()} {plan.pin.label} {plan.new} to {plan.environment} "
                       f"not pushed: {error}")


class _Edit:
    """The edit ``Workspace.change`` runs on each tip it tries; keeps what it found on the last."""

    def __init__(self, plan: Plan, pins_at: Callable, expect: Optional[dict]):
        self.plan, self.pins_at, self.expect = plan, pins_at, expect
        self.described = plan  # the plan (its pins as on a tip) the commit message in hand describes
        self.found: Optional[Written] = None

    def __call__(self, tree) -> Optional[dict]:
        plan, pins = self.plan, self.pins_at(tree)
        edits = []
        for pin, new in plan.edits:
            now = next((p for p in pins if p.app == pin.app and p.environment == pin.environment
                        and p.part == pin.part), None)
            if now is None:
                raise UnknownApp(plan.app, [], plan.environment)
            require_editable(now)
            edits.append((now, new))
        now = edits[0][0]
        self.found = Written(now, tree.commit)
        for pin, _ in edits:  # every part of an approved diff, not only the first
            if self.expect is not None and pin.part in self.expect and pin.version != self.expect[pin.part]:
                raise PinMoved(pin.part, pin.version)
        on_tip = replace(plan, pin=now, also=tuple(edits[1:]))
        if on_tip.noop:
            return None  # someone got there first
        if [(p.version, p.is_range) for p, _ in on_tip.edits] != \
                [(p.version, p.is_range) for p, _ in self.described.edits]:
            raise _Replan(on_tip)  # the message in hand would describe another diff
        todo = changing(on_tip.edits)
        texts, diff = edited_files(tree, todo)
        self.found = Written(now, tree.commit, diff, moved=tuple(todo))
        return texts


def changing(edits) -> list:
    """The (pin, new) edits that change their line (a range is replaced even by its own text)."""
    return [(p, new) for p, new in edits if p.version != new or p.is_range]


def edited_files(tree, edits) -> tuple[dict, str]:
    """The files ``edits`` give on ``tree`` (path -> new text) and their unified diff; two parts
    in one file are two lines of the same text."""
    texts: dict = {}
    for pin, new in edits:
        path = pin.location.file
        texts[path] = editing.set_version(texts.get(path) or tree.read(path), pin.location,
                                          images.written(pin, new))
    diff = "".join(editing.unified_diff(path, tree.read(path), text) for path, text in texts.items())
    return texts, diff


class _Replan(Exception):
    """The pins on the new tip are not those the commit message describes: build it again."""

    def __init__(self, plan: Plan):
        super().__init__(plan.pin.version)
        self.plan = plan


class PinMoved(Exception):
    """A pin no longer holds the value a change was planned from (internal to approvals)."""

    def __init__(self, part: str, now: Optional[str]):
        super().__init__(part, now)
        self.part, self.now = part, now


def commit_message(plan: Plan, requester: Requester, approver: Optional[Requester],
                   forced: tuple, trailers: tuple = ()) -> str:
    """The subject and trailers of the diff ``plan`` makes (its pin as it is on the tip written);
    ``forced``: the blockers --force overrode; ``trailers``: more (name, value) pairs."""
    old = plan.old or "unpinned"
    origin = f" from {plan.source_environment}" if plan.source_environment else ""
    lines = [(t.REQUESTED_BY, requester.signature), (t.ENVIRONMENT, plan.environment),
             (t.APP, plan.app), (t.FROM_VERSION, old), (t.TO_VERSION, plan.new)]
    if plan.pin.is_image:  # which part of the app: history and audit read it back
        lines.insert(3, (t.PART, plan.part))
    if requester.bot:  # a bot the environment's policy names asked: say so
        lines.insert(1, (t.BOT, requester.signature))
    if approver is not None:
        lines.append((t.APPROVED_BY, approver.signature))
        if approver.bot:
            lines.append((t.BOT, approver.signature))
    lines += [(t.FORCED_BY, f"{requester.signature} past: {plain(blocker.reason)}") for blocker in forced]
    if requester.link:
        lines.append((t.CHAT_THREAD, requester.link))
    moves = [(p, new) for p, new in plan.also if p.version != new]
    lines += [(t.MOVES, f"{p.part} {p.version or 'unpinned'} → {new}") for p, new in moves]
    lines += list(trailers)
    subject = f"{plan.action} {plan.pin.label} {old} → {plan.new}{origin} to {plan.environment}"
    if moves:
        subject = (f"{plan.action} {plan.app} " + ", ".join(
            f"{p.part} {p.version or 'unpinned'} → {new}" for p, new in plan.edits if p.version != new)
            + f"{origin} to {plan.environment}")
    body = "\n".join(f"{k}: {' '.join(str(v).split())}" for k, v in lines)
    return f"{subject}\n\n{body}\n"
