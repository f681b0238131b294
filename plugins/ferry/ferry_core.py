import os

from errbot import BotPlugin
from errbot.core_plugins.acls import get_acl_usr, glob

from gitops.core import GitOps
from gitops.settings import load_settings


class Ferry(BotPlugin):
    """Holds the one GitOps core of the process; the capability plugins depend on it."""

    def activate(self):
        super().activate()
        path = getattr(self.bot_config, "GITOPS_CONFIG", None) or os.environ.get("GITOPS_CONFIG")
        self.gitops = GitOps(load_settings(path), memory=self)
        self.watchers = []  # callables (change, msg) told of every pushed change
        self.log.info("Ferry manages %s", ", ".join(self.gitops.settings.environment_names))

    def committed(self, change, msg):
        """A change was pushed on ``msg``'s request: tell the watchers (Flux feedback, …)."""
        for watch in list(self.watchers):
            try:
                watch(change, msg)
            except Exception:  # a watcher's bug must not turn a pushed change into an error
                self.log.exception("watcher %r failed on %s", watch, change)

    def is_admin(self, msg) -> bool:
        """Matched the way Errbot's ACLs match BOT_ADMINS (Slack user IDs, glob patterns)."""
        return glob(get_acl_usr(msg), self.bot_config.BOT_ADMINS)
