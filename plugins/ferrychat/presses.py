"""Approvals with buttons: the request posted with Approve and Reject, and that message updated in
place once the change is decided, however it was: a press, a typed `!approve`/`!reject`, or its
expiry. No decided change keeps live buttons.

A press reaches the commands as the message it stands for (``!approve <id>`` typed by the presser
where the button is: see backends/ferryslack/ferryslack_presses.py), marked with
``msg.extras["ferry_press"]``; the backend sends every other reply to a press to the presser alone
(ephemeral), so a refusal or a stale button is said to nobody else. Both messages here carry
Slack's ``blocks`` (and, for the update, the request's ``ts``) in the message's extras, as Errbot's
SlackV3 backend takes them; any other backend shows the text alone.

Where each request message is (its conversation and ``ts``, as the backend gave them when it was
posted) is kept in the Ferry plugin's storage under ``REQUESTS``, by change id, until the update:
it survives a restart, so a change that expires while the bot is down is updated once it is back.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Optional

from ferrychat import blocks, render
from gitops.guard.approvals import EXPIRED
from gitops.identity import person
from gitops.model import PendingChange

log = logging.getLogger(__name__)

PRESS = "ferry_press"
REQUESTS = "approval-requests"  # change id -> {"to": conversation, "ts": message ts, "expires": ISO}
_requests_lock = threading.Lock()  # read-modify-write of REQUESTS between the bot's threads


def press_of(msg) -> Optional[dict]:
    """The button press ``msg`` stands for, or None for a typed command."""
    extras = getattr(msg, "extras", None)
    press = extras.get(PRESS) if isinstance(extras, dict) else None
    return press if isinstance(press, dict) else None


def described(change: PendingChange) -> str:
    """What a held change is, in one line: action, app, versions, environment, who asked."""
    return (f"{change.action} `{change.app}` {change.old} → {change.new} in {change.environment}, "
            f"asked by {person(change.requester)}")


def offer(ferry, msg, change: PendingChange, text: str) -> None:
    """Say that ``change`` waits, as a reply to ``msg``, with the buttons under the text; remember
    where the message is when the backend says (Slack's ``ts``), for its update once decided.

    Sent here rather than returned to Errbot, which passes a command's replies on as text only.
    Errbot's plugin API has no public way to send a message with extras: the bot's own
    ``build_reply`` and ``send_message`` are used, as Errbot's replies are sent."""
    bot = ferry._bot
    reply = bot.build_reply(msg, render.bounded(text))
    reply.extras["blocks"] = blocks.approval_request(change, text)
    bot.send_message(reply)
    posted = reply.extras.get("ts")  # SlackV3: one ts per part sent; the buttons are on the last
    if not posted:
        return
    try:
        place = {"to": str(reply.to), "ts": str(posted[-1]), "expires": change.expires}
        _update_requests(ferry, lambda requests: requests.__setitem__(change.id, place))
    except Exception:  # the request is posted and waits all the same; only its update is lost
        log.exception("could not keep where the request message of change %s is", change.id)


def settle(ferry, change_id: str, verdict: str, msg=None) -> None:
    """Replace the request message of ``change_id`` by ``verdict`` (who decided, and the result):
    no buttons left. The one way a request message is updated, for presses, typed commands and
    expiry alike; ``msg``, a press on a request posted before its place was kept, stands for it.
    Nothing to update (another backend, already updated): nothing done. An update that fails is
    logged: the change was decided all the same."""
    key = change_id.strip().lower()  # as typed: the core takes ids in any case
    place = _update_requests(ferry, lambda requests: requests.pop(key, None))
    bot = ferry._bot
    try:
        if place is not None:
            to, ts = ferry.build_identifier(place["to"]), place["ts"]
        elif press_of(msg) is not None:
            to, ts = msg.to, press_of(msg)["message_ts"]
        else:
            return
        update = bot.build_message(render.bounded(verdict))
        update.frm, update.to = bot.bot_identifier, to
        update.extras.update(ts=[ts], blocks=blocks.decided(verdict))
        bot.send_message(update)
    except Exception:  # the chat's trouble (a channel gone, Slack down) must not undo a decision
        log.exception("could not update the request message of change %s", change_id)


def settle_expired(ferry, now: datetime) -> None:
    """Update the request messages of the changes that expired without a decision (and of those
    the core no longer knows). A change decided by a command is that command's to settle: one
    still being applied is left alone, so its update says how it ended."""
    with _requests_lock:
        requests = dict(ferry.get(REQUESTS, {}))
    for change_id, place in requests.items():
        if datetime.fromisoformat(place["expires"]) > now:
            continue
        change = ferry.gitops.pending_change(change_id)
        if change is None:
            settle(ferry, change_id, f"Change `{change_id}` is no longer waiting for approval.")
        elif change.state == EXPIRED:
            settle(ferry, change_id, f"Change `{change.id}` ({described(change)}) expired at "
                                     f"{change.expires[:16].replace('T', ' ')} UTC without approval: "
                                     "ask for it again.")


def _update_requests(ferry, change):
    """``change(requests)`` on the kept request places, stored whole again (Errbot's storage
    persists an assigned key only); its result."""
    with _requests_lock:
        requests = dict(ferry.get(REQUESTS, {}))
        result = change(requests)
        ferry[REQUESTS] = requests
        return result
