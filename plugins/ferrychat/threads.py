"""Where a command was asked, kept as plain text, and answering there later: a Flux event or a
queued change's outcome in the thread of the command that started it (the text survives a
restart; the chat objects are rebuilt from it)."""
from __future__ import annotations

from errbot.backends.base import Message, Room, RoomOccupant

from gitops.feedback.records import ReplyTarget


def target_of(msg) -> ReplyTarget:
    """Where to answer a command later, as plain strings: the channel (or the person, in a DM) and
    the Slack thread the command started (``thread_ts`` when it was itself in a thread)."""
    frm = msg.frm
    if isinstance(frm, RoomOccupant):
        to, room = frm.room, True
    else:
        to, room = frm, False
    extras = msg.extras if isinstance(msg.extras, dict) else {}
    event = extras.get("slack_event") or {}
    thread = event.get("thread_ts") or (event.get("message") or {}).get("ts") or event.get("ts") or ""
    return ReplyTarget(str(to), room, str(thread))


def say_in_thread(plugin, target: ReplyTarget, text: str) -> None:
    """Send ``text`` to ``target`` (in its thread where the backend has threads); raises what the
    backend raises when the target is gone."""
    to = identifier(plugin, target.to, target.room)
    plugin.send(to, text, in_reply_to=thread(target, to, plugin.bot_identifier))


def identifier(plugin, text: str, room: bool):
    """Rebuild a chat target from the text stored for it (it survives a restart)."""
    try:
        found = plugin.build_identifier(text)
    except Exception:  # a room name, or a target gone since: query_room or the sender logs it
        found = None
    if room and not isinstance(found, Room):
        found = plugin.query_room(text)
    return found


def thread(target: ReplyTarget, to, bot_identifier):
    """The message to answer under: what a backend with threads (Slack) needs to find it."""
    if not target.thread:
        return None
    return Message("", frm=to, to=bot_identifier, extras={"slack_event": {"ts": target.thread}})
