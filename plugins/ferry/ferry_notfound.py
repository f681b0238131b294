import difflib

from errbot import BotPlugin, cmdfilter


class FerryCommandNotFound(BotPlugin):
    """Answers an unknown command like Errbot's CommandNotFoundFilter, but its "did you mean"
    names only commands the asker may run: Errbot's suggests any command, admin ones included
    (config.py leaves CommandNotFoundFilter out of CORE_PLUGINS for this one)."""

    @cmdfilter(catch_unprocessed=True)
    def command_not_found(self, msg, cmd, args, dry_run, emptycmd=False):
        if not emptycmd:  # called as an ordinary filter on every command: let it through
            return msg, cmd, args
        if self.bot_config.SUPPRESS_CMD_NOT_FOUND:
            return None
        text = msg.body.strip()
        for prefix in (*self.bot_config.BOT_ALT_PREFIXES, self.bot_config.BOT_PREFIX):
            if text.lower().startswith(prefix.lower()):
                text = text[len(prefix):].strip()
                break
        words = text.split()
        typed = " ".join(words[:2])
        prefix = self.bot_config.BOT_PREFIX
        matches = difflib.get_close_matches(typed, self._runnable(msg), n=3) if typed else []
        if len(words) > 1:
            matches += difflib.get_close_matches(words[0], self._runnable(msg), n=3)
        said = f"Command `{prefix}{(words[0] if words else '')[:40]}` not found."
        if matches:
            said += " Did you mean " + " or ".join(f"`{prefix}{m}`" for m in dict.fromkeys(matches)) + "?"
        return said + f" `{prefix}help` lists what you may run."

    def _runnable(self, msg) -> list:
        """Command names (``repos search`` for ``repos_search``) the ACLs let ``msg``'s sender run,
        asked the way `!help` asks (Errbot's Help plugin runs the command filters as a dry run)."""
        helper = self.get_plugin("FerryHelp")
        return [name.replace("_", " ") for name in list(self._bot.commands)
                if helper.may_access_command(msg, name)]
