"""Answers that fit: whether a table goes in one chat message or in a file, as pure functions.

A long table in chat floods the channel and is cut anyway: Slack takes up to 40,000 characters of
message text (3,000 in one Block Kit section), Errbot's SlackV3 backend splits what is longer than
its ``MESSAGE_SIZE_LIMIT`` (4,096) into several posts, and Ferry bounds every answer at
``render.MAX_REPLY`` (8,000). So a table answer (``Table``) that is longer than one message of the
backend, or than ``MAX_LINES`` lines, is said in one line (its summary) and the whole table goes in
a file in the command's thread (Slack: a text snippet). A backend that cannot attach files (the
text console, Errbot's test backend) shows the summary and the table inline up to the bound.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ferrychat.render import MAX_REPLY, bounded

SLACK_TEXT = 40_000  # characters of one Slack message's text (chat.postMessage)
SLACK_SECTION = 3_000  # characters of the text of one Block Kit section block
MAX_LINES = 50  # lines of one answer: longer, a list is read (and searched) better as a file
MARGIN = 300  # characters kept for what the backend adds (Slack escapes &, <, > as entities)


@dataclass(frozen=True)
class Table:
    """An answer that may be too large for a message. ``head`` (its first line, as today's short
    answers start), ``body`` (every row) and ``notes`` make the message when it fits and the file
    when it does not; ``summary`` says in one line what it holds, and takes the head's place in a message
    that does not hold the whole; ``notes`` (registry or discovery problems) are said in
    that message too."""

    summary: str  # "1,000 apps across 4 environments, 37 behind the registry"
    head: str  # "1000 apps across dev, qa, stag, prod:"
    body: str
    filename: str  # "versions.txt"
    title: str  # the file's title in the chat
    notes: tuple = field(default=())
    short: str = ""  # the answer cut to one message, counting what it leaves out (where no file goes)

    @property
    def message(self) -> str:
        return "\n".join(part for part in (self.head, self.body, *self.notes) if part)


def budget(message_limit: int = 0, section: bool = False) -> int:
    """Characters one message may hold: Ferry's bound, the backend's own message size (Errbot's
    ``MESSAGE_SIZE_LIMIT``; 0 when unknown) and, for a Block Kit section, Slack's 3,000."""
    limits = [MAX_REPLY] + ([message_limit] if message_limit > 0 else []) \
        + ([SLACK_SECTION] if section else [])
    return max(1, min(limits) - MARGIN)


def fits(text: str, message_limit: int = 0, section: bool = False, max_lines: int = MAX_LINES) -> bool:
    """True when ``text`` goes out as one message: within the budget and ``max_lines`` lines."""
    return len(text) <= budget(message_limit, section) and text.count("\n") < max_lines


def file_text(answer: Table) -> str:
    """The file's content: the whole answer as plain text (code fences dropped: a snippet is
    shown in a fixed-width font)."""
    lines = [line for line in answer.message.split("\n") if line.strip() != "```"]
    return "\n".join(lines).strip("\n") + "\n"


def attached(answer: Table, message_limit: int = 0) -> str:
    """The message that goes with the file: the summary, then the notes, bounded."""
    return bounded("\n".join([f"{answer.summary}: full table attached.", *answer.notes]),
                   budget(message_limit))


def inline(answer: Table, message_limit: int = 0, prefix: str = "") -> str:
    """The answer where no file can be attached: its short form (rows while they fit, then a count
    of the rest), else the summary and the body; after ``prefix``, up to the bound."""
    text = answer.short or "\n".join([f"{answer.summary}:", *answer.notes, answer.body])
    return bounded(prefix + text, budget(message_limit))
