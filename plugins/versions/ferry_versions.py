import time

from errbot import BotPlugin, botcmd

from ferrychat import grammar, render
from ferrychat.replies import answers
from gitops.feedback import live_states


class FerryVersions(BotPlugin):
    """What runs where: versions across environments, their history, the differences."""

    @botcmd
    @answers
    def versions(self, msg, args):
        """What runs where: `!versions`, `!versions podinfo`, `!versions podinfo qa`

        `!versions`: every app × environment (`~` a range, `*` newer in the registry, `no access`:
        the registry refused Ferry that chart), and what Flux last reported live there (`≠` another version runs, `!` the release failed).
        `!versions <app>`: one app everywhere, and the registry's newest versions with their dates.
        `!versions <app> <env>`: its history there: version, who, when, commit.
        """
        words = grammar.parse_versions(args)
        gitops = self.get_plugin("Ferry").gitops
        if not words:
            inventory = gitops.inventory()
            newest, notes, refused = gitops.newest(inventory.pins)
            return render.overview(inventory.pins, gitops.settings.environment_names, newest,
                                   [*notes, *render.problems(inventory.problems)],
                                   live_states(gitops.memory, inventory.pins), time.time(), refused)
        if len(words) == 1:
            pins, infos, note = gitops.app_report(words[0])
            return render.app_overview(pins[0].app, pins, infos, note,
                                       live_states(gitops.memory, pins), time.time())
        pin = gitops.pin(*words)
        return render.history(pin.app, pin.environment, gitops.history(pin.app, pin.environment))

    @botcmd
    @answers
    def diff(self, msg, args):
        """What differs between environments: `!diff qa prod`, `!diff podinfo qa prod`

        `!diff <envA> <envB>`: the apps whose versions differ.
        `!diff <app> <envA> <envB>`: its versions and the unified diff of its Helm values.
        """
        words = grammar.parse_diff(args)
        gitops = self.get_plugin("Ferry").gitops
        if len(words) == 2:
            env_a, env_b = (gitops.settings.environment(w).name for w in words)
            return render.environments_diff(env_a, env_b, gitops.environment_diff(env_a, env_b))
        return render.values_diff(*gitops.values_diff(*words))

    @botcmd
    @answers
    def audit(self, msg, args):
        """The last changes Ferry made, from Git: `!audit`, `!audit prod 20`

        Each with who asked, who approved and who forced it past a lock, from the commit trailers.
        """
        env, count = grammar.parse_audit(args)
        return render.audit(self.get_plugin("Ferry").gitops.audit(env, count), env)
