from errbot import BotPlugin, botcmd

from ferrychat import forges, grammar, listing, presses, previews, queued, render
from ferrychat.replies import answers, attach_file, progress, requester
from gitops.errors import ChangeDropped
from gitops.identity import person

POLL_MAX, POLL_MIN = 30.0, 0.2  # seconds between looks for expired requests


class FerryApprovals(BotPlugin):
    """Approvals: changes into guarded environments wait for a second person"""

    def activate(self):
        super().activate()
        self.ferry = self.get_plugin("Ferry")
        minutes = [e.policy.approval_minutes for e in self.ferry.gitops.settings.environments
                   if e.policy.approval]
        if minutes:  # a request message is updated within a fifth of the shortest expiry
            self.start_poller(min(POLL_MAX, max(POLL_MIN, min(minutes) * 60 / 5)), self.settle_expired)

    def settle_expired(self):
        try:
            presses.settle_expired(self.ferry, self.ferry.gitops.clock())
        except Exception:  # logged; the poller must live on to look again next round
            self.log.exception("updating the messages of expired approval requests failed")

    @botcmd
    @answers
    def approve(self, msg, args):
        """`!approve <id>`: apply a change waiting for approval (not your own), checked again first; e.g. `!approve 3f9a1c07d2`

        Someone other than the requester, allowed to approve in that environment, approves it. The
        change is decided again first, as when it was asked: the requester still allowed to ask
        for it, the pins still at the values its diff was made from, a promoted version still in
        the stage before, no new lock or freeze. The Approve button in Slack runs this, for the
        person who pressed it; either way the request message is updated in place.
        """
        change_id = grammar.parse_change_id("approve", args)
        ferry = self.get_plugin("Ferry")
        who, pressed = requester(msg), presses.press_of(msg) is not None
        # A press's reactions would land on the request everyone sees (❌ for someone's refused
        # press on a change that still waits): the update in place says the outcome instead.
        try:
            with progress(ferry, msg, shown=not pressed):
                change = ferry.gitops.approve(change_id, who)
        except ChangeDropped as dropped:
            presses.settle(ferry, change_id, f"Dropped when {person(who)} approved it: {dropped.message}", msg)
            raise
        if change.commit is not None or change.pull_request is not None:  # the watchers first
            ferry.committed(change, msg)
        # What the approver let through, as the request said it (a few lines, or one when the
        # preview cannot be made now: the change is pushed all the same).
        found, problem = ferry.gitops.preview_of_change(change)
        note = previews.short(found, problem)
        said = previews.with_short(render.change(change), note)
        presses.settle(ferry, change_id, f"Approved by {person(who)}. {said}", msg)
        if not pressed:
            yield said
            whole = previews.attachment(found, note)
            if whole is not None:
                attach_file(ferry, msg, whole)

    @botcmd
    @answers
    def reject(self, msg, args):
        """`!reject <id> [reason]`: drop a change waiting for approval or queued for a window (yours, or one you may approve); e.g. `!reject 3f9a1c07d2 not during the sale`

        The Reject button in Slack runs this, for the person who pressed it; either way the
        request message is updated in place. A change queued with `--queue` is withdrawn before
        its window opens."""
        change_id, reason = grammar.parse_rejection(args)
        who = requester(msg)
        ferry = self.get_plugin("Ferry")
        if ferry.gitops.queued_change(change_id) is not None:  # queued for a window: withdrawn
            return queued.withdrawn(ferry.gitops.cancel(change_id, who), who)
        dropped = ferry.gitops.reject(change_id, who)
        why = f": {reason}" if reason else ""
        said = f"Rejected change `{dropped.id}` ({presses.described(dropped)}){why}."
        presses.settle(ferry, dropped.id, f"{said[:-1]}, by {person(who)}.", msg)
        return None if presses.press_of(msg) else said

    @botcmd
    @answers
    def pending(self, msg, args):
        """`!pending`: the changes waiting for a second person, with their diffs, and those queued for a window; e.g. `!pending`

        Ferry's open pull requests (environments whose changes land as pull requests) come first.

        The diff of a change into an environment whose values are shown only in its channels
        (`show_values: channels`) is left out elsewhere. Changes queued with `--queue` follow,
        each with the opening it waits for."""
        grammar.parse_nothing("pending", args)
        gitops, here = self.get_plugin("Ferry").gitops, requester(msg).channels
        private = {e.name for e in gitops.settings.environments if not e.shows_values_in(here)}
        opened = gitops.landing.open_requests()
        if opened:
            yield forges.open_pull_requests(opened)
        waiting = gitops.queued()
        closed = queued.closed([state for _, state in gitops.window_states(closed_only=True)])
        if gitops.pending() or not waiting:
            yield listing.pending(gitops.pending(), private)
        if waiting or closed:  # outside a window: said before anyone asks
            yield "\n".join(filter(None, [queued.listing(waiting, [gitops.when_opens(c) for c in waiting]), closed]))
