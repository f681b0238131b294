import os

import errbot.core_plugins
from errbot import BotPlugin, core_plugins, webhook
from errbot.core_plugins.acls import get_acl_usr, glob
from flask import request

import ferryweb
from gitops.core import GitOps
from gitops.settings import load_settings


# What Errbot's webserver serves: Ferry's own routes (/ferry/health, /flux/<env>) and Slack's
# Events API and interactivity (button presses). Errbot's Webserver plugin also routes /echo, which reflects any request as HTML to
# anyone; it and whatever else a plugin may route are answered 404.
SERVED = ("/ferry/", "/flux/", "/slack/events", "/slack/interactive")


def only_ferry_routes():
    path = request.path.rstrip("/") + "/"
    if not any(path.startswith(p.rstrip("/") + "/") for p in SERVED):
        return "Not found.", 404
    return None


def serve_only_ferry_routes(log=None) -> bool:
    """Put ``only_ferry_routes`` in front of Errbot's web app (once, even across plugin reloads).

    Called when this module is imported: Errbot imports every plugin before it activates any, so
    before its Webserver starts; Flask takes such a filter only before the first request."""
    app = errbot.core_plugins.flask_app
    if any(getattr(f, "__name__", "") == only_ferry_routes.__name__ for f in app.before_request_funcs.get(None, ())):
        return True
    try:
        app.before_request(only_ferry_routes)
    except AssertionError:  # the server answered already: Flask refuses new filters
        if log is not None:
            log.error("Errbot's webserver already answered requests: /echo stays open until a restart")
        return False
    return True


serve_only_ferry_routes()


class Ferry(BotPlugin):
    """Holds the one GitOps core of the process; the capability plugins depend on it."""

    def activate(self):
        super().activate()
        path = getattr(self.bot_config, "GITOPS_CONFIG", None) or os.environ.get("GITOPS_CONFIG")
        # The plugin's Errbot storage; config.py's STORAGE (FerryShelf) writes each change to disk.
        self.gitops = GitOps(load_settings(path), memory=self)
        self.watchers = []  # callables (change, msg) told of every pushed change
        self.log.info("Ferry manages %s", ", ".join(self.gitops.settings.environment_names))
        self._open_webserver(os.environ.get("FERRY_WEBSERVER_PORT", ""))

    def deactivate(self):
        server, self.webserver = getattr(self, "webserver", None), None
        if server is not None:
            server.shutdown()
            server.server_close()
        super().deactivate()

    def _open_webserver(self, port):
        """``FERRY_WEBSERVER_PORT`` set: serve the webhooks (Flux's events, Slack's Events API, the
        health check) on it with Ferry's bounded server (``ferryweb``): Errbot's Webserver plugin
        has no limit on connections nor a timeout, and serves Errbot's own routes to anyone."""
        self.webserver = None
        if not port.strip():
            return
        serve_only_ferry_routes(self.log)  # also if an admin opens Errbot's own Webserver
        host = os.environ.get("FERRY_WEBSERVER_HOST", "0.0.0.0")
        try:
            # Looked up per request: Errbot may replace its Flask app (wsview.reset_app).
            self.webserver = ferryweb.start(host, int(port),
                                            lambda environ, respond: core_plugins.flask_app(environ, respond))
            self.log.info("Webserver on %s:%s (FERRY_WEBSERVER_PORT): %s", host, port,
                          ", ".join(ferryweb.PATHS))
        except (OSError, ValueError):  # the bot still serves chat; the log says the webhook port is down
            self.log.exception("could not start the webserver on port %s", port)

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
