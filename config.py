"""Errbot's configuration for Ferry. Everything comes from the environment; nothing secret is here.

FERRY_BACKEND      SlackV3 (default: Ferry's FerrySlack, SlackV3 with the settings below), or Text
                   for a local console (make demo)
FERRY_DATA_DIR     Errbot's storage and Ferry's state file, ferry-state.sqlite3: locks, approvals,
                   Flux waits (default ./data)
FERRY_ADMINS       comma-separated chat user IDs of the bot admins (Slack: U… or W…); a pattern such
                   as `*` stops the start (Errbot would match it against everyone)
FERRY_ACCESS_CONTROLS  JSON merged over ACCESS_CONTROLS below (Errbot's command ACLs)
SLACK_BOT_TOKEN    xoxb-… bot token (SlackV3)
SLACK_APP_TOKEN    xapp-… app-level token for Socket Mode (SlackV3); without it, the Events API
SLACK_SIGNING_SECRET  the app's signing secret, for the Events API (POST /slack/events on Ferry's webserver)
FERRY_SLACK_API_URL   Slack Web API base URL (default https://slack.com/api/; GovSlack: https://slack-gov.com/api/)
FERRY_SLACK_PING_INTERVAL        seconds between two Socket Mode pings (default 5); a connection
                                 without a pong for 3 intervals is dead and replaced
FERRY_SLACK_RECONNECT_FIRST_DELAY  seconds before the second attempt at a lost connection (default 1)
FERRY_SLACK_RECONNECT_MAX_DELAY  the longest wait between two attempts, doubling up to it (default 60)
GITOPS_CONFIG      path of Ferry's GitOps settings file (read by the plugins, see README)
FERRY_WORKERS      threads that run commands (default 32): commands waiting for a slow registry or
                   remote hold theirs, the others answer on the rest
GITOPS_FLUX_TOKEN_<ENV>  token Flux signs <env>'s events with, for /flux/<env> on Ferry's webserver
FERRY_WEBSERVER_PORT, FERRY_WEBSERVER_HOST  open Ferry's webserver (plugins/ferryweb) on that port
"""
import json
import logging
import os
import re
from pathlib import Path

import slackv3  # the SlackV3 backend is a pip package; Errbot finds it through its folder

HERE = Path(__file__).resolve().parent

BACKEND = os.environ.get("FERRY_BACKEND", "SlackV3")
if BACKEND.lower() in ("slackv3", "slack", "ferryslack"):
    BACKEND = "FerrySlack"  # backends/ferryslack: SlackV3 + the API base URL + replies in threads
elif BACKEND.lower() in ("text", "ferrytext"):
    BACKEND = "FerryText"  # backends/ferrytext: Errbot's console, keeping a message's line breaks
BOT_DATA_DIR = os.environ.get("FERRY_DATA_DIR", str(HERE / "data"))
BOT_EXTRA_PLUGIN_DIR = str(HERE / "plugins")  # the folder itself, so `import gitops` works
# Errbot's own records (plugin settings, ACL state), a shelf written through at every change
# (storage/ferryshelf.py). Ferry's state is not in it but in FERRY_DATA_DIR/ferry-state.sqlite3
# (gitops/state): a shelf is not safe across threads. What older Ferry kept here is imported once.
STORAGE = "FerryShelf"
BOT_EXTRA_STORAGE_PLUGINS_DIR = str(HERE / "storage")
BOT_EXTRA_BACKEND_DIR = [str(HERE / "backends"), str(Path(slackv3.__file__).resolve().parent)]
BOT_LOG_FILE = os.environ.get("FERRY_LOG_FILE") or None  # None: log to stderr (containers)
BOT_LOG_LEVEL = getattr(logging, os.environ.get("FERRY_LOG_LEVEL", "INFO").upper(), logging.INFO)
AUTOINSTALL_DEPS = False  # dependencies are pinned in requirements.txt, never installed at run time

# Errbot runs each command on one of these threads (its default is 10). A command waiting for a
# slow registry, Helm repository or Git remote holds one: for as long as the answer takes when it
# has the host's turn, at most `registry_busy_seconds` when it waits for that turn (then it says
# the host is busy). Enough of them that `!pending`, `!locks`, `!help` and commands on other hosts
# never queue behind those.
BOT_ASYNC = True
try:
    BOT_ASYNC_POOLSIZE = int(os.environ.get("FERRY_WORKERS") or 32)
    if not 4 <= BOT_ASYNC_POOLSIZE <= 512:
        raise ValueError
except ValueError:
    raise SystemExit("FERRY_WORKERS must be a whole number of command threads between 4 and 512 "
                     "(default 32).") from None

# VersionChecker calls the internet; CommandNotFoundFilter suggests commands the asker may not run
# (Ferry's FerryCommandNotFound, plugins/ferry, answers instead); Help lists Errbot's commands
# among Ferry's (FerryHelp, plugins/ferry, lists Ferry's first, by capability); Webserver would
# serve Errbot's web app on werkzeug's threaded server, with no limit on connections, time or body,
# and routes /echo to anyone: Ferry serves the webhooks itself (FERRY_WEBSERVER_PORT,
# plugins/ferryweb), and without it in this list `!plugin config Webserver` opens nothing. The rest
# are Errbot's as they are, behind the ACLs below.
CORE_PLUGINS = ("ACLs", "Backup", "ChatRoom", "Flows", "Health",
                "Plugins", "TextCmds", "Utils")

BOT_IDENTITY = {
    "token": os.environ.get("SLACK_BOT_TOKEN", ""),
    "app_token": os.environ.get("SLACK_APP_TOKEN", ""),
    "signing_secret": os.environ.get("SLACK_SIGNING_SECRET", ""),
    "base_url": os.environ.get("FERRY_SLACK_API_URL", "https://slack.com/api/"),
}
for _key, _name in (("socket_ping_interval", "FERRY_SLACK_PING_INTERVAL"),
                    ("reconnect_first_delay", "FERRY_SLACK_RECONNECT_FIRST_DELAY"),
                    ("reconnect_max_delay", "FERRY_SLACK_RECONNECT_MAX_DELAY")):
    if os.environ.get(_name, "").strip():
        try:
            BOT_IDENTITY[_key] = float(os.environ[_name])
            if not 0 < BOT_IDENTITY[_key] <= 3600:
                raise ValueError
        except ValueError:
            raise SystemExit(f"{_name} must be a number of seconds above 0 and at most 3600, "
                             f"not {os.environ[_name]!r}.") from None
BOT_ADMINS = tuple(a.strip() for a in os.environ.get("FERRY_ADMINS", "").split(",") if a.strip())
# Errbot matches BOT_ADMINS as glob patterns: `*` would make everyone an admin. Only IDs are taken.
_ADMIN_ID = re.compile(r"^[UW][A-Z0-9]{2,}$" if BACKEND == "FerrySlack" else r"^@?[\w.-]+$")
for _admin in BOT_ADMINS:
    if not _ADMIN_ID.match(_admin):
        raise SystemExit(f"FERRY_ADMINS entry {_admin!r} is not a chat user ID: list admins by ID "
                         "(Slack: U… or W…, from the profile's “Copy member ID”), comma-separated; "
                         "patterns such as `*` are refused.")
if BACKEND == "FerryText":  # make demo: a console; logs go to FERRY_LOG_FILE, not over the prompt
    BOT_ADMINS = BOT_ADMINS or ("@demo",)
    TEXT_DEMO_MODE = True
CHATROOM_PRESENCE = ()
BOT_PREFIX = "!"
BOT_ALT_PREFIXES = ("@ferry",)
SUPPRESS_CMD_NOT_FOUND = False

# Errbot's own command ACLs. Everyone gets `!help` and Ferry's commands (who may change which
# environment is the GitOps settings' per-environment policy). Admin commands (locks, plugins,
# backups) and Errbot's core commands that reveal or post things (`!whoami @someone` shows an email,
# `!echo` and `!render test` post any markup as Ferry, `!webhook`, `!room …`, `!status …`,
# `!webstatus`, `!flows …`, `!about`, `!history`, `!uptime`) are for admins, by DM only.
# TextCmds is active only on the text console (make demo), where it switches the demo user.
_ADMINS_BY_DM = {"allowusers": BOT_ADMINS, "allowmuc": False}
ACCESS_CONTROLS_DEFAULT = {}
ACCESS_CONTROLS = {
    "FerryHelp:help": {},
    "FerryHelp:apropos": {},  # searches the same list `!help` shows, filtered by these ACLs
    **{f"{plugin}:*": _ADMINS_BY_DM for plugin in (
        "FerryLocks", "Plugins", "Backup", "FerryHelp", "Utils", "ChatRoom", "Flows", "Health", "Webserver")},
}
try:
    _custom = json.loads(os.environ.get("FERRY_ACCESS_CONTROLS") or "{}")
    if not isinstance(_custom, dict):
        raise TypeError("a JSON object is expected")
    ACCESS_CONTROLS.update(_custom)
except (json.JSONDecodeError, TypeError, ValueError) as e:
    raise SystemExit(f"FERRY_ACCESS_CONTROLS is not a JSON object of Errbot ACLs: {e}") from None
# Errbot applies the first pattern that matches a command: most specific first (`Utils:whoami`,
# then `Utils:*`, then `*:*`), so an entry in FERRY_ACCESS_CONTROLS can open one command of a
# plugin that is closed as a whole, and a catch-all never shadows an admin rule.
ACCESS_CONTROLS = dict(sorted(ACCESS_CONTROLS.items(),
                              key=lambda item: sum(item[0].count(c) for c in "*?[")))
HIDE_RESTRICTED_COMMANDS = True
HIDE_RESTRICTED_ACCESS = False

# Refuse to start on a broken GitOps settings file (Errbot would run on with Ferry deactivated):
# the process exits naming the key and the reason.
if os.environ.get("GITOPS_CONFIG"):
    import sys as _sys

    if str(HERE / "plugins") not in _sys.path:
        _sys.path.insert(0, str(HERE / "plugins"))
    from gitops.errors import SettingsError as _SettingsError
    from gitops.settings import load_settings as _load_settings

    try:
        _load_settings(os.environ["GITOPS_CONFIG"])
    except _SettingsError as _e:
        raise SystemExit(f"Ferry cannot start: {_e}") from None
