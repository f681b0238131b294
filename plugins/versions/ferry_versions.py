import time

from errbot import BotPlugin, botcmd

from ferrychat import grammar, listing, queued, render
from ferrychat.replies import answers, requester
from gitops.errors import NotAllowed
from gitops.feedback.waits import live_states


class FerryVersions(BotPlugin):
    """See what runs where"""

    @property
    def tables(self) -> listing.VersionsTables:
        """The whole tables of the newest inventory, kept for the next `!versions`."""
        if getattr(self, "_tables", None) is None:
            self._tables = listing.VersionsTables()
        return self._tables

    @botcmd
    @answers
    def versions(self, msg, args):
        """`!versions [<app>|<glob>] [--outdated] [--env <env>]`, `!versions <app> <env>`: what runs where, one app everywhere, or its history in one environment; e.g. `!versions`, `!versions podinfo`, `!versions team-a-* --outdated --env prod`, `!versions podinfo qa`

        `!versions`: every app × environment (`~` a range, `*` newer in the registry, `no access`:
        the registry refused Ferry that chart), and what Flux last reported live there (`≠` another version runs, `!` the release failed);
        a note under it for each version still soaking before it may be promoted.
        Narrow it: `!versions <glob>` (app names, `*` `?` `[…]`), `--outdated` (behind the registry's
        newest release or the previous environment), `--env <env>` (one column); a table too long
        for a message comes as a file in the thread.
        `!versions <app>`: one app everywhere (its chart version and every image tag, `*` on what it
        is tracked by), the registry's newest versions with their dates, and its last verification
        in each environment (a verified version still soaking says how long before a promotion).
        `!versions <app> <env>`: its history there: version, who, when, commit.
        """
        query = grammar.parse_versions(args)
        gitops = self.get_plugin("Ferry").gitops
        if query.table:
            column = None
            if query.column is not None:
                column = grammar.known_environment("versions", query.column, gitops.settings).name
            now = time.time()

            def newest(pins):  # the registry's notes, then the versions still soaking
                found, notes, refused = gitops.newest(pins)
                soaking = listing.soaking(gitops.verifications.in_state("verified"), {p.app for p in pins},
                                          gitops.settings, now)
                closed = queued.closed([s for e, s in gitops.window_states(closed_only=True)
                                        if column in (None, e)])
                return found, [*notes, *soaking, *filter(None, [closed])], refused

            return self.tables.versions(gitops.inventory(), query, gitops.settings.environment_names,
                                        column, newest, lambda pins: live_states(gitops.memory, pins), now)
        if query.environment is None:
            pins, infos, note = gitops.app_report(query.app)
            now = time.time()
            overview = render.app_overview(pins[0].app, pins, infos, note,
                                           live_states(gitops.memory, pins), now, newest_part=pins[0].part)
            verified = listing.verifications(gitops.verifications.of_app(pins[0].app), gitops.settings, now)
            return f"{overview}\n{verified}" if verified else overview
        pin = gitops.pin(query.app, query.environment)
        return render.history(pin.app, pin.environment, gitops.history(pin.app, pin.environment))

    @botcmd
    @answers
    def diff(self, msg, args):
        """`!diff [<app>] <envA> <envB>`: what differs between two environments, or one app's versions and Helm values; e.g. `!diff qa prod`, `!diff podinfo qa prod`

        `!diff <envA> <envB>`: the apps whose versions differ.
        `!diff <app> <envA> <envB>`: its versions and the unified diff of its Helm values (of an
        environment with `show_values: channels`, only in its channels).
        """
        words = grammar.parse_diff(args)
        gitops = self.get_plugin("Ferry").gitops
        if len(words) == 2:
            env_a, env_b = (gitops.settings.environment(w).name for w in words)
            return render.environments_diff(env_a, env_b, gitops.environment_diff(env_a, env_b))
        here = requester(msg).channels
        for env in (gitops.settings.environment(w) for w in words[1:]):
            if not env.shows_values_in(here):
                raise NotAllowed(render.values_elsewhere(env.name, env.policy.channels))
        return render.values_diff(*gitops.values_diff(*words))

    @botcmd
    @answers
    def audit(self, msg, args):
        """`!audit [<env>] [<count>]`: the last changes Ferry made, from Git (who asked, approved, forced); e.g. `!audit`, `!audit prod 20`

        Each with who asked, who approved and who forced it past a lock, from the commit trailers.
        """
        env, count = grammar.parse_audit(args)
        return listing.audit(self.get_plugin("Ferry").gitops.audit(env, count), env)
