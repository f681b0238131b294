"""Where a command was asked, kept as plain text, and answering there later: a Flux event or a
queued change's outcome in the thread of the command that started it (the text survives a
restart; the chat objects are rebuilt from it); who asked and where as Errbot's ACLs name them,
to ask the ACLs again later."""
from __future__ import annotations

from errbot.backends.base import Message, Room, RoomOccupant
from errbot.core_plugins.acls import get_acl_room, get_acl_usr

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


def acl_names(msg) -> tuple:
    """(sender, room) as Errbot's ACLs name them (``get_acl_usr``, ``get_acl_room``); room ""
    in a DM. Plain text, kept with a queued change to ask the ACLs again at its opening."""
    room = msg.frm.room if isinstance(msg.frm, RoomOccupant) else None
    return str(get_acl_usr(msg)), (str(get_acl_room(room)) if room is not None else "")


def may_still_run(plugin, command: str, args: str, names: tuple) -> bool:
    """Whether Errbot's ACLs let the sender ``names`` (``acl_names``) run ``command`` with
    ``args`` where they asked it, now: its command filters as a dry run, as `!help` asks."""
    user, room = names
    where = _AclRoom(room) if room else None
    msg = Message(f"{command} {args}", frm=_Asker(user, where), to=where or plugin.bot_identifier)
    allowed, _, _ = plugin._bot._process_command_filters(msg, command, args, dry_run=True)
    return allowed is not None


class _AclRoom(Room):
    """A room by the name Errbot's ACLs matched, and no more."""

    def __init__(self, name: str):
        self._name = name

    aclattr = property(lambda self: self._name)

    def __str__(self):
        return self._name


class _Asker(RoomOccupant):
    """A sender by the name Errbot's ACLs matched, in ``room`` (None: a DM)."""

    def __init__(self, name: str, room=None):
        self._name, self._room = name, room

    person = aclattr = nick = property(lambda self: self._name)
    fullname = client = property(lambda self: None)
    room = property(lambda self: self._room)

    def __str__(self):
        return self._name
