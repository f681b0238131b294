from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class Promote(BotPlugin):
    """Move the version of one environment to the next in the chain."""

    @botcmd
    @answers
    def promote(self, msg, args):
        """Promote: `!promote podinfo to qa`, `!promote podinfo from dev to qa`, `!promote podinfo@6.5.3 to qa` [--dry-run] [--force]"""
        req = grammar.parse_promote(args)
        gitops = self.get_plugin("Ferry").gitops
        plan = gitops.plan_promotion(req.app, req.environment, req.source, req.version)
        yield from carry_out(gitops, plan, msg, req)
