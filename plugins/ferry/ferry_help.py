import inspect

from errbot import botcmd
from errbot.core_plugins import help as errbot_help
from errbot.version import VERSION

# Ferry's capabilities in the order a release moves; each plugin's docstring is its heading.
CAPABILITIES = ("FerryVersions", "FerryPreview", "FerryDeploy", "FerryPromote", "FerryRollback", "FerryApprovals",
                "FerryLocks")


class FerryHelp(errbot_help.Help):
    """Help: what you may run here."""

    @botcmd(template=None)
    def about(self, msg, args):
        """The Errbot version Ferry runs on"""
        return f"Ferry on Errbot {VERSION}."

    @botcmd
    def help(self, msg, args):
        """What you may run, Ferry's commands first: `!help`, `!help deploy`"""
        if args.strip():
            return super().help(msg, args)  # one command (every form) or one plugin, as Errbot says it
        runnable = self._runnable(msg)
        lines = ["**Ferry**: releases through Git, from chat. `!help <command>` shows every form of one."]
        for plugin_name in CAPABILITIES:
            commands = runnable.pop(plugin_name, [])
            if commands:
                plugin = commands[0][1].__self__
                lines += ["", f"*{first_line(type(plugin).__doc__)}*"]
                lines += [f"• {first_line(command.__doc__)}" for _, command in commands]
        lines += ["", "*Help*", "• `!help [<command>]`: this list, or every form of one command"]
        runnable.pop(self.name, None)
        others = [(name, command) for plugin in sorted(runnable) for name, command in runnable[plugin]]
        if others:  # Errbot's own commands: the ACLs leave them to admins, by DM
            lines += ["", "**Errbot**: the bot itself"]
            lines += [f"• `{self._bot.prefix}{name.replace('_', ' ')}`: {first_line(command.__doc__)}"
                      for name, command in others]
        return "\n".join(lines)

    def _runnable(self, msg) -> dict:
        """Plugin name → [(command name, command)] the asker may run, sorted, hidden ones left out."""
        by_plugin: dict = {}
        for name, command in sorted(self._bot.all_commands.items()):
            if command._err_command_hidden or not self.may_access_command(msg, name):
                continue
            by_plugin.setdefault(command.__self__.name, []).append((name, command))
        for commands in by_plugin.values():  # in the order the plugin declares them
            commands.sort(key=lambda item: inspect.unwrap(item[1]).__code__.co_firstlineno)
        return by_plugin


def first_line(doc) -> str:
    return (doc or "(undocumented)").strip().split("\n", 1)[0]
