"""A file in reply to a command, in its thread: how FerrySlack attaches a table too long for a message.

Slack's upload flow (``files.upload`` is retired): ``files.getUploadURLExternal`` (filename, length
in bytes, ``snippet_type``) gives an ``upload_url`` and a ``file_id``; the bytes are POSTed to that
URL; ``files.completeUploadExternal`` with the file's id and title, ``channel_id`` and ``thread_ts``
shares it in the thread. slack_sdk's ``files_upload_v2`` does the three steps; it is called here
rather than through SlackV3's ``send_stream_request``, which shares the file in the channel (no
thread), in a thread pool whose failure is only logged. The bot token needs ``files:write``.
"""
import logging

from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)

WHY = {  # what a person can do about Slack's refusal
    "missing_scope": "the Slack app lacks the `files:write` scope: add it to the app and reinstall it",
    "file_uploads_disabled": "this workspace has disabled file uploads",
    "file_upload_size_restricted": "this workspace restricts the size of uploads",
    "not_in_channel": "the bot is not in this channel",
}


def where(backend, msg) -> tuple:
    """(channel ID, thread ts or None) where a reply to ``msg`` goes, as FerrySlack's replies do:
    the command's thread in a channel (the thread's parent when the command is itself in a
    thread), the DM for a DM."""
    reply = backend.build_reply(msg, "")
    _, channel = backend._prepare_message(reply)  # SlackV3's own: a room, or a person's DM
    thread = reply.extras.get("thread_ts")
    if thread is None and reply.parent is not None:
        thread = backend._ts_for_message(reply.parent)
    return channel, thread


def attach(backend, msg, content: str, filename: str, title: str) -> str:
    """Upload ``content`` as a text snippet in reply to ``msg``: "" when done, else why not, in one
    line (Slack's error code and what to do about it; never the token or a trace)."""
    try:
        channel, thread = where(backend, msg)
        backend.slack_web.files_upload_v2(content=content, filename=filename, title=title,
                                          snippet_type="text", channel=channel, thread_ts=thread)
        return ""
    except SlackApiError as e:
        code = str(e.response.get("error") or "error")
        log.warning("Slack refused the upload of %s: %s", filename, code)
        return f"Slack answered `{code}`" + (f": {WHY[code]}" if code in WHY else "")
    except (SlackClientError, OSError) as e:  # the upload URL unreachable, a refused POST
        log.warning("the upload of %s failed: %s", filename, e)
        return "the upload to Slack failed (see the bot's log)"
