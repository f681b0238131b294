from errbot import BotPlugin, botcmd

from ferrychat import grammar, queued, render
from ferrychat.replies import admins_by_dm, answers, person
from gitops.identity import mention


class FerryLocks(BotPlugin):
    """Locks and freezes (admins, by DM)"""

    @botcmd
    @admins_by_dm
    @answers
    def lock(self, msg, args):
        """`!lock <env> [<app>] [reason]`: stop changes into an environment or one app (admins, by DM); e.g. `!lock prod incident 4711`, `!lock prod podinfo`"""
        gitops = self.get_plugin("Ferry").gitops
        env, app, reason = grammar.parse_lock(args, gitops.inventory().apps())
        gitops.lock(env, app, person(msg), reason)
        what = f"`{app}` in {env}" if app else env
        return f"Locked {what}{': ' + reason if reason else ''}. Changes are refused until `!unlock`."

    @botcmd
    @admins_by_dm
    @answers
    def unlock(self, msg, args):
        """`!unlock <env> [<app>]`: lift a lock (admins, by DM); e.g. `!unlock prod`, `!unlock prod podinfo`"""
        person(msg)
        gitops = self.get_plugin("Ferry").gitops
        env, app, _ = grammar.parse_lock(args, gitops.inventory().apps(), command="unlock")
        record = gitops.unlock(env, app)
        what = f"`{app}` in {env}" if app else env
        return f"Unlocked {what} (locked by {mention(record.by)} since {record.when})."

    @botcmd
    @admins_by_dm
    @answers
    def locks(self, msg, args):
        """`!locks`: the locks and freeze windows in force, and each promotion window open or closed (admins, by DM); e.g. `!locks`"""
        grammar.parse_nothing("locks", args)
        gitops = self.get_plugin("Ferry").gitops
        found, windows = gitops.locks(), queued.windows([state for _, state in gitops.window_states()])
        said = "Nothing is locked or frozen."
        if found:
            rows = [[key, lock.by, lock.when, lock.reason] for key, lock in found]  # IDs: a code block shows no mention
            said = render.table(["what", "by", "since", "why"], rows)
        return f"{said}\n{windows}" if windows else said
