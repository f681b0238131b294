"""Approvals with buttons: the request posted with Approve and Reject, and the pressed message
updated in place once someone decided.

A press reaches the commands as the message it stands for (``!approve <id>`` typed by the presser
where the button is: see backends/ferryslack/ferryslack_presses.py), marked with
``msg.extras["ferry_press"]``; the backend sends every other reply to a press to the presser alone
(ephemeral), so a refusal or a stale button is said to nobody else. Both messages here carry
Slack's ``blocks`` (and, for the update, the pressed message's ``ts``) in the message's extras, as
Errbot's SlackV3 backend takes them; any other backend shows the text alone.
"""
from __future__ import annotations

from typing import Optional

from ferrychat import blocks, render
from gitops.model import PendingChange

PRESS = "ferry_press"


def press_of(msg) -> Optional[dict]:
    """The button press ``msg`` stands for, or None for a typed command."""
    extras = getattr(msg, "extras", None)
    press = extras.get(PRESS) if isinstance(extras, dict) else None
    return press if isinstance(press, dict) else None


def offer(plugin, msg, change: PendingChange, text: str) -> None:
    """Say that ``change`` waits, as a reply to ``msg``, with the buttons under the text.

    Sent here rather than returned to Errbot, which passes a command's replies on as text only.
    Errbot's plugin API has no public way to send a message with extras: the bot's own
    ``build_reply`` and ``send_message`` are used, as Errbot's replies are sent."""
    bot = plugin._bot
    reply = bot.build_reply(msg, render.bounded(text))
    reply.extras["blocks"] = blocks.approval_request(change, text)
    bot.send_message(reply)


def decide(plugin, msg, verdict: str) -> None:
    """Replace the pressed message by ``verdict`` (who decided, and the result): no buttons left."""
    bot = plugin._bot
    update = bot.build_message(render.bounded(verdict))
    update.frm = bot.bot_identifier
    update.to = msg.to
    update.extras.update(ts=[press_of(msg)["message_ts"]], blocks=blocks.decided(verdict))
    bot.send_message(update)
