from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class Deploy(BotPlugin):
    """Pin a chart version in one environment."""

    @botcmd
    @answers
    def deploy(self, msg, args):
        """Pin a version: `!deploy podinfo 6.5.3 to qa` or `!deploy podinfo@6.5.3 to qa` [--dry-run] [--force]"""
        req = grammar.parse_deploy(args)
        gitops = self.get_plugin("Ferry").gitops
        yield from carry_out(gitops, gitops.plan_deploy(req.app, req.environment, req.version), msg, req)
