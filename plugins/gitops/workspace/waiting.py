"""A change waiting for the workspace's writer, and its answer once settled (the writer lands it,
or says why not, from its own thread)."""
from __future__ import annotations

from typing import Callable, Optional

from ..model import Requester


class WaitingChange:
    """One change waiting for the writer, and its answer once settled."""

    __slots__ = ("edit", "author", "message", "done", "result", "error")

    def __init__(self, edit: Callable, author: Requester, message: str):
        self.edit, self.author, self.message = edit, author, message
        self.done, self.result, self.error = False, None, None

    def outcome(self) -> Optional[tuple[str, list[str]]]:
        if self.error is not None:
            raise self.error
        return self.result
