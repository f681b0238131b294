"""Slack Block Kit for approvals, as plain data: the request with its Approve and Reject buttons,
and the decided message that replaces it. Pure functions; the Slack backend posts what they build.

Block Kit's documented limits (https://docs.slack.dev/reference/block-kit/): a section's text at
most 3000 characters, a button's label 75, its ``action_id`` 255 and its ``value`` 2000, an
``actions`` block at most 25 elements, a ``block_id`` 255, a message 50 blocks. Texts are sized
here as Slack receives them, escaped.

The texts are ``mrkdwn``: Slack reads ``<…>`` as markup there (``<!channel>``, ``<@U…>``, masked
links), so ``&``, ``<`` and ``>`` are escaped the way Slack's "Escaping text" asks, as the Slack
backend escapes every message (``backends/ferryslack``'s ``slack_escape``, which a plugin cannot
import: backends and plugins load apart).
"""
from __future__ import annotations

from gitops.model import PendingChange

APPROVE, REJECT = "ferry_approve", "ferry_reject"  # action_ids; the value is the change id
ACTIONS = {APPROVE: "approve", REJECT: "reject"}  # action_id -> the command a press runs
SECTION_LIMIT = 3000
CUT = "\n… (cut: `!pending` shows it whole)"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict:
    """A section of ``text`` (Ferry's chat Markdown: inline code and fenced blocks are Slack's too),
    escaped, cut to Block Kit's limit; a cut code block is closed again."""
    body = escape(text)
    if len(body) > SECTION_LIMIT:
        body = body[:SECTION_LIMIT - len(CUT) - len("\n```")].rstrip("\n`")
        entity = body.rfind("&")
        if entity != -1 and ";" not in body[entity:]:  # never half an `&amp;`
            body = body[:entity]
        if body.count("```") % 2:
            body += "\n```"
        body += CUT
    return {"type": "section", "text": {"type": "mrkdwn", "text": body}}


def button(label: str, action_id: str, value: str, style: str) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": False},
            "action_id": action_id, "value": value, "style": style}


def approval_request(change: PendingChange, text: str) -> list:
    """The message asking for approval: ``text`` (what ``!deploy`` says when a change waits, with
    its diff and the commands), then Approve and Reject buttons carrying the change id."""
    return [section(text),
            {"type": "actions", "block_id": f"ferry_approval_{change.id}"[:255],
             "elements": [button("Approve", APPROVE, change.id, "primary"),
                          button("Reject", REJECT, change.id, "danger")]}]


def decided(text: str) -> list:
    """What replaces the request once someone decided: who and the result, no buttons left."""
    return [section(text)]
