from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class Rollback(BotPlugin):
    """Go back to a version an environment ran before."""

    @botcmd
    @answers
    def rollback(self, msg, args):
        """Roll back: `!rollback podinfo on qa` (the previous version) or `!rollback podinfo on qa to 6.5.1` [--dry-run]"""
        req = grammar.parse_rollback(args)
        gitops = self.get_plugin("Ferry").gitops
        plan = gitops.plan_rollback(req.app, req.environment, req.version)
        yield from carry_out(gitops, plan, msg, req)
