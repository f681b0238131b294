"""Errbot's test backend, made safe for replies sent at once (the tests' and the benchmark's bot).

Errbot's ``TestBackend.send_message`` converts every reply with one Python-Markdown instance
(``backend.md``) on whichever of Errbot's pool threads is replying, and that instance keeps the
text it converts on itself: two replies converted at once could each come out with the other's
text, or empty, or raise. Under load one command's answer then carried another's text (counted
twice) and its own was never said: the stress test's extra message, the benchmark's command with
no answer. The real backends convert one reply at a time (``backends/ferryslack``, ``ferrytext``).
"""
from __future__ import annotations

import threading


class OneAtATime:
    """A Markdown converter used by one thread at a time."""

    def __init__(self, markdown):
        self.markdown = markdown
        self._lock = threading.Lock()

    def convert(self, text: str) -> str:
        with self._lock:
            return self.markdown.convert(text)


def one_reply_at_a_time(testbot) -> None:
    """Convert the replies of a started ``errbot.backends.test.TestBot`` one at a time."""
    backend = testbot.bot
    if not isinstance(backend.md, OneAtATime):
        backend.md = OneAtATime(backend.md)
