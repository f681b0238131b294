"""A local Slack for the tests: the Web API and a Socket Mode WebSocket on 127.0.0.1, in Slack's
wire format, so the real ``errbot`` process with the SlackV3 backend can talk to it.

Web API: ``POST|GET /api/<method>`` with a form, JSON or query body and ``Authorization: Bearer``;
answers ``{"ok": true, ...}`` (``auth.test`` with the ``x-oauth-scopes`` header the backend reads
to pick Socket Mode over RTM). Every call is recorded in ``calls``; messages the bot posts in
``posted``. Socket Mode: ``apps.connections.open`` (app token) returns ``ws://127.0.0.1:PORT/link/``;
the WebSocket (``tests/slack_socket.py``: RFC 6455, envelopes kept until acknowledged and sent
again on the next connection, and its faults) says ``hello``, then ``say()`` delivers
``events_api`` envelopes and waits for their acknowledgement.

Faults (``tests/slack_faults.py``): 429 with ``Retry-After``, 5xx before or after the call takes
effect, queued per method; ``conversations.history`` and ``conversations.replies`` read back what
was kept.

Buttons: posted messages are kept with their ``blocks`` (checked against Block Kit's documented
limits, ``tests/blockkit.py``: ``invalid_blocks`` otherwise); ``chat.update`` changes one of the
bot's messages, ``chat.postEphemeral`` is recorded for its one viewer. ``press()`` sends a
``block_actions`` payload for a button of a kept message as an ``interactive`` Socket Mode
envelope; ``post_press()`` POSTs it to the bot's Request URL as Slack does (a form with
``payload=``, signed with the signing secret).

Files, as Slack's upload flow documents it: ``files.getUploadURLExternal`` (filename, length)
answers an ``upload_url`` on this server and a ``file_id``; a POST of the bytes (raw or multipart)
to that URL answers ``OK - <length>``; ``files.completeUploadExternal`` (``files`` as JSON,
``channel_id``, ``thread_ts``) shares them: ``uploads`` records each shared file. Both methods need
the ``files:write`` scope (``missing_scope`` otherwise).
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qsl, urlsplit

from tests.slack_faults import WebApiFaults
from tests.slack_files import FileUploads
from tests.slack_interactive import Interactive
from tests.slack_socket import SocketMode

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SCOPES = "app_mentions:read,channels:history,channels:read,chat:write,groups:history,groups:read,im:history,im:read,im:write,mpim:history,reactions:write,users:read,users:read.email"
TEAM = {"id": "T0FERRY", "name": "Ferry Test", "domain": "ferrytest"}
# conversations.list: the scope each channel type needs (Slack answers missing_scope without it)
CHANNEL_SCOPES = {"public_channel": "channels:read", "private_channel": "groups:read",
                  "mpim": "mpim:read", "im": "im:read"}


@dataclass
class Call:
    method: str
    args: dict
    token: str


@dataclass
class FakeSlack(Interactive, FileUploads, WebApiFaults, SocketMode):
    bot_token: str = "xoxb-test-bot-token"
    app_token: str = "xapp-test-app-token"
    bot_user: str = "U0FERRYBOT"
    users: dict = field(default_factory=dict)      # id -> {"name", "real_name", "email"}
    channels: dict = field(default_factory=dict)   # id -> name ("C…"); DMs are made per user
    bots: dict = field(default_factory=dict)       # bot id ("B…") -> name: integrations, workflows
    scopes: str = SCOPES                           # the bot token's scopes, enforced where noted
    calls: list = field(default_factory=list)
    acks: set = field(default_factory=set)
    connected: threading.Event = field(default_factory=threading.Event)
    uploads: list = field(default_factory=list)    # Upload, in the order they were shared

    def __post_init__(self):
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._socket_mode_init()  # tests/slack_socket.py
        self.envelope_of: dict = {}  # a message's ts -> the id of the envelope that carried it
        self.messages: dict = {}  # (channel, ts) -> the message as Slack keeps it (text, blocks, …)
        self._files: dict = {}  # file_id -> {"filename", "length", "snippet_type", "data"}
        self._faults: dict = {}  # method -> the Fault answers its next calls get (tests/slack_faults.py)
        self.faulted: list = []  # calls answered with a fault that did nothing
        self._file_ids = itertools.count(1)  # (tests/slack_files.py)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/"

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> "FakeSlack":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            links = list(self._links)
        for link in links:
            try:
                link.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.shutdown()
        self.server.server_close()

    # ---- what the test does ---------------------------------------------------------------

    def dm_channel(self, user: str) -> str:
        return "D" + user[1:]

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def say(self, user: str, channel: str, text: str, thread_ts: str = "", timeout: float = 10,
            wait_ack: bool = True, **fields) -> str:
        """A person types ``text`` in ``channel``: deliver the event over Socket Mode (or keep it
        for the next connection), wait for the acknowledgement unless ``wait_ack`` is false; return
        the message's ``ts`` (its envelope's id is ``self.envelope_of[ts]``). ``fields`` are added
        to the event (a bot's message: ``subtype="bot_message", bot_id=…``; ``user=""`` leaves
        ``user`` out)."""
        if wait_ack and not self.connected.wait(timeout):
            raise AssertionError("the bot never opened the Socket Mode connection")
        ts = self.next_ts()
        event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                 "event_ts": ts, "team": TEAM["id"],
                 "channel_type": "im" if channel.startswith("D") else "channel", **fields}
        if not user:
            event.pop("user")
        if thread_ts:
            event["thread_ts"] = thread_ts
        envelope_id = str(uuid.uuid4())
        self.envelope_of[ts] = envelope_id
        self.deliver({
            "envelope_id": envelope_id, "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {"token": "verification", "team_id": TEAM["id"], "api_app_id": "A0FERRY",
                        "event": event, "type": "event_callback", "event_id": "Ev" + ts.replace(".", ""),
                        "event_time": int(time.time())}})
        if wait_ack:
            self.wait_for(lambda: envelope_id in self.acks, timeout,
                          f"no acknowledgement of the envelope for {text!r}")
        return ts

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} within {timeout:.0f} s")
                self._lock.wait(min(left, 0.2))

    def posted(self, channel: Optional[str] = None, thread_ts: Optional[str] = None) -> list:
        """``chat.postMessage`` calls, in order, optionally in one channel and thread."""
        with self._lock:
            return [c.args for c in self.calls if c.method == "chat.postMessage"
                    and (channel is None or c.args.get("channel") == channel)
                    and (thread_ts is None or c.args.get("thread_ts") == thread_ts)]

    def wait_posted(self, count: int, timeout: float = 30, **where) -> list:
        """At least ``count`` messages posted (``channel=``, ``thread_ts=``); fails after ``timeout``."""
        def enough():
            found = self.posted(**where)
            return found if len(found) >= count else None
        return self.wait_for(enough, timeout, f"{count} message(s) posted to {where or 'anywhere'}")

    def reactions(self, channel: str, ts: str) -> list:
        """(method, name) of every reaction call on one message, in order."""
        with self._lock:
            return [(c.method, c.args.get("name")) for c in self.calls
                    if c.method in ("reactions.add", "reactions.remove")
                    and c.args.get("channel") == channel and c.args.get("timestamp") == ts]

    # ---- the Web API -----------------------------------------------------------------------

    def api(self, method: str, args: dict, token: str) -> tuple[dict, dict]:
        """The answer to one Web API call: (body, extra headers)."""
        with self._lock:
            self.calls.append(Call(method, args, token))
            self._lock.notify_all()
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return {"ok": False, "error": "invalid_auth"}, {}
        if method == "auth.test":
            return ({"ok": True, "url": f"https://{TEAM['domain']}.slack.com/", "team": TEAM["name"],
                     "user": "ferry", "team_id": TEAM["id"], "user_id": self.bot_user, "bot_id": "B0FERRY"},
                    {"x-oauth-scopes": self.scopes})
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}"}, {}
        if method == "users.info":
            return self._user(args.get("user", "")), {}
        if method == "users.list":
            return {"ok": True, "members": [self._user(u)["user"] for u in self.users],
                    "response_metadata": {"next_cursor": ""}}, {}
        if method == "bots.info":
            bot = str(args.get("bot", ""))
            if bot not in self.bots:
                return {"ok": False, "error": "bot_not_found"}, {}
            return {"ok": True, "bot": {"id": bot, "deleted": False, "name": self.bots[bot],
                                        "app_id": "A" + bot[1:], "user_id": "U" + bot[1:]}}, {}
        if method == "team.info":
            return {"ok": True, "team": TEAM}, {}
        if method == "conversations.info":
            return self._conversation(args.get("channel", "")), {}
        if method == "conversations.list":
            needed = [CHANNEL_SCOPES.get(t, t) for t in str(args.get("types") or "public_channel").split(",")]
            missing = [n for n in needed if n not in self.scopes.split(",")]
            if missing:  # what Slack answers when the token lacks a type's read scope
                return {"ok": False, "error": "missing_scope", "needed": ",".join(missing),
                        "provided": self.scopes}, {}
            return {"ok": True, "channels": [self._conversation(c)["channel"] for c in self.channels],
                    "response_metadata": {"next_cursor": ""}}, {}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": self.dm_channel(str(args.get("users", "")))}}, {}
        if method in ("chat.update", "chat.postEphemeral"):
            return self._interactive_api(method, args)
        if method == "chat.postMessage":
            problem, ts = self._keep(args)
            if problem:
                return problem, {}
            return {"ok": True, "channel": args.get("channel"), "ts": ts,
                    "message": {"type": "message", "text": args.get("text"), "user": self.bot_user,
                                "ts": ts}}, {}
        if method in ("reactions.add", "reactions.remove"):
            return {"ok": True}, {}
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, args), {}
        if method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
            return self._file_method(method, args), {}
        return {"ok": False, "error": "unknown_method"}, {}

    def _user(self, uid: str) -> dict:
        if uid == self.bot_user:
            person = {"name": "ferry", "real_name": "Ferry", "email": ""}
        elif uid in self.users:
            person = self.users[uid]
        else:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {
            "id": uid, "team_id": TEAM["id"], "name": person["name"], "real_name": person["real_name"],
            "is_bot": uid == self.bot_user,
            "profile": {"real_name": person["real_name"], "display_name": person["name"],
                        "email": person["email"]}}}

    def _conversation(self, cid: str) -> dict:
        if cid.startswith("D") and "U" + cid[1:] in self.users:
            return {"ok": True, "channel": {"id": cid, "is_im": True, "user": "U" + cid[1:]}}
        if cid in self.channels:
            return {"ok": True, "channel": {"id": cid, "name": self.channels[cid], "is_channel": True,
                                            "is_member": True, "is_im": False, "is_mpim": False,
                                            "is_private": False, "topic": {"value": ""},
                                            "purpose": {"value": ""}}}
        return {"ok": False, "error": "channel_not_found"}


def _handler(slack: FakeSlack):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            if self.headers.get("Upgrade", "").lower() == "websocket":
                return self._upgrade()
            self._api()

        def do_POST(self):
            if urlsplit(self.path).path.startswith("/upload/v1/"):
                return self._upload()
            self._api()

        def _upload(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            file_id = urlsplit(self.path).path.rsplit("/", 1)[-1]
            status, text = slack.upload(file_id, body, self.headers.get("Content-Type", ""))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _api(self):
            url = urlsplit(self.path)
            if not url.path.startswith("/api/"):
                self.send_error(404)
                return
            method = url.path[len("/api/"):]
            args = dict(parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            if body and "json" in kind:
                args.update(json.loads(body))
            elif body:
                args.update(parse_qsl(body.decode("utf-8")))
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else str(args.get("token", ""))
            fault = slack.next_fault(method)
            if fault is not None and not fault.kept:  # refused: not among the calls Slack took
                with slack._lock:
                    slack.faulted.append(Call(method, args, token))
                answer, headers = slack.fault_answer(fault)
            else:
                answer, headers = slack.api(method, args, token)
                if fault is not None:
                    answer, headers = slack.fault_answer(fault)
            data = json.dumps(answer).encode()
            self.send_response(fault.status if fault is not None else 200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _upgrade(self):
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            slack.serve_websocket(self.connection)

    return Handler
