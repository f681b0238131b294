"""FerrySlack: Errbot's SlackV3 backend (``errbot-backend-slackv3``) with two things it lacks.

- **The Slack API base URL** (``BOT_IDENTITY["base_url"]``, from ``FERRY_SLACK_API_URL`` in
  ``config.py``; default ``https://slack.com/api/``): Slack's government cloud answers on another
  host, the tests on 127.0.0.1. SlackV3 builds its one ``WebClient`` inline in ``serve_once``; the
  Socket Mode client asks that client for its WebSocket URL (``apps.connections.open``) and every
  person and room looks itself up through it, so giving that one client the base URL covers every
  call. The backend takes no such setting, so the name ``WebClient`` in SlackV3's module is bound
  to a subclass whose default ``base_url`` is the configured one (one backend per process).
- **Replies in the command's thread** in channels (``BOT_IDENTITY["reply_in_thread"]``, default
  on): every reply to a channel message, Errbot's own refusals included, goes in its thread; a
  command already in a thread is answered there; DMs are answered in the DM as usual.
- **Code blocks kept**: SlackV3's Markdown converter drops the fences of a code block, so Ferry's
  tables would lose their fixed-width font; fenced blocks are passed through as Slack code blocks
  (with ``&``, ``<``, ``>`` escaped as Slack wants), the text around them converted as before.
- **Events API refusals**: a request with a bad signature is answered 403 and logged.
"""
import logging
import re

import slackv3.slackv3 as slackv3_module
from slack_sdk.web import WebClient
from slackv3.room import SlackRoomOccupant

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"


def web_client_class(base_url: str):
    """``WebClient`` whose default base URL is ``base_url`` (what SlackV3 passes is kept)."""

    class FerryWebClient(WebClient):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("base_url", base_url)
            super().__init__(*args, **kwargs)

    return FerryWebClient


FENCED = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.S)


class KeepCodeBlocks:
    """A Markdown converter that leaves fenced code blocks as Slack code blocks."""

    def __init__(self, markdown):
        self.markdown = markdown

    def convert(self, text: str) -> str:
        parts, pos = [], 0
        for block in FENCED.finditer(text):
            parts.append(self._prose(text[pos:block.start()]))
            parts.append("```\n" + slack_escape(block.group(1)) + "\n```")
            pos = block.end()
        parts.append(self._prose(text[pos:]))
        return "\n".join(p for p in parts if p)

    def _prose(self, text: str) -> str:
        return self.markdown.convert(text).strip("\n") if text.strip() else ""


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FerrySlackBackend(slackv3_module.SlackBackend):  # only this class may be in the module
    def __init__(self, config):
        super().__init__(config)
        self.md = KeepCodeBlocks(self.md)
        identity = config.BOT_IDENTITY
        base_url = (identity.get("base_url") or SLACK_API_URL).strip()
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.reply_in_thread = bool(identity.get("reply_in_thread", True))

    def serve_once(self):
        if self.base_url != SLACK_API_URL:
            log.info("Slack API at %s", self.base_url)
        slackv3_module.WebClient = web_client_class(self.base_url)
        return super().serve_once()

    def _setup_event_callbacks(self):
        """Events API: a request that fails the signing-secret check is answered 403 and logged
        (without a listener for its error, the adapter answers 500 with a traceback)."""
        self.slack_events.on("error", lambda e: log.warning("Slack Events API request refused: %s", e))
        super()._setup_event_callbacks()

    def build_reply(self, msg, text=None, private=False, threaded=False):
        in_channel = isinstance(msg.frm, SlackRoomOccupant) and not private
        return super().build_reply(msg, text, private=private,
                                   threaded=threaded or (self.reply_in_thread and in_channel))
