"""One place turns core results and errors into chat replies."""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
import uuid

from ferrychat import presses, previews, queued, render, sizing, threads
from gitops.ops import metrics
from gitops.errors import FerryError, logged
from gitops.model import Requester
from gitops.guard.policy import NotAllowed

log = logging.getLogger("ferry.commands")


def answers(func):
    """Wrap a command: typed errors become their one-line message, anything else an apology with an
    id to find the log line; a ``sizing.Table`` is a message or a file (``table``), any other text
    is bounded. Logs one line per command: who, what, result, duration."""

    @functools.wraps(func)
    def command(self, msg, args):
        started, outcome = time.monotonic(), "ok"
        metrics.command_started()
        who = requester(msg).id
        try:
            result = func(self, msg, args)
            if not inspect.isgenerator(result):
                result = [] if result is None else [result]
            for reply in result:
                if isinstance(reply, sizing.Table):
                    yield from table(self, msg, reply)
                else:
                    yield render.bounded(reply) if isinstance(reply, str) else reply
        except FerryError as e:
            outcome = f"refused: {e}"
            yield e.message
        except Exception:  # a bug of ours: an apology and a log id, never a trace in chat
            ref = uuid.uuid4().hex[:8]
            outcome = f"error {ref}"
            log.exception("error %s in !%s %r from %s", ref, func.__name__, args, who)
            yield f"Sorry, that failed on my side (error `{ref}`; the bot's log has the details)."
        finally:
            log.info("%s ran !%s %s -> %s (%.0f ms)", logged(who), func.__name__.replace("_", " "),
                     logged(args or ""), logged(outcome), (time.monotonic() - started) * 1000)
            _counted(self, func.__name__, outcome)

    return command


def admins_by_dm(func):
    """For bot admins, by direct message only: what Errbot's ``@botcmd(admin_only=True)`` checks,
    with its words, without what it also does. Errbot runs an admin-only command only once every
    command under way has finished (it joins its whole worker pool, on the thread that reads
    chat): one command waiting for a slow registry would hold `!locks`, and every message after it."""

    @functools.wraps(func)
    def command(self, msg, args):
        if not self.get_plugin("Ferry").is_admin(msg):
            yield "This command requires bot-admin privileges"
        elif getattr(msg, "is_group", False):
            yield "This command may only be issued through a direct message"
        else:
            yield from func(self, msg, args)

    return command


def table(plugin, msg, answer: sizing.Table):
    """The replies of an answer that may not fit one message (``sizing.fits``, against Errbot's
    ``MESSAGE_SIZE_LIMIT`` of the backend): the whole of it when it fits; else, on a backend that
    attaches files in the command's thread (FerrySlack's ``attach``), a one-line summary and the
    whole as a file; elsewhere (the text console, Errbot's test backend: their
    ``send_stream_request`` prints nothing or raw bytes) the rows that fit the bound and a count
    of the rest. An upload Slack refuses is said, followed by that inline form."""
    bot = getattr(plugin, "_bot", None)  # the backend, as ``progress`` reaches it
    limit = int(getattr(getattr(plugin, "bot_config", None), "MESSAGE_SIZE_LIMIT", 0) or 0)
    if sizing.fits(answer.message, limit):
        yield answer.message
        return
    attach = getattr(bot, "attach", None)
    if attach is None:
        yield sizing.inline(answer, limit)
        return
    yield sizing.attached(answer, limit)
    problem = attach(msg, sizing.file_text(answer), answer.filename, answer.title)
    if problem:
        log.warning("could not attach %s: %s", answer.filename, problem)
        yield sizing.inline(answer, limit, f"The table could not be attached ({problem}); its start:\n")


def attach_file(plugin, msg, answer: sizing.Table) -> None:
    """The whole of ``answer`` as a file in the command's thread, on a backend that attaches files
    (FerrySlack's ``attach``); elsewhere nothing. A failed upload is logged, never said: what it
    would have held was said in short already."""
    attach = getattr(getattr(plugin, "_bot", None), "attach", None)
    if attach is None:
        return
    problem = attach(msg, sizing.file_text(answer), answer.filename, answer.title)
    if problem:
        log.warning("could not attach %s: %s", answer.filename, problem)


def _counted(plugin, name: str, outcome: str) -> None:
    """The command in the core's metrics (``gitops.ops.metrics``); counting never fails a command."""
    try:
        plugin.get_plugin("Ferry").gitops.metrics.command(name, outcome)
    except Exception as e:
        log.warning("could not count !%s in the metrics: %s", name, e)


def requester(msg) -> Requester:
    """Who asked and where, by chat IDs (never the display name, which anyone can change).

    A message the backend marked as a bot's or an integration's (``extras["from_bot"]``, see
    backends/ferryslack) is a bot requester: its ID is the bot ID, and the core lets it change
    nothing unless the environment's policy names it (``policy.bots``)."""
    frm = msg.frm
    extras = getattr(msg, "extras", None) or {}
    link = str(extras.get("url") or "")
    bot = extras.get("from_bot")
    if bot is not None:
        bot = bot if isinstance(bot, dict) else {}
        return Requester(str(bot.get("id") or ""), str(bot.get("name") or ""), "", channels(msg), link,
                         bot=True)
    ident = getattr(frm, "userid", None) or getattr(frm, "person", None) or str(frm)
    name = getattr(frm, "fullname", None) or getattr(frm, "nick", None) or ""
    email = getattr(frm, "email", None) or ""
    return Requester(str(ident), str(name or ""), str(email or ""), channels(msg), link)


def person(msg) -> Requester:
    """The requester of a command no bot may run (locks): refused with one line for a bot."""
    who = requester(msg)
    if who.bot:
        raise NotAllowed("Only people lock or unlock: a bot or an integration cannot.")
    return who


def channels(msg) -> tuple:
    """The names the channel of ``msg`` goes by (ID, ``#name``, ACL name); () for a DM."""
    room = getattr(msg.frm, "room", None) if getattr(msg, "is_group", False) else None
    if room is None:
        return ()
    names = []
    for attr in ("id", "channelid", "aclattr", "name"):
        try:
            value = getattr(room, attr, None)
        except Exception:  # a backend may look names up lazily over the network
            value = None
        if value:
            names.append(str(value))
    names += [f"#{n}" for n in names if not n.startswith(("#", "C", "G"))]
    return tuple(dict.fromkeys(names))


def carry_out(ferry, plan, msg, request):
    """A changing command's replies: refuse early, say what is about to happen, then the result.

    ``ferry`` is the Ferry plugin: its core does the work, its watchers hear of every commit."""
    gitops, who = ferry.gitops, requester(msg)
    admin = ferry.is_admin(msg) and not who.bot  # a bot never forces
    decision = gitops.check(plan, who, force=request.force, admin=admin, queue=request.queue)
    if decision.held is not None:  # outside the environment's windows, with --queue: kept for the opening
        yield enqueue(gitops, plan.action, request, who, msg)
        return
    pushes = not (request.dry_run or plan.noop or gitops.needs_approval(plan))
    if pushes:
        yield render.intent(plan)
    with progress(ferry, msg, pushes):
        change = gitops.apply(plan, who, dry_run=request.dry_run, force=request.force, admin=admin)
    if change.commit is not None or change.pull_request is not None:  # the watchers first: the preview below takes its time
        ferry.committed(change, msg)
    # What the upgrade brings, in a few lines (the archives on disk by digest once read, by the
    # dry run or the policy's check); a preview that cannot be made is one line.
    found, problem = gitops.preview_of(plan)
    note = previews.short(found, problem)
    if change.pending is not None:  # with Approve and Reject buttons where chat has them (Slack)
        presses.offer(ferry, msg, change.pending, previews.with_short(render.change(change), note))
    else:
        yield previews.with_short(render.change(change), note)
    whole = previews.attachment(found, note)
    if whole is not None:  # something to read before it lands: the whole, as a file
        attach_file(ferry, msg, whole)


def enqueue(gitops, command: str, request, who, msg) -> str:
    """Queue what ``request`` asked for the environment's next opening; the reply saying so."""
    target = threads.target_of(msg)
    change = gitops.enqueue(command, request.app, request.environment, who, version=request.version,
                            source=request.source, part=request.part,
                            target=(target.to, target.room, target.thread), asker=threads.acl_names(msg))
    hours = ", ".join(w.text for w in gitops.settings.environment(change.environment).policy.windows)
    return queued.queued(change, gitops.when_opens(change), hours)


WORKING, DONE, FAILED = "hourglass_flowing_sand", "white_check_mark", "x"


@contextlib.contextmanager
def progress(plugin, msg, shown: bool = True):
    """A change in progress, on backends with reactions (Slack): ⏳ on the command while it runs,
    then ✅ or ❌. Elsewhere nothing (the text console would print each reaction as a line, Errbot's
    test backend has none); a failing reaction never fails the command."""
    bot = getattr(plugin, "_bot", None)
    react = getattr(bot, "add_reaction", None) if shown and getattr(bot, "mode", "") != "text" else None
    if react is None:
        yield
        return
    _react(react, msg, WORKING)
    try:
        yield
    except BaseException:
        _swap(bot, msg, FAILED)
        raise
    _swap(bot, msg, DONE)


def _swap(bot, msg, reaction):
    _react(bot.remove_reaction, msg, WORKING)
    _react(bot.add_reaction, msg, reaction)


def _react(call, msg, reaction):
    try:
        call(msg, reaction)
    except Exception as e:  # a reaction is decoration: it never fails the command
        log.warning("could not set the reaction %s: %s", reaction, e)
