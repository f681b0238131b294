"""The GitOps core's one entry point: what runs where, and deploy, promote, rollback.

Plain values in, result objects or typed errors out. Git goes through ``Workspace``, the registry
through ``RegistryClient``. The rooms behind this façade: ``pins`` (what every environment pins,
cached per commit), ``planning`` (the deploy, promote and rollback rules), ``writing`` (one change
committed and pushed), ``guard`` and ``policy`` (locks, approvals, who may), ``decisions`` (the
façade's approvals, rejections and locks), ``reports`` (the read-only answers: history, newest
versions, diffs, audit).
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from .changes import editing, planning, writing
from .changes.landing import Landing
from .changes.trailers import FORCED_BY, ROLLBACK_OF, VERIFICATION
from .changes.pins import PinCache, find
from .decisions import Decisions
from .errors import NoRegistry, NotAllowed, NothingToRollback, UnknownApp
from .feedback.receiver import Receivers
from .feedback.verify import VerificationBook
from .flux import images
from .forges.github import GitHub
from .forges.gitlab import GitLab
from .guard import policy
from .guard.approvals import Guard
from .guard.soak import soak_blocker
from .identity import Release, plain
from .inventory import Inventory
from .model import Change, ChartLocation, Commit, Pin, Plan, Requester
from .ops.metrics import Metrics, repository_label
from .previews import Previews, preview_state
from .queueing import Queueing
from .reports import Reports
from .settings import RepoSettings, Settings
from .sources.registry import RegistryClient
from .sources.transport import trusted
from .state.store import Records, Store
from .versions import between
from .workspace import Workspace, git_environment

log = logging.getLogger(__name__)

STATE_FILE = "ferry-state.sqlite3"  # in the data directory


class GitOps(Reports, Decisions, Previews, Queueing):
    """One instance per process, shared by every capability plugin."""

    def __init__(self, settings: Settings, registry: Optional[RegistryClient] = None,
                 fetch_interval: float = 5.0, state: Optional[Store] = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 preview: Optional[Callable[[Plan], str]] = None):
        self.settings = settings
        self.preview = preview or (lambda plan: "")  # the upgrade preview's Markdown for a pull request
        self.clock = clock
        # What Git cannot hold (locks, approvals, rolled-back versions, Flux's feedback): one
        # SQLite file; the bot's is in FERRY_DATA_DIR, a core on its own keeps it in data_dir.
        self.state = state if state is not None else Store(Path(settings.data_dir) / STATE_FILE)
        self.memory = Records(self.state)  # Feedback's records: live states, Flux waits, replays
        self.guard = Guard(self.state, clock)
        self.verifications = VerificationBook(self.state)  # the last verification of each release
        interrupted = self.guard.recover()
        if interrupted:
            log.warning("changes being applied when the bot stopped, dropped (never applied twice): %s",
                        ", ".join(interrupted))
        self.metrics = Metrics(settings, pending=self.pending)  # this core's own, for /metrics
        index = settings.helm_index
        self.registry = registry or RegistryClient(
            settings.secrets.registries, timeout=settings.registry_timeout,
            index_seconds=index.timeout, index_max_bytes=int(index.max_mb * 1024 * 1024),
            index_cache_seconds=index.cache_seconds, busy_seconds=settings.registry_busy_seconds,
            verify=trusted(settings.registry_ca_file, settings.data_dir))
        self.registry.observe = self.metrics
        self.archives = self.preview_archives()  # chart archives on disk by digest (`!preview`)
        self._preview_lock, self._previews = preview_state()
        data = Path(settings.data_dir)
        self.receivers = Receivers(settings, self.metrics.receiver_called)  # Flux told of each push
        self._workspaces = {
            # A busy remote (CI bots pushing often) may move under a push a few times in a row.
            repo: Workspace(repo.url, repo.branch, data / "repos" / _slug(repo), git_env=_git_env(settings, repo),
                            fetch_interval=fetch_interval, secrets=settings.secrets.values(),
                            push_attempts=5, batch=settings.write.per_push, signing=settings.commit.sign,
                            observe=self.metrics.repo(repo.url, repo.branch, self.receivers.landing(
                                repo, repository_label(repo.url, settings.secrets.values()))))
            for repo in settings.repos()
        }
        self._pins = PinCache(settings, self._workspaces)
        forges = {repo: _forge(repo.forge) for repo in settings.repos() if repo.forge is not None}
        self.landing = Landing(settings, self.state, forges, self._workspace, self.guard)

    @property
    def workspaces(self) -> dict:
        """Each configured repository's workspace (readiness waits for their clones)."""
        return dict(self._workspaces)

    # ---- reading ---------------------------------------------------------------------------

    def inventory(self, refresh: bool = True) -> Inventory:
        """Every pin of every environment at the remote's newest commits."""
        return self._pins.inventory(refresh)

    def pin(self, app: str, environment: str, inventory: Optional[Inventory] = None,
            part: Optional[str] = None) -> Pin:
        """The pin of ``app`` in ``environment`` (the one it is tracked by, or ``part``); names
        are matched case-insensitively."""
        env = self.settings.environment(environment)
        return find(inventory or self.inventory(), app, env.name, part)

    def location(self, pin: Pin) -> ChartLocation:
        if pin.source is None and pin.is_image:
            raise NoRegistry(
                f"Ferry cannot tell which registry holds the image of `{pin.label}` in {pin.environment}: "
                f"write its repository next to the tag (`image.repository`) in `{pin.release_file}`.")
        if pin.source is None:
            where = f" (its source is {pin.source_url})" if pin.source_url else ""
            raise NoRegistry(
                f"No chart registry is known for `{pin.app}`{where}: set `registry.url` or "
                f"`apps.{pin.app}.registry` in the settings.")
        return pin.source

    # ---- changing --------------------------------------------------------------------------

    def plan_deploy(self, app: str, environment: str, version: str, part: Optional[str] = None) -> Plan:
        """``part``: "chart", "image" or "image:<container>"; None: what the app is tracked by."""
        return planning.deploy_plan(self.pin(app, environment, part=part), version, self.registry)

    def plan_promotion(self, app: str, to_environment: str, from_environment: Optional[str] = None,
                       version: Optional[str] = None, part: Optional[str] = None) -> Plan:
        """The version of the environment before ``to_environment`` (or of ``from_environment``,
        or ``version``), refused when it would skip a stage."""
        return planning.promotion_plan(self.settings, app, to_environment, from_environment, version,
                                       self.inventory, self.registry, part)

    def plan_rollback(self, app: str, environment: str, to: Optional[str] = None,
                      part: Optional[str] = None) -> Plan:
        """The previous distinct version in history, or ``to`` if the environment ran it before."""
        inventory = self.inventory()
        pin = self.pin(app, environment, inventory, part=part)
        history = self.history(pin.app, pin.environment, part=pin.part)
        plan = planning.rollback_plan(pin, history, to)
        if part is None and to is None and history:
            plan = replace(plan, also=self._moved_with(pin, inventory, history[0].commit))
        return plan

    def check(self, plan: Plan, requester: Requester, force: bool = False,
              admin: bool = False, queue: bool = False) -> policy.Decision:
        """Refuse a plan this requester may not make, or that cannot be written now, before
        anything is said or written. Returns the decision: what ``--force`` overrode; with
        ``queue``, a closed promotion window is the decision's ``held``, not a refusal."""
        decision = self._decide(plan, requester, force=force, admin=admin, queue=queue)
        return self._check_state(plan, decision)

    def needs_approval(self, plan: Plan) -> bool:
        """A change there waits for a second person (dry runs and no-ops never do)."""
        return self.settings.environment(plan.environment).policy.approval and not plan.noop

    def apply(self, plan: Plan, requester: Requester, dry_run: bool = False, force: bool = False,
              admin: bool = False) -> Change:
        """Check a plan, then write it, show its diff (dry run), or hold it for approval."""
        decision = self.check(plan, requester, force, admin)
        if self.needs_approval(plan) and not dry_run:
            return self._propose(plan, requester, decision.forced)
        return self._write(plan, requester, dry_run, forced=decision.forced)

    # ---- internals -------------------------------------------------------------------------

    def _decide(self, plan, who: Requester, force: bool = False, admin: bool = False,
                requested_by: Optional[Requester] = None, overridden: Optional[tuple] = None,
                queue: bool = False) -> policy.Decision:
        """The one decision over ``plan`` (a ``Plan``, or the ``PendingChange`` held from one:
        what, where, to which version) now (``policy.decide``), asked by ``who`` or, with
        ``requested_by``, approved by them; who and where refuse at once."""
        env = self.settings.environment(plan.environment)
        found = self._blockers(plan) + self._soaking(plan)
        held = next((b for b in found if b.kind == policy.WINDOW), None) if queue else None
        found = tuple(b for b in found if b is not held)

        def decided(found):
            return policy.decide(env.policy, env.name, plan.action, found, who=who.id,
                                 channels=who.channels, force=force, admin=admin,
                                 requested_by=requested_by, overridden=overridden, bot=who.bot)
        decision = decided(found)
        if isinstance(decision.refusal, NotAllowed):
            raise decision.refusal
        if isinstance(plan, Plan):  # asked now (an approval keeps what its request was decided on)
            previewed = self.preview_blockers(plan)  # only for one who may ask: it downloads
            if previewed:
                decision = decided(found + previewed)
        return replace(decision, held=held)

    def _blockers(self, plan) -> tuple:
        """The locks, freezes and rolled-back versions in ``plan``'s way now."""
        env = self.settings.environment(plan.environment)
        release = plan.pin.release if isinstance(plan, Plan) else (
            plan.release or Release(env.name, None, plan.app, plan.part))  # a change held before identities
        locks = {(f"{env.name}/{plan.app}" if lock.release.name else env.name): lock
                 for lock in self.guard.locks_on(release)}
        return policy.blockers(env.name, plan.app, plan.new, plan.action, locks,
                               self.guard.rolled_back(release), env.policy, self.clock())

    def _soaking(self, plan) -> tuple:
        """A promotion of a version not yet verified long enough in the environment it leaves."""
        if plan.action != "promote" or not plan.source_environment:
            return ()
        source = self.settings.environment(plan.source_environment)
        if source.verify is None:
            return ()
        try:  # the release of that name there: a verification is its own
            release = self.pin(plan.app, source.name, part=plan.part).release
        except UnknownApp:
            return ()  # nothing of that name there: the promotion says so itself
        verified_at = self.verifications.verified_at(release, plan.new)
        found = soak_blocker(plan.app, plan.new, source.name, source.verify.promote_after, verified_at,
                             self.clock().timestamp())
        return (found,) if found is not None else ()

    def roll_back_failed(self, release: Release, version: str, old: str, requester: Requester,
                         commit: str, reason: str) -> Change:
        """Revert a change of ``release`` whose verification failed (``commit`` pushed ``version``)
        to ``old``, as ``!rollback`` would, on behalf of its ``requester``: every other part of the
        app that ``commit`` moved goes back with it, in one commit; past locks, freezes and
        approvals (a broken release held by a freeze is worse), said in the commit's trailers.
        Refused (``NothingToRollback``) when the release is gone, or any part no longer holds what
        ``commit`` wrote: someone changed it since."""
        inventory = self.inventory()
        pin = inventory.released(release)
        if pin is None:
            raise NothingToRollback(f"{release.key} is no longer in the repository, so Ferry left it.")
        plan = self.plan_rollback(pin.app, pin.environment, to=old, part=pin.part)
        moved = self._moved_by(plan.pin, inventory, commit)
        for other, _, then in moved:  # half a change back is a state nobody asked for
            if other.version != then:
                raise NothingToRollback(
                    f"`{other.label}` in {pin.environment} now pins {other.version or 'nothing'}, not the "
                    f"{then} the failed change wrote with {version}: someone changed it since, so Ferry "
                    "left the whole change.")
        plan = replace(plan, also=tuple((other, prior) for other, prior, _ in moved))
        passed = [(FORCED_BY, f"Ferry past: {plain(b.reason)}") for b in self._blockers(plan)]
        said = [(ROLLBACK_OF, commit), (VERIFICATION, f"failed: {plain(reason)[:300]}")]
        expect = {plan.pin.part: version, **{p.part: p.version for p, _ in plan.also}}
        try:
            return self._write(plan, requester, dry_run=False, expect=expect, trailers=tuple(said + passed))
        except writing.PinMoved as moved:
            label = pin.label if moved.part == pin.part else f"{pin.app} {moved.part}"
            raise NothingToRollback(f"`{label}` in {pin.environment} now pins {moved.now or 'nothing'}, not "
                                    f"{expect[moved.part]}: someone changed it since, so Ferry left it.") from None

    def _check_state(self, plan: Plan, decision: policy.Decision) -> policy.Decision:
        """What the repository, the decision's blockers and the registry allow now."""
        for pin, _ in plan.edits:
            planning.require_editable(pin)
        decision.require()
        for pin, new in plan.edits:  # every part in its registry before anything is written
            if pin.is_image:
                self.registry.require_image(self.location(pin), new)
            else:
                self.registry.require(self.location(pin), new, pin.chart)
        return decision

    def _propose(self, plan: Plan, requester: Requester, forced: tuple) -> Change:
        preview = self._write(plan, requester, dry_run=True)
        env = self.settings.environment(plan.environment)
        waiting = self.guard.propose(
            env.policy.approval_minutes, env.policy.max_waiting, action=plan.action, app=plan.app,
            environment=env.name, old=plan.old, new=plan.new, file=preview.file, diff=preview.diff,
            requester=requester, source_environment=plan.source_environment,
            approvers=env.policy.may_approve(plan.action), forced=forced, part=plan.part,
            also=tuple((p.part, p.version, new) for p, new in plan.also),
            namespace=plan.pin.release.namespace, release_name=plan.pin.release.name)
        return replace(preview, dry_run=False, pending=waiting)

    def _write(self, plan: Plan, requester: Requester, dry_run: bool, forced: tuple = (),
               approver: Optional[Requester] = None, expect: Optional[dict] = None,
               trailers: tuple = ()) -> Change:
        """Edit one line on the newest tip and push; ``expect``: part -> the value its pin must
        still have."""
        action, pin, version, source_environment = plan.action, plan.pin, plan.new, plan.source_environment
        location = self.location(pin)
        between_versions = ()
        if action == "promote" and pin.version and not pin.is_range:
            between_versions = tuple(between(pin.version, version, self.registry.versions(location)))
        moves = tuple((p.part, p.version, new) for p, new in plan.edits) if plan.also else ()
        base = dict(action=action, app=pin.app, environment=pin.environment, file=pin.location.file,
                    source_environment=source_environment, between=between_versions, dry_run=dry_run,
                    part=pin.part, moves=moves)
        if plan.noop:
            return Change(old=pin.version, new=version, diff="", noop=True, **base)

        ws = self._workspace(pin.environment)
        if dry_run:
            _, diff = writing.edited_files(ws.tree(ws.head(refresh=False)), writing.changing(plan.edits))
            return Change(old=pin.version, new=version, replaced_range=pin.is_range, diff=diff, **base)

        if self.settings.environment(pin.environment).write == "pull-request":
            return self.landing.propose(ws, plan, requester, self._pins_at(pin.environment), base, forced=forced,
                                        approver=approver, expect=expect, preview=self.preview(plan))
        written = writing.push(ws, plan, requester, self._pins_at(pin.environment), forced=forced,
                               approver=approver, expect=expect, trailers=trailers)
        now = written.pin
        if written.sha is None:
            return Change(old=now.version, new=version, diff="", noop=True, **base)
        self._pins.derive(self._repo(pin.environment), written.base, written.sha)
        # Per part: rolling the image back keeps the chart's guard, and the other way round.
        for part, new in plan.edits:
            self.guard.forget_rollback(part.release, new)
            old = now.version if part is pin else part.version
            if action == "rollback" and old:
                self.guard.remember_rollback(part.release, old, requester)
        return Change(old=now.version, new=version, replaced_range=now.is_range, diff=written.diff,
                      commit=Commit(written.sha, ws.public_url), requester=requester,
                      release=pin.release, **base)

    def _moved_with(self, pin: Pin, inventory: Inventory, commit: str) -> tuple:
        """The app's other parts that ``commit`` (where ``pin``'s version began) moved too and that
        still hold what it wrote: a rollback of the app restores them with it, as one whole."""
        return tuple((other, prior) for other, prior, then in self._moved_by(pin, inventory, commit)
                     if other.version == then)

    def _moved_by(self, pin: Pin, inventory: Inventory, commit: str) -> tuple:
        """The app's other parts that ``commit`` moved too: ((pin now, before it, what it wrote), ...)."""
        ws = self._workspace(pin.environment)
        at, before = ws.tree(commit), ws.tree(f"{commit}^")

        def value(tree, other):
            try:
                text = tree.read(other.location.file)
            except (KeyError, OSError, ValueError):
                return None
            return images.read_tag(other, editing.read_version(text, other.location))

        moved = []
        for other in inventory.parts(pin.app, pin.environment):
            if other.part == pin.part or other.location is None or other.shared or other.refusal:
                continue
            then, prior = value(at, other), value(before, other)
            if prior and then != prior:
                moved.append((other, prior, then))
        return tuple(moved)

    def _pins_at(self, environment: str) -> Callable:
        repo = self._repo(environment)
        return lambda tree: self._pins.at(repo, tree.commit, tree)

    def _repo(self, environment: str) -> RepoSettings:
        return self.settings.environment(environment).repo

    def _workspace(self, environment: str) -> Workspace:
        return self._workspaces[self._repo(environment)]


def _forge(forge):
    """The client of a repository's forge (``settings.forge``)."""
    if forge.kind == "gitlab":
        return GitLab(forge.api_url, forge.repository, forge.token, webhook_secret=forge.webhook_secret,
                      auth=forge.auth, timeout=forge.timeout, token_variable=forge.token_variable)
    return GitHub(forge)


def _git_env(settings: Settings, repo: RepoSettings) -> dict:
    """git's environment for one repository: the token of its own host only (`repo.url`'s for
    `repo.url`'s host, `git_credentials` for others, none elsewhere), the SSH key and host keys."""
    token = settings.secrets.git(repo.url)
    return git_environment(token.token if token else "", settings.secrets.git_ssh_key_file,
                           username=token.username if token else "",
                           known_hosts=settings.ssh.known_hosts,
                           accept_new_host_keys=settings.ssh.accept_new_host_keys)


def _slug(repo: RepoSettings) -> str:
    readable = re.sub(r"[^A-Za-z0-9]+", "-", f"{repo.url.rsplit('/', 1)[-1]}-{repo.branch}").strip("-")
    digest = hashlib.sha256(f"{repo.url}\n{repo.branch}".encode()).hexdigest()[:10]
    return f"{readable[:40]}-{digest}"

