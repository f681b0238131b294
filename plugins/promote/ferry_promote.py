from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers, requester


class Promote(BotPlugin):
    """Move the version of one environment to the next in the chain."""

    @botcmd
    @answers
    def promote(self, msg, args):
        """Promote: `!promote podinfo to qa`, `!promote podinfo from dev to qa`, `!promote podinfo@6.5.3 to qa` [--dry-run] [--force]"""
        req = grammar.parse_promote(args)
        gitops = self.get_plugin("Ferry").gitops
        plan = gitops.plan_promotion(req.app, req.environment, req.source, req.version)
        gitops.check(plan, force=req.force)
        if not (req.dry_run or plan.noop):
            yield render.intent(plan)
        yield render.change(gitops.apply(plan, requester(msg), dry_run=req.dry_run, force=req.force))
