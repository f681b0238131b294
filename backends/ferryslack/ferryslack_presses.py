"""Buttons pressed in Slack (Block Kit ``block_actions``), for FerrySlack.

A press on one of Ferry's approval buttons is turned into the message it stands for, typed by the
person who pressed it where the button is (``!approve <id>`` / ``!reject <id>``), and handed to
SlackV3's own message path: Errbot's ACLs, Ferry's policy, channel and four-eyes checks and the
claim-once rule apply exactly as to the typed command. The event carries a ``Press`` (a Python
object: nothing Slack sends can forge it) so the replies know they answer a button.

Presses arrive two ways:
- Socket Mode: an ``interactive`` envelope, acknowledged at once (FerrySlack's listener);
- the Events API: Slack POSTs ``payload=<JSON>`` as a form to ``/slack/interactive``, signed with
  the signing secret like events (``v0:<timestamp>:<body>``, HMAC-SHA256). Refused, with nothing
  done: a malformed timestamp or body 400, a timestamp more than five minutes away or a wrong
  signature 401, the same interaction again (a replay) 400. An accepted press is answered 200 at
  once (Slack waits three seconds) and run in its own thread.

Kept out of ferryslack.py: the SlackV3 plugin loader wants the backend module to hold only the
backend class.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

INTERACTIVE_PATH = "/slack/interactive"
PRESS = "ferry_press"  # the key of a press in the event and in ``msg.extras`` (ferrychat reads it)
# Ferry's buttons (plugins/ferrychat/blocks.py builds them): action_id -> the command a press runs.
# Any other action is not Ferry's and runs nothing.
COMMANDS = {"ferry_approve": "approve", "ferry_reject": "reject"}
CHANGE_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")  # one word: a value never adds arguments
STAMP = re.compile(r"^[0-9]{1,12}$")
SIGNATURE_LIFETIME = 300  # seconds either side of now, as for events


@dataclass(frozen=True)
class Press:
    command: str  # approve | reject
    change_id: str
    user: str
    channel: str
    message_ts: str  # the message the button is on
    thread_ts: str  # the thread that message is in ("" when it is not a reply)
    trigger_id: str
    response_url: str

    def as_extras(self) -> dict:
        return asdict(self)


def press_of(payload) -> Optional[Press]:
    """The press of one of Ferry's buttons in a ``block_actions`` payload, or None."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = [a for a in payload.get("actions") or () if isinstance(a, dict) and a.get("action_id") in COMMANDS]
    user, channel = payload.get("user"), payload.get("channel")
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    if len(actions) != 1 or not isinstance(user, dict) or not isinstance(channel, dict):
        return None
    value = str(actions[0].get("value") or "")
    ts = str(container.get("message_ts") or message.get("ts") or "")
    where = str(channel.get("id") or container.get("channel_id") or "")
    if not (CHANGE_ID.match(value) and ts and where[:1] in ("C", "G", "D") and user.get("id")):
        return None
    return Press(COMMANDS[actions[0]["action_id"]], value, str(user["id"]), where, ts,
                 str(message.get("thread_ts") or ""), str(payload.get("trigger_id") or ""),
                 str(payload.get("response_url") or ""))


def command_event(press: Press, prefix: str) -> dict:
    """The Slack message event a press stands for: the command, typed by the presser where the
    button is; its ``ts`` is the button's message (reactions and Flux's answers go there)."""
    event = {"type": "message", "channel": press.channel, "user": press.user,
             "text": f"{prefix}{press.command} {press.change_id}", "ts": press.message_ts,
             "channel_type": "im" if press.channel.startswith("D") else "channel", PRESS: press}
    if press.thread_ts:
        event["thread_ts"] = press.thread_ts
    return event


def check_signature(secret: str, stamp: str, signature: str, body: bytes, now: float) -> tuple[int, str]:
    """(0, "") for a request Slack signed within the last five minutes, else (status, why)."""
    if not STAMP.match(stamp or ""):
        return 400, "X-Slack-Request-Timestamp must be the request's Unix time in seconds."
    if abs(now - int(stamp)) > SIGNATURE_LIFETIME:
        return 401, "The request's timestamp is more than five minutes away: a replay, or a clock off."
    mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest("v0=" + mac, signature or ""):
        return 401, "The request is not signed with the app's signing secret."
    return 0, ""


def read_payload(body: bytes) -> dict:
    """The JSON ``payload`` field of an interactivity request's form body (ValueError if none)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0]) if len(form.get("payload", ())) == 1 else None
    except (UnicodeDecodeError, ValueError, KeyError, RecursionError):  # signed, but nested past the parser
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise ValueError("The body must be a form with one `payload` field: a Slack interaction payload.")
    return payload


def interactive_view(secret: str, first: Callable[[str], bool], handle: Callable[[dict], None],
                     clock: Callable[[], float] = time.time):
    """The Flask view of ``INTERACTIVE_PATH``: verify, acknowledge, run ``handle`` in a thread.
    ``first(key)`` is true the first time an interaction is seen (FerrySlack's EventMemory)."""
    from flask import request  # Flask only where the view runs: the rest is plain and tested as such

    def view():
        body = request.get_data(cache=False)
        status, why = check_signature(secret, request.headers.get("X-Slack-Request-Timestamp", ""),
                                      request.headers.get("X-Slack-Signature", ""), body, clock())
        if not status:
            try:
                payload = read_payload(body)
            except ValueError as e:
                status, why = 400, str(e)
        if not status and not first(str(payload.get("trigger_id") or hashlib.sha256(body).hexdigest())):
            status, why = 400, "This interaction was already handled: a replay runs nothing."
        if status:
            log.warning("Slack interactivity request from %s refused (%d): %s", request.remote_addr, status, why)
            return why + "\n", status, {"Content-Type": "text/plain"}
        threading.Thread(target=handle, args=(payload,), name="ferry-press", daemon=True).start()
        return "", 200

    return view
