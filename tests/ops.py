"""One-call deploy, promote and rollback for tests of the core: plan, then apply, as the chat
plugins do (``ferrychat.replies``), with the plan and its check in one step."""
from __future__ import annotations

from typing import Optional

from gitops.core import GitOps
from gitops.model import Change, Requester, RolledBack


def deploy(core: GitOps, app: str, environment: str, version: str, requester: Requester,
           dry_run: bool = False, force: bool = False) -> Change:
    """Pin ``version`` of ``app`` in ``environment``."""
    return core.apply(core.plan_deploy(app, environment, version), requester, dry_run, force)


def promote(core: GitOps, app: str, to_environment: str, requester: Requester,
            from_environment: Optional[str] = None, version: Optional[str] = None,
            dry_run: bool = False, force: bool = False) -> Change:
    """Move the version of the previous environment in the chain into ``to_environment``."""
    plan = core.plan_promotion(app, to_environment, from_environment, version)
    return core.apply(plan, requester, dry_run, force)


def rollback(core: GitOps, app: str, environment: str, requester: Requester,
             to: Optional[str] = None, dry_run: bool = False) -> Change:
    """Go back to the previous distinct version in history, or to ``to`` if it ran before."""
    return core.apply(core.plan_rollback(app, environment, to), requester, dry_run)


def rolled_back(core: GitOps, app: str, environment: str) -> Optional[RolledBack]:
    """The version last rolled back from ``app`` in ``environment``: version, by, when."""
    pin = core.pin(app, environment)
    return core.guard.rolled_back(pin.release)
