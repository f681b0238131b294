"""Slack's part of `ferry check`: the tokens the bot would use, tried against the Slack Web API at
the configured base URL (``auth.test``; ``apps.connections.open`` for Socket Mode), and the bot
token's scopes against the app manifest's. Plain ``(item, detail, problem)`` findings; no Errbot."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ruamel.yaml import YAML
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient

DEFAULT_API = "https://slack.com/api/"


def findings(environ: Mapping[str, str], manifest: Path) -> list:
    base_url = environ.get("FERRY_SLACK_API_URL") or DEFAULT_API
    bot_token = environ.get("SLACK_BOT_TOKEN", "")
    found = [_bot_token(bot_token, base_url, manifest_scopes(manifest))]
    app_token = environ.get("SLACK_APP_TOKEN", "")
    if app_token:
        found.append(_socket_mode(app_token, base_url))
    elif environ.get("SLACK_SIGNING_SECRET"):
        found.append(("slack events api", "SLACK_SIGNING_SECRET is set: Slack posts to /slack/events", ""))
    else:
        found.append(("slack connection", "", "neither SLACK_APP_TOKEN (Socket Mode, xapp-… with "
                      "connections:write) nor SLACK_SIGNING_SECRET (the Events API) is set: set one"))
    return found


def manifest_scopes(manifest: Path) -> set:
    """The bot scopes the app manifest asks for (what Ferry uses)."""
    loaded = YAML(typ="safe").load(manifest.read_text(encoding="utf-8"))
    return set(loaded["oauth_config"]["scopes"]["bot"])


def _bot_token(token: str, base_url: str, wanted: set) -> tuple:
    item = "slack bot token"
    if not token:
        return item, "", "SLACK_BOT_TOKEN is not set: the Bot User OAuth Token (xoxb-…) of the app"
    try:
        answer = WebClient(token=token, base_url=base_url, timeout=10).auth_test()
    except SlackApiError as e:
        return item, "", (f"Slack refused it ({e.response.get('error', 'error')}): copy the Bot User OAuth "
                          "Token again from the app's OAuth & Permissions page")
    except (SlackClientError, OSError) as e:
        return item, "", f"Slack's Web API at {base_url} cannot be reached ({type(e).__name__}): check FERRY_SLACK_API_URL and the network"
    granted = {s.strip() for s in (answer.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    missing = sorted(wanted - granted)
    if missing:
        return item, "", (f"the token lacks the scope(s) {', '.join(missing)}: add them under OAuth & "
                          "Permissions (slack-app-manifest.yaml lists them) and reinstall the app")
    return item, f"{answer.get('user', '?')} in {answer.get('team', '?')}, every scope of the manifest", ""


def _socket_mode(token: str, base_url: str) -> tuple:
    item = "slack app token"
    try:
        WebClient(token=token, base_url=base_url, timeout=10).apps_connections_open(app_token=token)
    except SlackApiError as e:
        return item, "", (f"Slack refused it for Socket Mode ({e.response.get('error', 'error')}): an app-level "
                          "token (xapp-…) with connections:write, and Socket Mode on in the app's settings")
    except (SlackClientError, OSError) as e:
        return item, "", f"Slack's Web API at {base_url} cannot be reached ({type(e).__name__})"
    return item, "Socket Mode: Slack grants a connection", ""
