from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class FerryPromote(BotPlugin):
    """Promote along the chain"""

    @botcmd
    @answers
    def promote(self, msg, args):
        """`!promote <app>[@<version>] [chart|image|image:<container>] [from <env>] to <env> [--dry-run] [--queue]`: move the previous environment's version on, chart and image tags together; e.g. `!promote podinfo to stag`, `!promote podinfo from dev to qa`, `!promote podinfo@6.5.3 to stag`, `!promote api image:sidecar to stag`

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
