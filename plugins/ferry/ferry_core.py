import os
from collections.abc import MutableMapping

from errbot import BotPlugin, webhook
from errbot.core_plugins.acls import get_acl_usr, glob

from gitops.core import GitOps
from gitops.settings import load_settings


class Durable(MutableMapping):
    """The plugin's Errbot storage, flushed to disk at every change. Pending approvals, locks and
    waiting deploys must survive a crash; Errbot's Shelf writes through Python's dbm, whose
    fallback (``dbm.dumb``) rewrites its index only on close, so a killed bot lost updates."""

    def __init__(self, plugin):
        self.plugin = plugin

    def __getitem__(self, key):
        return self.plugin[key]

    def __setitem__(self, key, value):
        self.plugin[key] = value
        self._flush()

    def __delitem__(self, key):
        del self.plugin[key]
        self._flush()

    def __contains__(self, key):
        return key in self.plugin

    def __iter__(self):
        return iter(list(self.plugin.keys()))

    def __len__(self):
        return len(self.plugin)

    def _flush(self):
        shelf = getattr(getattr(self.plugin, "_store", None), "shelf", None)
        if hasattr(shelf, "sync"):
            shelf.sync()


class Ferry(BotPlugin):
    """Holds the one GitOps core of the process; the capability plugins depend on it."""

    def activate(self):
        super().activate()
        path = getattr(self.bot_config, "GITOPS_CONFIG", None) or os.environ.get("GITOPS_CONFIG")
        self.gitops = GitOps(load_settings(path), memory=Durable(self))
        self.watchers = []  # callables (change, msg) told of every pushed change
        self.log.info("Ferry manages %s", ", ".join(self.gitops.settings.environment_names))
        self._open_webserver(os.environ.get("FERRY_WEBSERVER_PORT", ""))

    def _open_webserver(self, port):
        """``FERRY_WEBSERVER_PORT`` set: configure and start Errbot's Webserver on it (what an admin
        would do with ``!plugin config Webserver …``), for Flux's events and the health check."""
        if not port.strip():
            return
        wanted = {"HOST": os.environ.get("FERRY_WEBSERVER_HOST", "0.0.0.0"), "PORT": int(port),
                  "SSL": {"enabled": False, "host": "0.0.0.0", "port": int(port) + 1,
                          "certificate": "", "key": ""}}
        manager = self._bot.plugin_manager
        try:
            webserver = manager.plugins.get("Webserver")
            if webserver is None:
                self.log.warning("FERRY_WEBSERVER_PORT is set but the Webserver plugin is not loaded")
                return
            if manager.get_plugin_configuration("Webserver") == wanted and webserver.is_activated:
                return
            manager.set_plugin_configuration("Webserver", wanted)
            manager.deactivate_plugin("Webserver")
            manager.activate_plugin("Webserver")
            self.log.info("Webserver on %s:%s (FERRY_WEBSERVER_PORT)", wanted["HOST"], port)
        except Exception:  # the bot still serves chat; the log says the webhook port is down
            self.log.exception("could not start the Webserver on port %s", port)

    @webhook("/ferry/health", methods=("GET",))
    def health(self, request):
        """For the container's health check: the bot runs and holds its core."""
        return "ok"

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
