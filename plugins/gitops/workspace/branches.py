"""Changes on a branch of Ferry's own (a pull request's) instead of the workspace's branch: the
same commit path (fast-import, signed where commits are), pushed never forced, and deleted only
while it still holds Ferry's last commit."""
from __future__ import annotations

import logging
from typing import Callable, Optional

from ..errors import PushRejected
from ..model import Requester
from . import commit as commit_stream

log = logging.getLogger(__name__)


class BranchWrites:
    """What ``Workspace`` does on other branches of its remote (it holds the clone and the lock)."""

    def change_branch(self, edit: Callable, *, author: Requester, message: str, branch: str,
                      onto_existing: bool = False) -> tuple[Optional[str], str]:
        """Commit what ``edit`` makes of a tree onto ``branch`` and push it there, never forced.

        The tree is ``branch``'s tip when ``onto_existing`` and the remote has it (a pull request
        updated), else the workspace branch's newest tip (a new pull request's first commit).
        Someone who pushed to ``branch`` in between rejects the push: planned again on their
        commit. Returns (the commit pushed or None when ``edit`` has nothing to do, its parent)."""
        if not message.strip():
            raise ValueError("a commit needs a message")
        with self._lock:
            clone = self._clone
            clone.ensure()
            clone.fetch()
            for _ in range(self.push_attempts):
                base = (clone.branch_tip(branch) if onto_existing else None) or clone.head
                tree = self.tree(base)
                writes = commit_stream.planned_writes(tree, edit(tree))
                if not writes:
                    return None, base
                sha = self._commit(base, writes, author, message)
                if clone.push(sha, branch):
                    self.observe.pushed()
                    log.info("pushed %s to %s branch %s", sha[:12], self.public_url, branch)
                    return sha, base
                onto_existing = True  # the branch is there now, someone else's commit on it
                self.observe.retried("moved")
            raise PushRejected(f"The branch `{branch}` of {self.public_url} kept moving under Ferry's "
                               "commit. Try again.")

    def delete_branch(self, branch: str, expected: str) -> bool:
        """Remove ``branch`` from the remote if it still holds ``expected``; True when gone."""
        with self._lock:
            self._clone.ensure()
            return self._clone.delete_branch(branch, expected)

    def branch_tip(self, branch: str) -> Optional[str]:
        """The remote's ``branch`` now (fetched into the clone), or None."""
        with self._lock:
            self._clone.ensure()
            return self._clone.branch_tip(branch)

    def remote_moved(self) -> None:
        """The remote's branch moved outside Ferry (a pull request merged): the next read fetches."""
        self._clone.fetched_at = None
