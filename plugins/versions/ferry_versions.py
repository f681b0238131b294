from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers


class Versions(BotPlugin):
    """What runs where: versions across environments, their history, the differences."""

    @botcmd
    @answers
    def versions(self, msg, args):
        """What runs where: `!versions`, `!versions podinfo` (and the registry's newest), `!versions podinfo qa` (history)"""
        words = grammar.parse_versions(args)
        gitops = self.get_plugin("Ferry").gitops
        if not words:
            inventory = gitops.inventory()
            newest, notes = gitops.newest(inventory.pins)
            return render.overview(inventory.pins, gitops.settings.environment_names, newest, notes)
        if len(words) == 1:
            pins, infos, note = gitops.app_report(words[0])
            return render.app_overview(pins[0].app, pins, infos, note)
        pin = gitops.pin(*words)
        return render.history(pin.app, pin.environment, gitops.history(pin.app, pin.environment))

    @botcmd
    @answers
    def diff(self, msg, args):
        """What differs between environments: `!diff qa prod`, or one app's version and values: `!diff podinfo qa prod`"""
        words = grammar.parse_diff(args)
        gitops = self.get_plugin("Ferry").gitops
        if len(words) == 2:
            env_a, env_b = (gitops.settings.environment(w).name for w in words)
            return render.environments_diff(env_a, env_b, gitops.environment_diff(env_a, env_b))
        return render.values_diff(*gitops.values_diff(*words))
