"""The local Slack's buttons (see tests/slack_server.py): messages kept with their blocks (checked
against Block Kit's documented limits, ``tests/blockkit.py``), ``chat.update``,
``chat.postEphemeral``, and ``block_actions`` interactions sent as Slack sends them: an
``interactive`` Socket Mode envelope, or a signed form POST to the bot's Request URL."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Optional
from urllib.parse import urlencode

from tests import blockkit


class Interactive:
    """Mixed into FakeSlack: uses its lock, users, channels, timestamps and WebSocket."""

    def _keep(self, args: dict) -> tuple:
        """Keep a posted message as Slack does, its blocks checked: (error answer or None, ts)."""
        blocks, problem = _blocks(args)
        if problem:
            return problem, ""
        ts = self.next_ts()
        message = {"type": "message", "user": self.bot_user, "bot_id": "B0FERRY",
                   "text": args.get("text") or "", "ts": ts, "channel": args.get("channel")}
        if blocks is not None:
            message["blocks"] = blocks
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        with self._lock:
            self.messages[(args.get("channel"), ts)] = message
        return None, ts

    def _interactive_api(self, method: str, args: dict) -> tuple[dict, dict]:
        blocks, problem = _blocks(args)
        if problem:
            return problem, {}
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}, {}
        if not (args.get("text") or blocks):
            return {"ok": False, "error": "no_text"}, {}
        if method == "chat.postEphemeral":  # seen by ``user`` alone; nothing kept in the channel
            if not args.get("user"):
                return {"ok": False, "error": "user_not_found"}, {}
            return {"ok": True, "message_ts": self.next_ts()}, {}
        with self._lock:  # chat.update: only the bot's own messages, by channel and ts
            message = self.messages.get((channel, args.get("ts")))
            if message is None:
                return {"ok": False, "error": "message_not_found"}, {}
            if message["user"] != self.bot_user:
                return {"ok": False, "error": "cant_update_message"}, {}
            message["text"] = args.get("text") or ""
            if blocks is not None:
                message["blocks"] = blocks
            message["edited"] = {"user": self.bot_user, "ts": self.next_ts()}
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"],
                "message": dict(message)}, {}

    def calls_of(self, method: str, **where) -> list:
        """The arguments of every ``method`` call, in order, with ``where``'s values."""
        with self._lock:
            return [c.args for c in self.calls if c.method == method
                    and all(c.args.get(k) == v for k, v in where.items())]

    def message_with_buttons(self, channel: str, timeout: float = 30) -> dict:
        """The first kept message in ``channel`` that carries an ``actions`` block."""
        def found():
            with_buttons = [m for (c, _), m in self.messages.items() if c == channel
                            and any(b.get("type") == "actions" for b in m.get("blocks") or ())]
            return with_buttons[0] if with_buttons else None
        return self.wait_for(found, timeout, f"a message with buttons in {channel}")

    def interaction(self, user: str, message: dict, action_id: str, value: Optional[str] = None) -> dict:
        """The ``block_actions`` payload Slack sends when ``user`` presses ``action_id`` on ``message``
        (a kept message; ``value`` overrides the button's, as a forged or stale one would)."""
        from tests.slack_server import TEAM  # that module imports this one
        button, block_id = None, ""
        for block in message.get("blocks") or ():
            for element in block.get("elements") or ():
                if element.get("action_id") == action_id:
                    button, block_id = element, block.get("block_id", "")
        if button is None:
            raise AssertionError(f"no button {action_id} on the message {message.get('ts')}")
        person = self.users.get(user, {"name": user})
        channel = message["channel"]
        return {
            "type": "block_actions", "user": {"id": user, "username": person["name"], "name": person["name"],
                                              "team_id": TEAM["id"]},
            "api_app_id": "A0FERRY", "token": "verification",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": f"{next(self._ts)}.{int(time.time())}.{uuid.uuid4().hex[:16]}",
            "team": {"id": TEAM["id"], "domain": TEAM["domain"]}, "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channels.get(channel, "directmessage")},
            "message": {k: v for k, v in message.items() if k != "channel"},
            "state": {"values": {}},
            "response_url": f"http://127.0.0.1:{self.port}/actions/T0FERRY/{uuid.uuid4().hex[:12]}",
            "actions": [{"action_id": action_id, "block_id": block_id, "text": button["text"],
                         "value": button.get("value", "") if value is None else value,
                         "style": button.get("style"), "type": "button",
                         "action_ts": f"{time.time():.6f}"}],
        }

    def press(self, payload: dict, timeout: float = 10) -> str:
        """Deliver an interaction over Socket Mode (an ``interactive`` envelope) and wait for its
        acknowledgement; returns the envelope id."""
        if not self.connected.wait(timeout):
            raise AssertionError("the bot never opened the Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        self._send_ws(json.dumps({"envelope_id": envelope_id, "type": "interactive",
                                  "accepts_response_payload": True, "payload": payload}))
        self.wait_for(lambda: envelope_id in self.acks, timeout, "no acknowledgement of the press")
        return envelope_id

    @staticmethod
    def signed_press(secret: str, payload: dict, stamp: Optional[str] = None) -> tuple[bytes, dict]:
        """An interactivity request as Slack POSTs it: (form body, headers), signed (v0)."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = stamp or str(int(time.time()))
        mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/x-www-form-urlencoded",
                      "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={mac}"}


def _blocks(args: dict) -> tuple:
    """(blocks or None, error answer or None): ``blocks`` as a JSON string or a list, checked."""
    raw = args.get("blocks")
    if raw is None:
        return None, None
    try:
        blocks = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None, {"ok": False, "error": "invalid_blocks_format"}
    found = blockkit.problems(blocks)
    if found:
        return None, {"ok": False, "error": "invalid_blocks", "errors": found}
    return blocks, None


