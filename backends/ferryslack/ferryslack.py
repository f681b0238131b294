"""FerrySlack: Errbot's SlackV3 backend (``errbot-backend-slackv3``) with what it lacks.

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
- **Text shown as written**: Slack reads ``<…>`` as markup anywhere in a message (``<!channel>``,
  ``<@U…>``, ``<https://evil|label>``), so everything posted is escaped the way Slack wants
  (``&``, ``<``, ``>``), after SlackV3's Markdown converter (which turns ``&lt;`` back into ``<``)
  and inside code blocks too; posts never ask Slack to link names (``link_names`` false). Links are
  bare URLs. What people type arrives escaped by Slack and is read unescaped, as typed.
- **Ferry's own mentions**: the one Slack markup Ferry writes. ``gitops.identity.mention`` and
  ``channel`` write a person or a channel as a marker (private-use characters around a per-process
  random nonce and the ID) that no outside text can contain; after
  everything is escaped, exactly those markers become ``<@U…>`` / ``<#C…>`` (in the text and in
  the Block Kit texts, for posts, updates and ephemeral replies alike), the bare ID inside code
  blocks, plain-text objects and files. A marker-looking text with another nonce stays text (its
  private-use characters shown as U+FFFD).
- **Line breaks kept**: each line of a paragraph is converted alone (the converter drops the
  newline after an inline element: the approval request's line before ``!approve`` was lost).
- **Code blocks kept**: SlackV3's Markdown converter drops the fences of a code block, so Ferry's
  tables would lose their fixed-width font; fenced blocks are passed through as Slack code blocks,
  the text around them converted as before.
- **Bots marked**: a message from a bot or an integration (``subtype: bot_message``, a ``bot_id``
  or ``bot_profile``: apps, incoming webhooks, Workflow Builder) carries
  ``msg.extras["from_bot"] = {"id": "B…", "name": …}``; Ferry's chat layer lets it change
  nothing unless the environment's policy names that bot ID.
- **Events API, once and well-formed**: a retried (``X-Slack-Retry-Num``) or replayed event is
  handled once (its ``event_id`` is remembered for as long as a signature on it can be accepted);
  a malformed ``X-Slack-Request-Timestamp`` or body is answered 400, a bad signature 403 (logged).
- **Approval buttons** (``ferryslack_presses``): a press on Approve or Reject runs ``!approve <id>``
  / ``!reject <id>`` as the presser typed it there, in Socket Mode (``interactive`` envelopes) and
  with the Events API (signed POSTs to ``/slack/interactive``); every reply to a press goes to the
  presser alone (ephemeral), but the update of the pressed message in place (``ts`` in extras).
- **Edited messages run nothing**: a ``message_changed`` event (someone edited a message, or Slack
  unfurled a link in it) is ignored, logged; a command runs when it is sent, once.
- **Files in the thread**: ``attach(msg, content, filename, title)`` posts a text snippet in reply to
  a command, in its thread (``ferryslack_files``: Slack's ``files.getUploadURLExternal`` /
  ``files.completeUploadExternal`` flow, scope ``files:write``); Ferry's chat layer sends a table
  too long for one message that way.
- **Never deaf in Socket Mode** (``ferryslack_socket``): a connection lost in any way (closed
  without a word, half-open, Slack's ``disconnect``) is replaced, with a bounded, jittered wait
  between failed attempts; each loss and return is told to the plugins as the bot's presence
  (``OFFLINE`` with the reason, then ``ONLINE``), which readiness and the metrics follow. An envelope
  runs only once its acknowledgement is sent (else Slack sends it again and it runs then), and
  one acknowledged is never run again (its ``envelope_id`` is remembered).
- **Channel names looked up with the manifest's scopes**: ``#name`` is resolved with
  ``conversations.list`` over public and private channels only (``channels:read``,
  ``groups:read``); SlackV3's own look-up also lists mpim and im, which needs ``mpim:read``.
"""
import logging
import re
import threading
import time
from functools import lru_cache

import slackv3.slackv3 as slackv3_module
from errbot.backends.base import OFFLINE, ONLINE, Presence, RoomDoesNotExistError, RoomOccupant
from flask import request
from slack_sdk.errors import SlackClientNotConnectedError
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient
from slackv3.lib import SLACK_CLIENT_CHANNEL_HYPERLINK
from slackv3.room import SlackRoom

import ferryslack_files
import ferryslack_retries
import ferryslack_socket
from ferryslack_mentions import blocks_for_slack, ferry_marks
from ferryslack_presses import INTERACTIVE_PATH, PRESS, Press, command_event, interactive_view, press_of

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
EVENTS_PATH = "/slack/events"
SIGNATURE_LIFETIME = 300  # seconds either side of now a signed Slack request is accepted
CHANNEL_TYPES = "public_channel,private_channel"  # channels:read, groups:read
CHANNEL_PAGES = 100  # × 1000 channels: enough for any workspace, and never an endless loop


def web_client_class(base_url: str):
    """``WebClient`` whose default base URL is ``base_url`` (what SlackV3 passes is kept), and
    which answers Slack's 429s, 5xx and timeouts (``ferryslack_retries``)."""

    class FerryWebClient(WebClient):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("base_url", base_url)
            kwargs.setdefault("retry_handlers", ferryslack_retries.retry_handlers())
            super().__init__(*args, **kwargs)

    return FerryWebClient


FENCED = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.S)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class KeepCodeBlocks:
    """A Markdown converter that leaves fenced code blocks as Slack code blocks and escapes
    everything for Slack, so no text becomes a mention, a broadcast or a masked link.

    One conversion at a time: SlackV3 converts in ``send_message``, on whichever of Errbot's pool
    threads is replying, and a Python-Markdown instance keeps the text it converts on itself
    (``lines``, its inline stash): two replies converted at once could each come out with the
    other's text, or empty, or raise. One reply then carried another command's text into its
    channel, and that command's own answer was never said."""

    def __init__(self, markdown):
        self.markdown = markdown
        self._one_at_a_time = threading.Lock()
        # SlackV3 turns Markdown links into Slack's masked links (`<url|label>`): anyone's text
        # could then hide where a link goes. Without it a link reads "label (url)".
        preprocessors = getattr(markdown, "preprocessors", None)
        if preprocessors is not None and "LinkPreProcessor" in preprocessors:
            preprocessors.deregister("LinkPreProcessor")

    def convert(self, text: str) -> str:
        with self._one_at_a_time:
            return self._convert(text)

    def _convert(self, text: str) -> str:
        parts, pos = [], 0
        for block in FENCED.finditer(text):
            parts.append(ferry_marks(self._prose(text[pos:block.start()])))
            parts.append("```\n" + ferry_marks(slack_escape(block.group(1)), markup=False) + "\n```")
            pos = block.end()
        parts.append(ferry_marks(self._prose(text[pos:])))
        return "\n".join(p for p in parts if p)

    def _prose(self, text: str) -> str:
        """Converted with ``&``, ``<``, ``>`` kept out of the converter's sight (it would read
        them as HTML, autolinks or entities, and turn ``&lt;`` back into ``<``), escaped after."""
        if not text.strip():
            return ""
        # One paragraph at a time: the converter joins paragraphs with "\n " (the blank line
        # between a table's last line and its legend was lost).
        paragraphs = (self._paragraph(p.translate(_SHIELD)) for p in PARAGRAPH_BREAK.split(text) if p.strip())
        return "\n\n".join(slack_escape(p).translate(_UNSHIELD) for p in paragraphs)

    def _paragraph(self, text: str) -> str:
        """Line by line: the converter drops the newline that ends the text after an inline
        element (``…(not U0A).`!approve 1f`…`` came out on one line)."""
        return "\n".join(self.markdown.convert(line).strip("\n") for line in text.strip("\n").split("\n"))


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SHIELD = str.maketrans({c: chr(0xE000 + i) for i, c in enumerate(_ENTITIES)})  # private use
_UNSHIELD = {0xE000 + i: e for i, e in enumerate(_ENTITIES.values())}


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """What a person typed: Slack sends ``&``, ``<``, ``>`` typed in a message escaped."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def bot_of(event: dict):
    """``{"id", "name"}`` of the bot or integration that posted ``event``, or None for a person."""
    inner = event.get("message") if isinstance(event.get("message"), dict) else event
    for found in (inner, event):
        profile = found.get("bot_profile") if isinstance(found.get("bot_profile"), dict) else {}
        if found.get("subtype") == "bot_message" or found.get("bot_id") or profile:
            return {"id": str(found.get("bot_id") or profile.get("id") or ""),
                    "name": str(found.get("username") or profile.get("name") or "")}
    return None


class EventMemory:
    """The ``event_id`` of every Slack event handled lately, so a retry or a replay runs nothing.

    A request signed at ``t`` is accepted while ``|now - t| <= SIGNATURE_LIFETIME``, so one
    received at ``r`` can be replayed until ``r + 2 × SIGNATURE_LIFETIME`` at the latest; Slack's
    own retries (at once, after 1 and after 5 minutes) fall in that span too."""

    def __init__(self, keep: float = 2 * SIGNATURE_LIFETIME, limit: int = 100_000, clock=time.monotonic):
        self.keep, self.limit, self.clock = keep, limit, clock
        self._seen: dict = {}  # event_id -> until (insertion order = age)
        self._lock = threading.Lock()

    def first(self, event_id) -> bool:
        """True the first time ``event_id`` is seen (and always for an event without one)."""
        if not event_id:
            return True
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:  # oldest first
                del self._seen[next(iter(self._seen))]
            if event_id in self._seen:
                return False
            while len(self._seen) >= self.limit:
                del self._seen[next(iter(self._seen))]
            self._seen[event_id] = now + self.keep
            return True


def malformed_events_request():
    """Why a request to the Events API path is malformed (the adapter would answer 500), or ""."""
    stamp = request.headers.get("X-Slack-Request-Timestamp")
    if stamp is not None and not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "X-Slack-Request-Timestamp must be the request's Unix time in seconds."
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return "The body must be a JSON object (a Slack Events API payload)."
    event = body.get("event")
    if "challenge" not in body and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return "The body must carry a `challenge` or an `event` with a `type`."
    return ""


class FerrySlackBackend(slackv3_module.SlackBackend):  # only this class may be in the module
    def __init__(self, config):
        super().__init__(config)
        self.md = KeepCodeBlocks(self.md)
        identity = config.BOT_IDENTITY
        base_url = (identity.get("base_url") or SLACK_API_URL).strip()
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.reply_in_thread = bool(identity.get("reply_in_thread", True))
        self.events_seen = EventMemory()
        self.presses_seen = EventMemory()  # trigger_id of every button press handled lately
        self.envelopes_seen = EventMemory()  # envelope_id of every Socket Mode envelope acknowledged
        self.socket_settings = ferryslack_socket.SocketSettings.from_identity(identity)
        self._events_filter = False

    def serve_once(self):
        if self.base_url != SLACK_API_URL:
            log.info("Slack API at %s", self.base_url)
        slackv3_module.WebClient = web_client_class(self.base_url)
        slackv3_module.SocketModeClient = ferryslack_socket.client_class(
            self.socket_settings, self._chat_heard, self._chat_lost)
        return super().serve_once()

    def _chat_heard(self):
        self.callback_presence(Presence(identifier=self.bot_identifier, status=ONLINE))

    def _chat_lost(self, why: str):
        self.callback_presence(Presence(identifier=self.bot_identifier, status=OFFLINE, message=why))

    # ---- what comes in ------------------------------------------------------------------------

    def _setup_event_callbacks(self):
        """Events API: a request that fails the signing-secret check is answered 403 and logged
        (without a listener for its error, the adapter answers 500 with a traceback); a malformed
        one 400, before the adapter reads it."""
        self.slack_events.on("error", lambda e: log.warning("Slack Events API request refused: %s", e))
        if not self._events_filter:
            self._interactive = interactive_view(self.signing_secret, self.presses_seen.first, self._pressed)
            slackv3_module.flask_app.before_request(self._presses_or_well_formed_events)
            slackv3_module.flask_app.add_url_rule(
                INTERACTIVE_PATH, "ferry_slack_interactive", methods=["POST"], view_func=self._interactive)
            self._events_filter = True
        super()._setup_event_callbacks()

    def _presses_or_well_formed_events(self):
        """On `/slack/events`: a button press (Slack posts interactivity as a form with
        ``payload=``; one Request URL for events and interactivity, as Slack's Bolt apps use) goes
        to the presses' view; an event must be well-formed before the adapter reads it."""
        if request.path.rstrip("/") != EVENTS_PATH or request.method != "POST":
            return None
        if request.mimetype == "application/x-www-form-urlencoded":
            return self._interactive()
        problem = malformed_events_request()
        if problem:
            log.warning("Slack Events API request from %s refused (400): %s", request.remote_addr, problem)
            return problem, 400
        return None

    def _generic_wrapper(self, event_data):
        """Every event, from the Events API or Socket Mode, signed and acknowledged: once only."""
        event_id = event_data.get("event_id") if isinstance(event_data, dict) else None
        if not self.events_seen.first(event_id):
            log.info("Slack event %s was already handled: this retry or replay runs nothing", event_id)
            return None
        return super()._generic_wrapper(event_data)

    def _sm_generic_event_handler(self, client, req):
        """Socket Mode: an envelope is acknowledged, then run once: one whose acknowledgement could
        not be sent runs nothing (Slack sends it again), one acknowledged before runs nothing."""
        try:
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        except (SlackClientNotConnectedError, OSError) as e:
            log.warning("Slack envelope %s not acknowledged (%s): Slack sends it again, it runs then",
                        req.envelope_id, type(e).__name__)
            return None
        if not self.envelopes_seen.first(req.envelope_id):
            log.info("Slack envelope %s (retry %s) was already acknowledged: runs nothing",
                     req.envelope_id, req.retry_attempt)
            return None
        if req.type != "interactive":
            return self._generic_wrapper(req.payload)
        payload = req.payload if isinstance(req.payload, dict) else {}
        if not self.presses_seen.first(str(payload.get("trigger_id") or req.envelope_id)):
            log.info("Slack interaction %s was already handled: runs nothing", payload.get("trigger_id"))
            return None
        return self._pressed(payload)

    def _pressed(self, payload):
        """A button pressed: one of Ferry's runs as its command, typed by the presser (Errbot's
        message path: ACLs, then the command); anything else is logged and ignored."""
        press = press_of(payload)
        if press is None:
            log.info("Slack interaction ignored: not a press on one of Ferry's buttons (%s)",
                     str(payload.get("type"))[:40])
            return None
        try:
            return self._handle_message(self.slack_web, command_event(press, self.bot_config.BOT_PREFIX))
        except Exception:  # the thread of a press must not die silently
            log.exception("the press of %s on %s by %s failed", press.command, press.change_id, press.user)

    def _handle_message(self, webclient, event):
        """An edited message runs nothing: a command runs once, when it is sent (an edit of
        `!deploy … to qa` into `… to prod` would be a second command nobody sent)."""
        if event.get("subtype") == "message_changed":
            log.info("Slack: an edited message in %s runs nothing (message_changed ignored)",
                     event.get("channel"))
            return None
        return super()._handle_message(webclient, event)

    @staticmethod
    def sanitize_uris(text):
        return slack_unescape(slackv3_module.SlackBackend.sanitize_uris(text))

    def callback_message(self, msg):
        extras = msg.extras if isinstance(msg.extras, dict) else {}
        event = extras.get("slack_event")
        bot = bot_of(event) if isinstance(event, dict) else None
        if bot is not None:
            extras["from_bot"] = bot
        press = event.get(PRESS) if isinstance(event, dict) else None
        if isinstance(press, Press):  # put there by _pressed only: no JSON from Slack is a Press
            extras[PRESS] = press.as_extras()
        return super().callback_message(msg)

    # ---- what goes out ------------------------------------------------------------------------

    def send_message(self, msg):
        msg.extras["link_names"] = False  # `@here` or `#name` in a reason stays text
        if "blocks" in msg.extras:
            msg.extras["blocks"] = blocks_for_slack(msg.extras["blocks"])
        return super().send_message(msg)

    def build_reply(self, msg, text=None, private=False, threaded=False):
        if isinstance(getattr(msg, "extras", None), dict) and msg.extras.get(PRESS):
            # A reply to a button press (a refusal, Errbot's ACLs included) is for the presser
            # alone; the plugin updates the pressed message itself when a change was decided.
            reply = super().build_reply(msg, text, private=True, threaded=False)
            reply.extras["ephemeral"] = True
            return reply
        in_channel = isinstance(msg.frm, RoomOccupant) and not private  # people and bots
        return super().build_reply(msg, text, private=private,
                                   threaded=threaded or (self.reply_in_thread and in_channel))

    def attach(self, msg, content: str, filename: str, title: str) -> str:
        """A text file in reply to ``msg`` (its thread): "" when posted, else why not (one line)."""
        return ferryslack_files.attach(self, msg, ferry_marks(content, markup=False), filename,
                                       ferry_marks(title, markup=False))

    # ---- channels by name -------------------------------------------------------------------

    @lru_cache(1024)
    def channelname_to_channelid(self, name: str):
        """``#name`` → its ID, listing only public and private channels (the manifest's scopes)."""
        wanted, cursor = name.lstrip("#"), None
        for _ in range(CHANNEL_PAGES):
            page = self.slack_web.conversations_list(cursor=cursor, limit=1000, types=CHANNEL_TYPES,
                                                     exclude_archived=True)
            for channel in page.get("channels") or ():
                if channel.get("name") == wanted:
                    return channel["id"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        raise RoomDoesNotExistError(f"No public or private channel #{wanted} in this workspace.")

    def query_room(self, room):
        if room.startswith(("C", "G")) or SLACK_CLIENT_CHANNEL_HYPERLINK.match(room):
            return super().query_room(room)
        return SlackRoom(webclient=self.slack_web, channelid=self.channelname_to_channelid(room), bot=self)
