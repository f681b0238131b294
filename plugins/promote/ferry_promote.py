from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class FerryPromote(BotPlugin):
    """Move the version of one environment to the next in the chain."""

    @botcmd
    @answers
    def promote(self, msg, args):
        """Move the previous environment's version on: `!promote podinfo to qa`

        Forms: `!promote <app> to <env>` (from the environment just before it),
        `!promote <app> from <env> to <env>`, `!promote <app>@<version> to <env>`;
        `!promote <app> chart|image|image:<container> to <env>` promotes that part only.
        Promotion does not skip stages: the version must already run just before the target.
        The reply lists the versions the promotion brings. `--dry-run` and `--force` as for deploy.
        """
        req = grammar.parse_promote(args)
        ferry = self.get_plugin("Ferry")
        plan = ferry.gitops.plan_promotion(req.app, req.environment, req.source, req.version, req.part)
        yield from carry_out(ferry, plan, msg, req)
