"""What the workspace tells whoever watches it: each network git call, each push, each retry.

The workspace sits below the metrics (ops imports workspace, never the reverse), so it names the
hooks it calls and observes nothing itself; ``ops.metrics.RepoObserver`` fills them in.
"""
from typing import Callable


class GitObserver:
    """Observes nothing: every git call just runs."""

    def run(self, operation: str, run: Callable, *args):
        """``run(*args)``: one git network command (clone, fetch, push, …)."""
        return run(*args)

    def pushed(self) -> None:
        """A push the remote accepted."""

    def retried(self, reason: str) -> None:
        """A push retried on a new tip (``reason``: why the remote refused it)."""

    def landed(self, tip: str) -> None:
        """One push landed with ``tip`` as the branch's new tip (once per push, however many
        commits it carried); called after every change of it has its answer."""
