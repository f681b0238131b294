"""The approval message's Block Kit (plugins/ferrychat/blocks.py) against Slack's documented shape
and limits (tests/blockkit.py), and what FerrySlack makes of a press (ferryslack_presses.py): pure
functions, no Slack needed."""
import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from ferrychat import blocks, render
from gitops.model import PendingChange, Requester
from tests import blockkit
from tests.backends import backend_module

presses = backend_module("ferryslack", "ferryslack_presses")


def waiting(diff="-  version: 6.5.0\n+  version: 6.5.3\n", change_id="3f9a1c07d2"):
    return PendingChange(id=change_id, action="deploy", app="podinfo", environment="prod", old="6.5.0",
                         new="6.5.3", file="apps/prod/podinfo-values.yaml",
                         requester=Requester("U0ALICE", "Alice <admin>", "a@example.test"),
                         diff=diff, created="2026-11-28T10:00:00", expires="2026-11-28T11:00:00",
                         approvers=("U0ADA",))


def test_the_request_is_block_kit_as_documented():
    change = waiting()
    text = render.pending(change, new=True)
    made = blocks.approval_request(change, text)
    assert blockkit.problems(made) == []
    section, actions = made
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": blocks.escape(text)}}
    assert [(b["action_id"], b["value"], b["style"]) for b in actions["elements"]] == [
        ("ferry_approve", "3f9a1c07d2", "primary"), ("ferry_reject", "3f9a1c07d2", "danger")]
    assert blocks.ACTIONS == {"ferry_approve": "approve", "ferry_reject": "reject"}
    assert presses.COMMANDS == blocks.ACTIONS  # the backend runs exactly the buttons the plugin makes
    json.dumps(made)  # plain data


def test_markup_anyone_wrote_is_escaped_and_a_long_diff_is_cut_within_the_limit():
    nasty = "<!channel> & <https://evil|x> " * 400  # 12,000 characters, more once escaped
    change = waiting(diff=nasty + "\n" + "+ a & b\n" * 500)
    text = render.pending(change, new=True)
    section, _ = blocks.approval_request(change, text)
    body = section["text"]["text"]
    assert blockkit.problems([section]) == []
    assert len(body) <= blockkit.SECTION_TEXT and "<" not in body and ">" not in body
    assert body.endswith("```" + blocks.CUT) and body.count("```") == 2  # the code block closed
    assert not body.split("```")[1].rstrip().endswith(("&", "&a", "&am", "&amp", "&l", "&lt"))
    decided = blocks.decided("Rejected change `x` (asked by Alice <U0ALICE>), by Ada <U0ADA>.")
    assert blockkit.problems(decided) == [] and "&lt;U0ADA&gt;" in decided[0]["text"]["text"]
    # what the checker refuses, so that passing it means something
    assert blockkit.problems([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    too_long = blocks.button("Approve", "a" * 256, "v" * 2001, "green")
    assert len(blockkit.problems([{"type": "actions", "elements": [too_long]}])) == 3


def payload(**over):
    base = {"type": "block_actions", "user": {"id": "U0ADA"}, "channel": {"id": "C0GENERAL"},
            "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": "C0GENERAL"},
            "message": {"ts": "1700000000.000200", "thread_ts": "1700000000.000100"},
            "trigger_id": "123.456.abc", "response_url": "https://hooks.slack.com/actions/x",
            "actions": [{"type": "button", "action_id": "ferry_approve", "value": "3f9a1c07d2"}]}
    return {**base, **over}


def test_a_press_is_the_command_it_stands_for():
    press = presses.press_of(payload())
    assert press == presses.Press("approve", "3f9a1c07d2", "U0ADA", "C0GENERAL", "1700000000.000200",
                                  "1700000000.000100", "123.456.abc", "https://hooks.slack.com/actions/x")
    event = presses.command_event(press, "!")
    assert (event["text"], event["user"], event["channel"], event["ts"], event["thread_ts"]) == (
        "!approve 3f9a1c07d2", "U0ADA", "C0GENERAL", "1700000000.000200", "1700000000.000100")
    assert event[presses.PRESS] is press
    reject = payload(actions=[{"type": "button", "action_id": "ferry_reject", "value": "3f9a1c07d2"}])
    assert presses.command_event(presses.press_of(reject), "!")["text"] == "!reject 3f9a1c07d2"
    # not Ferry's, or not a plain change id: nothing runs (a value never adds arguments)
    for other in (payload(type="view_submission"), payload(actions=[]), payload(user="U0ADA"),
                  payload(actions=[{"action_id": "other", "value": "x"}]),
                  payload(actions=[{"action_id": "ferry_approve", "value": "3f9a reason --force"}]),
                  payload(actions=[{"action_id": "ferry_approve", "value": ""}]),
                  payload(channel={"id": "X1"}), None, []):
        assert presses.press_of(other) is None, other


def test_interactivity_requests_are_signed_recent_and_forms():
    body = urlencode({"payload": json.dumps(payload())}).encode()
    stamp = "1700000000"
    good = "v0=" + hmac.new(b"secret", b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    assert presses.check_signature("secret", stamp, good, body, 1700000100) == (0, "")
    assert presses.check_signature("other", stamp, good, body, 1700000100)[0] == 401
    assert presses.check_signature("secret", stamp, good, body + b"x", 1700000100)[0] == 401
    assert presses.check_signature("secret", stamp, good, body, 1700000301)[0] == 401  # too old
    assert presses.check_signature("secret", stamp, good, body, 1699999699)[0] == 401  # from the future
    for bad in ("", "soon", "-5", "1e9", "9" * 13):
        assert presses.check_signature("secret", bad, good, body, 1700000100)[0] == 400
    assert presses.read_payload(body)["trigger_id"] == "123.456.abc"
    deep = urlencode([("payload", '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}")]).encode()
    for bad in (b"", b"payload=", b"payload=%7Bx", b"payload=[1]", b"payload=%7B%7D", b"other=1",
                b"\xff", urlencode([("payload", "{}"), ("payload", "{}")]).encode(), deep):
        with pytest.raises(ValueError, match="one `payload` field"):
            presses.read_payload(bad)
