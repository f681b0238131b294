from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers, requester


class Deploy(BotPlugin):
    """Pin a chart version in one environment."""

    @botcmd
    @answers
    def deploy(self, msg, args):
        """Pin a version: `!deploy podinfo 6.5.3 to qa` or `!deploy podinfo@6.5.3 to qa` [--dry-run] [--force]"""
        req = grammar.parse_deploy(args)
        gitops = self.get_plugin("Ferry").gitops
        plan = gitops.plan_deploy(req.app, req.environment, req.version)
        gitops.check(plan, force=req.force)
        if not (req.dry_run or plan.noop):
            yield render.intent(plan)
        yield render.change(gitops.apply(plan, requester(msg), dry_run=req.dry_run, force=req.force))
