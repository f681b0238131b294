"""Errbot's text console (``make demo``), showing a message's line breaks and paragraphs.

Errbot's ANSI renderer drops the newline that ends the text after an inline element (its
``tail.rstrip("\\n")``), drops hard breaks and joins paragraphs with a single newline: the approval
request printed "…(not demo).!approve eb18af", and ``!help deploy`` ran its paragraphs together.
This backend renders Markdown the way Slack shows Ferry's replies: line by line, with fenced code
and tables rendered whole and blank lines kept, then Errbot's renderer does each piece. Ferry's own
mentions (``gitops.identity.mention``, Slack markup only on Slack) are shown as plain text.
"""
from __future__ import annotations

import re
import sys
import threading
from typing import Callable

import errbot.backends.text as text_module

_FENCE = re.compile(r"^\s*```")


def blocks(body: str) -> list[str]:
    """``body`` cut into what renders alone: a fenced code block or a table whole, any other line
    on its own; a blank line stays an empty block (a paragraph break)."""
    out: list[str] = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines) - 1)
            out.append("\n".join(lines[i:end + 1]))
            i = end + 1
        elif line.lstrip().startswith("|"):
            end = i
            while end + 1 < len(lines) and lines[end + 1].lstrip().startswith("|"):
                end += 1
            out.append("\n".join(lines[i:end + 1]))
            i = end + 1
        else:
            out.append(line)
            i += 1
    return out


def plain(text: str) -> str:
    """``text`` with Ferry's mentions as plain text: ``gitops.identity.plain`` (a plugin module,
    found once the plugins loaded it; before that no text can hold a mention)."""
    identity = sys.modules.get("gitops.identity")
    return identity.plain(text) if identity is not None else text


def console_text(body: str, render: Callable[[str], str]) -> str:
    """``body`` (Markdown) for the console: each block rendered by ``render``, one per line."""
    return "\n".join(render(block) if block.strip() else "" for block in blocks(body))


class FerryText(text_module.TextBackend):  # the one backend class in this module
    # One reply at a time: Errbot's pool threads reply at once, and each Markdown converter of the
    # console keeps the text it converts on itself (two at once could swap or lose their text).
    _one_at_a_time = threading.Lock()

    def send_message(self, msg) -> None:
        with self._one_at_a_time:
            self._send(msg)

    def _send(self, msg) -> None:
        msg.body = plain(msg.body)
        if not self.demo_mode:  # the debug view prints every rendering of the raw Markdown
            super().send_message(msg)
            return
        print(console_text(msg.body, self.md_ansi.convert))
