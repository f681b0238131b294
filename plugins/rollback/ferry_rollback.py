from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers, requester


class Rollback(BotPlugin):
    """Go back to a version an environment ran before."""

    @botcmd
    @answers
    def rollback(self, msg, args):
        """Roll back: `!rollback podinfo on qa` (the previous version) or `!rollback podinfo on qa to 6.5.1` [--dry-run]"""
        req = grammar.parse_rollback(args)
        gitops = self.get_plugin("Ferry").gitops
        plan = gitops.plan_rollback(req.app, req.environment, req.version)
        gitops.check(plan, force=req.force)
        if not (req.dry_run or plan.noop):
            yield render.intent(plan)
        yield render.change(gitops.apply(plan, requester(msg), dry_run=req.dry_run))
