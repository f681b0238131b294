"""Errbot's configuration for Ferry. Everything comes from the environment; nothing secret is here.

FERRY_BACKEND      SlackV3 (default: Ferry's FerrySlack, SlackV3 with the settings below), or Text
                   for a local console (make demo)
FERRY_DATA_DIR     Errbot's storage and Ferry's Git clones (default ./data)
FERRY_ADMINS       comma-separated chat user IDs of the bot admins (Slack: U…)
FERRY_ACCESS_CONTROLS  JSON merged over ACCESS_CONTROLS below (Errbot's command ACLs)
SLACK_BOT_TOKEN    xoxb-… bot token (SlackV3)
SLACK_APP_TOKEN    xapp-… app-level token for Socket Mode (SlackV3); without it, the Events API
SLACK_SIGNING_SECRET  the app's signing secret, for the Events API (POST /slack/events on Errbot's Webserver)
FERRY_SLACK_API_URL   Slack Web API base URL (default https://slack.com/api/; GovSlack: https://slack-gov.com/api/)
GITOPS_CONFIG      path of Ferry's GitOps settings file (read by the plugins, see README)
GITOPS_FLUX_TOKEN_<ENV>  token Flux signs <env>'s events with, for /flux/<env> on Errbot's Webserver
"""
import json
import logging
import os
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
BOT_EXTRA_BACKEND_DIR = [str(HERE / "backends"), str(Path(slackv3.__file__).resolve().parent)]
BOT_LOG_FILE = os.environ.get("FERRY_LOG_FILE") or None  # None: log to stderr (containers)
BOT_LOG_LEVEL = getattr(logging, os.environ.get("FERRY_LOG_LEVEL", "INFO").upper(), logging.INFO)
AUTOINSTALL_DEPS = False  # dependencies are pinned in requirements.txt, never installed at run time

# VersionChecker calls the internet; the rest of Errbot's core plugins are useful as they are.
CORE_PLUGINS = ("ACLs", "Backup", "ChatRoom", "CommandNotFoundFilter", "Flows", "Health", "Help",
                "Plugins", "TextCmds", "Utils", "Webserver")

BOT_IDENTITY = {
    "token": os.environ.get("SLACK_BOT_TOKEN", ""),
    "app_token": os.environ.get("SLACK_APP_TOKEN", ""),
    "signing_secret": os.environ.get("SLACK_SIGNING_SECRET", ""),
    "base_url": os.environ.get("FERRY_SLACK_API_URL", "https://slack.com/api/"),
}
BOT_ADMINS = tuple(a.strip() for a in os.environ.get("FERRY_ADMINS", "").split(",") if a.strip())
if BACKEND == "FerryText":  # make demo: a console; logs go to FERRY_LOG_FILE, not over the prompt
    BOT_ADMINS = BOT_ADMINS or ("@demo",)
    TEXT_DEMO_MODE = True
CHATROOM_PRESENCE = ()
BOT_PREFIX = "!"
BOT_ALT_PREFIXES = ("@ferry",)
SUPPRESS_CMD_NOT_FOUND = False

# Errbot's own command ACLs. Admin commands (locks, plugins, backups) by admins and by DM only;
# who may change which environment is the GitOps settings' per-environment policy.
ACCESS_CONTROLS_DEFAULT = {}
ACCESS_CONTROLS = {
    "FerryLocks:*": {"allowusers": BOT_ADMINS, "allowmuc": False},
    "Plugins:*": {"allowusers": BOT_ADMINS, "allowmuc": False},
    "Backup:*": {"allowusers": BOT_ADMINS, "allowmuc": False},
}
try:
    ACCESS_CONTROLS.update(json.loads(os.environ.get("FERRY_ACCESS_CONTROLS") or "{}"))
except (json.JSONDecodeError, TypeError, ValueError) as e:
    raise SystemExit(f"FERRY_ACCESS_CONTROLS is not a JSON object of Errbot ACLs: {e}") from None
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
