from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class FerryDeploy(BotPlugin):
    """Deploy"""

    @botcmd
    @answers
    def deploy(self, msg, args):
        """`!deploy <app> [chart|image|image:<container>] <version> to <env> [--dry-run] [--queue]`: pin a chart version or an image tag in one environment; e.g. `!deploy podinfo 6.5.3 to qa`, `!deploy podinfo@6.5.3 to qa --dry-run`, `!deploy web image 1.4.2 to qa`

        Forms: `!deploy <app> <version> to <env>` or `!deploy <app>@<version> to <env>`.
        The version must exist in the chart's registry. (An image tag: in the image's registry.)
        They change what the app is tracked by (its chart version, or its image tag: `!versions`
        says); `!deploy <app> chart|image|image:<container> <version> to <env>` names the part. `--dry-run` shows the one-line diff and
        pushes nothing; `--force` brings back a version that was rolled back from that environment.
        Outside the environment's promotion windows (`policy.windows`) a change is refused with the
        next opening; `--queue` keeps it for then, when it is planned and checked again.
        """
        req = grammar.parse_deploy(args)
        ferry = self.get_plugin("Ferry")
        plan = ferry.gitops.plan_deploy(req.app, req.environment, req.version, req.part)
        yield from carry_out(ferry, plan, msg, req)
