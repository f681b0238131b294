import os

from errbot import BotPlugin

from gitops.core import GitOps
from gitops.settings import load_settings


class Ferry(BotPlugin):
    """Holds the one GitOps core of the process; the capability plugins depend on it."""

    def activate(self):
        super().activate()
        path = getattr(self.bot_config, "GITOPS_CONFIG", None) or os.environ.get("GITOPS_CONFIG")
        self.gitops = GitOps(load_settings(path), memory=self)
        self.log.info("Ferry manages %s", ", ".join(self.gitops.settings.environment_names))
