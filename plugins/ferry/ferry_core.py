import os
from pathlib import Path

import errbot.core_plugins
from errbot import BotPlugin, core_plugins, webhook
from errbot.backends.base import ONLINE
from errbot.core_plugins.acls import get_acl_usr, glob
from flask import Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import ferryweb
from ferrychat import previews
from gitops.ops import readiness
from gitops.core import STATE_FILE, GitOps
from gitops.ops.metrics import since_command
from gitops.settings import load_settings
from gitops.state.shelf import import_shelf
from gitops.state.store import Store


# What Errbot's webserver serves: Ferry's own routes (/ferry/health, /ferry/ready, /flux/<env>,
# /forge/<kind>),
# the metrics (/metrics), and Slack's Events API and interactivity (button presses). Errbot's
# Webserver plugin also routes /echo, which reflects any request as HTML to anyone; it and
# whatever else a plugin may route are answered 404.
SERVED = ("/ferry/", "/flux/", "/forge/", "/slack/events", "/slack/interactive", "/metrics")


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
        self.chat, self.gitops = readiness.ChatLink(), None
        path = getattr(self.bot_config, "GITOPS_CONFIG", None) or os.environ.get("GITOPS_CONFIG")
        settings = load_settings(path)
        # Ferry's state (locks, approvals, Flux waits) in its own SQLite file next to Errbot's data;
        # what an older Ferry kept in this plugin's shelf is imported once.
        self.state = Store(Path(self.bot_config.BOT_DATA_DIR) / STATE_FILE)
        imported = import_shelf(self.state, self)
        if imported is not None:
            self.log.info("state file %s started; imported from Errbot's storage: %s", self.state.path,
                          ", ".join(f"{n} {kind}" for kind, n in imported.items()))
        self.gitops = GitOps(settings, state=self.state, preview=self.pull_request_preview)
        self.gitops.metrics.watch_chat(self.chat)
        self.watchers = []  # callables (change, msg) told of every pushed change
        self.log.info("Ferry manages %s", ", ".join(self.gitops.settings.environment_names))
        # The first clones start now, not at the first command; /ferry/ready waits for them.
        self.clones = readiness.Clones({ws.public_url: ws for ws in self.gitops.workspaces.values()})
        self.clones.start()
        self._open_webserver(os.environ.get("FERRY_WEBSERVER_PORT", ""))

    def callback_connect(self):
        """Errbot connected to chat (called after activation)."""
        self.chat.up()

    def callback_presence(self, presence):
        """The bot's own presence is its chat connection (backends/ferryslack: lost, back)."""
        if presence.identifier is not getattr(self._bot, "bot_identifier", None):
            return  # someone else's: by identity, as backends compare identifiers in their own ways
        if presence.status == ONLINE:
            self.chat.up()
        else:
            self.chat.down(presence.message or "")

    def deactivate(self):
        self.chat.down("Ferry is stopping.")
        if getattr(self, "clones", None) is not None:
            self.clones.stop()
        server, self.webserver = getattr(self, "webserver", None), None
        if server is not None:
            server.stop()
        if getattr(self, "state", None) is not None:
            self.state.close()
        super().deactivate()

    def _open_webserver(self, port):
        """``FERRY_WEBSERVER_PORT`` set: serve the webhooks (Flux's events, Slack's Events API, the
        probes, the metrics) on it with Ferry's bounded server (``ferryweb``, waitress): Errbot's
        Webserver plugin has no limit on connections, time or body, and serves Errbot's own
        routes to anyone (config.py does not load it)."""
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

    @webhook("/ferry/ready", methods=("GET",))
    def ready(self, request):
        """For the readiness probe: 200 once the settings are loaded, each repository has a clone and
        chat is connected; otherwise 503 with one line saying what is missing."""
        clones = getattr(self, "clones", None)
        ok, why = readiness.verdict(self.gitops is not None, self.chat.connected,
                                    clones.missing() if clones is not None else {}, self.chat.lost)
        return Response(why + "\n", status=200 if ok else 503, mimetype="text/plain")

    @webhook("/metrics", methods=("GET",))
    def prometheus_metrics(self, request):
        """Prometheus's scrape: this core's metrics (gitops/ops/metrics.py), in the text format."""
        return Response(generate_latest(self.gitops.metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    def pull_request_preview(self, plan) -> str:
        """What a pull request's description says of the upgrade (``GitOps(preview=…)``)."""
        return previews.pull_request_section(*self.gitops.preview_of(plan))

    def committed(self, change, msg):
        """A change was pushed, or its pull request opened, on ``msg``'s request: tell the watchers
        (Flux feedback, pull requests followed)."""
        if change.commit is not None:
            self.gitops.metrics.change_pushed(since_command())
        for watch in list(self.watchers):
            try:
                watch(change, msg)
            except Exception:  # a watcher's bug must not turn a pushed change into an error
                self.log.exception("watcher %r failed on %s", watch, change)

    def is_admin(self, msg) -> bool:
        """Matched the way Errbot's ACLs match BOT_ADMINS (Slack user IDs, glob patterns)."""
        return glob(get_acl_usr(msg), self.bot_config.BOT_ADMINS)
