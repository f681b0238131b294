from errbot import BotPlugin, botcmd

from ferrychat import grammar
from ferrychat.replies import answers, carry_out


class FerryRollback(BotPlugin):
    """Roll back"""

    @botcmd
    @answers
    def rollback(self, msg, args):
        """`!rollback <app> [chart|image|image:<container>] on <env> [to <version>] [--dry-run] [--queue]`: go back to a version the environment ran before; e.g. `!rollback podinfo on qa`, `!rollback podinfo on qa to 6.5.1`, `!rollback api image:app on qa`

        Forms: `!rollback <app> on <env>` (or `in <env>`): the previous distinct version in that
        environment's Git history; `!rollback <app> on <env> to <version>`: a version it ran before;
        `!rollback <app> chart|image|image:<container> on <env>` rolls that part back.
        Deploying the version rolled back from into that environment again then needs `--force`.
        `--dry-run` shows the diff and pushes nothing.
        """
        req = grammar.parse_rollback(args)
        ferry = self.get_plugin("Ferry")
        plan = ferry.gitops.plan_rollback(req.app, req.environment, req.version, req.part)
        yield from carry_out(ferry, plan, msg, req)
