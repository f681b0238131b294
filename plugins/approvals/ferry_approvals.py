from errbot import BotPlugin, botcmd

from ferrychat import grammar, listing, presses, render
from ferrychat.replies import answers, progress, requester


class FerryApprovals(BotPlugin):
    """Four-eyes approval: changes into guarded environments wait for a second person."""

    @botcmd
    @answers
    def approve(self, msg, args):
        """Apply a change waiting for approval: `!approve 3f9a1c07d2`

        Someone other than the requester, allowed to approve in that environment, approves it. The
        change is checked again first: the pin must still be at the value its diff was made from.
        The Approve button in Slack runs this, for the person who pressed it.
        """
        change_id = grammar.parse_change_id("approve", args)
        ferry = self.get_plugin("Ferry")
        who, pressed = requester(msg), presses.press_of(msg) is not None
        # A press's reactions would land on the request everyone sees (❌ for someone's refused
        # press on a change that still waits): the update in place says the outcome instead.
        with progress(ferry, msg, shown=not pressed):
            change = ferry.gitops.approve(change_id, who)
        if pressed:
            presses.decide(self, msg, f"Approved by {who.signature}. {render.change(change)}")
        else:
            yield render.change(change)
        if change.commit is not None:
            ferry.committed(change, msg)

    @botcmd
    @answers
    def reject(self, msg, args):
        """Drop a change waiting for approval: `!reject 3f9a1c07d2 [reason]`

        The Reject button in Slack runs this, for the person who pressed it."""
        change_id, reason = grammar.parse_rejection(args)
        who = requester(msg)
        dropped = self.get_plugin("Ferry").gitops.reject(change_id, who)
        why = f": {reason}" if reason else ""
        said = (f"Rejected change `{dropped.id}` ({dropped.action} `{dropped.app}` {dropped.old} → "
                f"{dropped.new} in {dropped.environment}, asked by {dropped.requester.signature}){why}.")
        if presses.press_of(msg):
            presses.decide(self, msg, f"{said[:-1]}, by {who.signature}.")
            return None
        return said

    @botcmd
    @answers
    def pending(self, msg, args):
        """Changes waiting for approval: `!pending`

        The diff of a change into an environment whose values are shown only in its channels
        (`show_values: channels`) is left out elsewhere."""
        grammar.parse_nothing("pending", args)
        gitops, here = self.get_plugin("Ferry").gitops, requester(msg).channels
        private = {e.name for e in gitops.settings.environments if not e.shows_values_in(here)}
        return listing.pending(gitops.pending(), private)
