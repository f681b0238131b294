from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers, person
from gitops.identity import mention


class FerryLocks(BotPlugin):
    """Locks and freezes: admins stop changes into an environment or one app (by DM)."""

    @botcmd(admin_only=True)
    @answers
    def lock(self, msg, args):
        """Lock an environment or one app against changes (admins, by DM): `!lock prod [podinfo] [reason]`"""
        gitops = self.get_plugin("Ferry").gitops
        env, app, reason = grammar.parse_lock(args, gitops.inventory().apps())
        gitops.lock(env, app, person(msg), reason)
        what = f"`{app}` in {env}" if app else env
        return f"Locked {what}{': ' + reason if reason else ''}. Changes are refused until `!unlock`."

    @botcmd(admin_only=True)
    @answers
    def unlock(self, msg, args):
        """Lift a lock (admins, by DM): `!unlock prod [podinfo]`"""
        person(msg)
        gitops = self.get_plugin("Ferry").gitops
        env, app, _ = grammar.parse_lock(args, gitops.inventory().apps(), command="unlock")
        record = gitops.unlock(env, app)
        what = f"`{app}` in {env}" if app else env
        return f"Unlocked {what} (locked by {mention(record.by)} since {record.when})."

    @botcmd(admin_only=True)
    @answers
    def locks(self, msg, args):
        """Locks and freeze windows in force (admins, by DM): `!locks`"""
        grammar.parse_nothing("locks", args)
        found = self.get_plugin("Ferry").gitops.locks()
        if not found:
            return "Nothing is locked or frozen."
        rows = [[key, lock.by, lock.when, lock.reason] for key, lock in found]  # IDs: a code block shows no mention
        return render.table(["what", "by", "since", "why"], rows)
