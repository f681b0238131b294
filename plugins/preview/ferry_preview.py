from errbot import BotPlugin, botcmd

from ferrychat import grammar, previews, render
from ferrychat.replies import answers, requester
from gitops.errors import NotAllowed


class FerryPreview(BotPlugin):
    """Preview a chart upgrade"""

    @botcmd
    @answers
    def preview(self, msg, args):
        """`!preview <app> <version> [in <env>]`, `!preview <app> to <env>`: what a chart upgrade brings to one environment before it lands; e.g. `!preview podinfo 6.6.0 in qa`, `!preview podinfo to stag`

        From the two chart archives (the environment's version and the target; `to <env>`: the
        promotion's version): the version jump, the change notes of every version in between,
        the keys the environment sets whose default changed or that the new chart no longer has,
        its values against the new `values.schema.json`, CRDs and images, and the default values
        diff. Values Flux takes from Secrets or ConfigMaps are named as unknown. An app tracked
        by its image tag: both images' OCI labels (version, revision, created, source) and the
        GitHub/GitLab link comparing them. Without `in <env>`: the first environment the version
        would change. A long preview comes as a file.
        """
        req = grammar.parse_preview(args)
        gitops = self.get_plugin("Ferry").gitops
        environment = None
        if req.environment is not None:
            env = grammar.known_environment("preview", req.environment, gitops.settings)
            if not env.shows_values_in(requester(msg).channels):
                raise NotAllowed(render.values_elsewhere(env.name, env.policy.channels))
            environment = env.name
        found = gitops.preview_request(req.app, environment, req.version)
        if environment is None and not gitops.settings.environment(found.environment).shows_values_in(
                requester(msg).channels):
            env = gitops.settings.environment(found.environment)
            raise NotAllowed(render.values_elsewhere(env.name, env.policy.channels))
        return previews.full(found)
