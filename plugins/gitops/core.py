"""The GitOps core's one entry point: what runs where, and deploy, promote, rollback.

Plain values in, result objects or typed errors out. Git goes through ``Workspace``, the registry
through ``RegistryClient``; manifests are read by ``discovery`` and changed by ``editing``.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import re
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, MutableMapping, Optional

from . import carry, discovery, editing, policy
from .errors import (ApprovalRefused, FerryError, GitUnauthorized, GitUnavailable, NoRegistry,
                     NotAllowed, NotEditable, NothingToRollback, PromotionRefused, PushRejected,
                     RegistryUnauthorized, RegistryUnavailable, SharedPin, UnknownApp, shown)
from .model import (AuditEntry, Change, ChartInfo, ChartLocation, Commit, HistoryEntry, Inventory,
                    Lock, PendingChange, Pin, Plan, Requester, RolledBack)
from .registry import RegistryClient
from . import guard as held
from .guard import Guard
from .settings import EnvironmentSettings, RepoSettings, Settings
from .versions import between, check_version, parse, registry_tag, same_version
from .workspace import Workspace, git_environment

log = logging.getLogger(__name__)


class GitOps:
    """One instance per process, shared by every capability plugin."""

    def __init__(self, settings: Settings, registry: Optional[RegistryClient] = None,
                 fetch_interval: float = 5.0, memory: Optional[MutableMapping] = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.settings = settings
        self.clock = clock
        # What Git cannot hold (locks, approvals, rolled-back versions): Errbot's storage in the bot.
        self.memory = memory if memory is not None else {}
        self.guard = Guard(self.memory, clock)
        self.registry = registry or RegistryClient(settings.secrets.registries,
                                                   timeout=settings.registry_timeout)
        data = Path(settings.data_dir)
        git_env = git_environment(settings.secrets.git_token, settings.secrets.git_ssh_key_file)
        self._workspaces = {
            # A busy remote (CI bots pushing often) may move under a push a few times in a row.
            repo: Workspace(repo.url, repo.branch, data / "repos" / _slug(repo), git_env=git_env,
                            fetch_interval=fetch_interval, secrets=settings.secrets.values(),
                            push_attempts=5)
            for repo in settings.repos()
        }
        self._pins_by_commit: dict = {}  # (repo, commit) -> pins
        self._latest: dict = {}  # repo -> the newest commit whose pins are known
        self._problems: dict = {}  # repo -> what its last discovery could not follow
        self._cache_lock = threading.Lock()

    # ---- reading ---------------------------------------------------------------------------

    def inventory(self, refresh: bool = True) -> Inventory:
        """Every pin of every environment at the remote's newest commits."""
        pins, commits, problems = [], [], []
        for repo, ws in self._workspaces.items():
            head = ws.head(refresh=refresh)
            commits.append(head[:12])
            pins.extend(self._pins(repo, head))
            problems.extend(self._problems.get(repo, ()))
        order = {name: i for i, name in enumerate(self.settings.environment_names)}
        pins.sort(key=lambda p: (order[p.environment], p.app))
        return Inventory("+".join(commits), tuple(pins), tuple(problems))

    def pin(self, app: str, environment: str, inventory: Optional[Inventory] = None) -> Pin:
        """The pin of ``app`` in ``environment``; names are matched case-insensitively."""
        env = self.settings.environment(environment)
        inventory = inventory or self.inventory()
        name = self.app_name(app, inventory)
        found = inventory.find(name, env.name)
        if found is None:
            raise UnknownApp(app, [p.app for p in inventory.in_environment(env.name)], env.name)
        return found

    def app_name(self, app: str, inventory: Inventory) -> str:
        known = inventory.apps()
        by_lower = {a.lower(): a for a in known}
        if (app or "").lower() not in by_lower:
            raise UnknownApp(app, known)
        return by_lower[app.lower()]

    def location(self, pin: Pin) -> ChartLocation:
        if pin.source is None:
            where = f" (its source is {pin.source_url})" if pin.source_url else ""
            raise NoRegistry(
                f"No OCI registry is known for `{pin.app}`{where}: set `registry.url` or "
                f"`apps.{pin.app}.registry` in the settings.")
        return pin.source

    def history(self, app: str, environment: str, limit: int = 500) -> list[HistoryEntry]:
        """Every version ``app`` had in ``environment``, newest first, from Git."""
        pin = self.pin(app, environment)
        if pin.location is None:
            return []
        ws = self._workspace(pin.environment)
        entries: list[HistoryEntry] = []
        revisions = ws.file_history(pin.location.file, ws.head(refresh=False), limit=limit)
        for rev in reversed(revisions):  # oldest first: keep the commit where each version began
            version = editing.read_version(rev.text, pin.location) if rev.text is not None else None
            if version is None or (entries and entries[-1].version == version):
                continue
            entries.append(HistoryEntry(version, rev.sha, rev.author_name, rev.author_email, rev.when,
                                        rev.trailers.get("Requested-by", ""), rev.subject))
        return entries[::-1]

    def newest(self, pins) -> tuple[dict, list[str], tuple]:
        """The newest released chart version per app, a note per registry problem, and the apps
        whose registry refused Ferry (credentials, scope).

        A refusal is about one repository: the other charts on that host are still asked. Only a
        registry in an outage (unreachable, or a server error) is asked once, not once per app."""
        newest, notes, down, refused = {}, [], set(), {}
        for pin in pins:
            if pin.app in newest or pin.source is None:
                continue
            newest[pin.app] = None
            if pin.source.host in down:
                continue
            try:
                newest[pin.app] = self.registry.versions(pin.source).newest
            except RegistryUnauthorized as e:
                refused.setdefault(str(e), []).append(pin.app)
            except RegistryUnavailable as e:
                if e.outage:
                    down.add(pin.source.host)
                notes.append(str(e))
        for message, apps in refused.items():
            notes.append(f"No access to {', '.join(f'`{a}`' for a in apps)}: {message}")
        return newest, notes, tuple(a for apps in refused.values() for a in apps)

    def app_report(self, app: str, count: int = 5) -> tuple[list[Pin], list[ChartInfo], str]:
        """One app in every environment, the registry's newest versions with their dates, a note."""
        inventory = self.inventory()
        name = self.app_name(app, inventory)
        pins = [p for p in inventory.pins if p.app == name]
        try:
            location = self.location(pins[0])
            available = self.registry.versions(location)
            tags = list(available.releases[:count])
            newest_pre = available.prereleases[:1]
            if newest_pre and (not tags or parse(newest_pre[0]) > parse(tags[0])):
                tags.insert(0, newest_pre[0])  # a release candidate ahead of the releases is news
            return pins, [self.registry.chart_info(location, t) for t in tags], ""
        except (NoRegistry, RegistryUnavailable, RegistryUnauthorized) as e:
            return pins, [], str(e)

    def environment_diff(self, env_a: str, env_b: str) -> list[tuple[str, str, str]]:
        """Apps whose pinned versions differ between two environments: (app, in A, in B)."""
        a, b = self.settings.environment(env_a), self.settings.environment(env_b)
        inventory = self.inventory()
        rows = []
        for app in inventory.apps():
            pa, pb = inventory.find(app, a.name), inventory.find(app, b.name)
            va, vb = (_shown_version(p) for p in (pa, pb))
            if va != vb:
                rows.append((app, va, vb))
        return rows

    def values_diff(self, app: str, env_a: str, env_b: str) -> tuple[Pin, Pin, str]:
        """One app in two environments, and the unified diff of the Helm values each gives it."""
        inventory = self.inventory()
        pa, pb = (self.pin(app, e, inventory) for e in (env_a, env_b))
        texts = []
        for pin in (pa, pb):
            if pin.values_unknown:
                raise NotEditable(f"Ferry cannot show the Helm values Flux gives `{pin.app}` in "
                                  f"{pin.environment}: {pin.values_unknown}. Compare them by hand.")
            ws = self._workspace(pin.environment)
            tree = ws.tree(ws.head(refresh=False))
            texts.append(discovery.release_values_text(tree, pin))
        diff = "".join(difflib.unified_diff(
            texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
            f"{pa.environment}/values", f"{pb.environment}/values"))
        return pa, pb, diff

    # ---- changing --------------------------------------------------------------------------

    def plan_deploy(self, app: str, environment: str, version: str) -> Plan:
        pin = self.pin(app, environment)
        return Plan("deploy", pin, self._registry_spelling(pin, check_version(version)))

    def deploy(self, app: str, environment: str, version: str, requester: Requester,
               dry_run: bool = False, force: bool = False) -> Change:
        """Pin ``version`` of ``app`` in ``environment``."""
        return self.apply(self.plan_deploy(app, environment, version), requester, dry_run, force)

    def plan_promotion(self, app: str, to_environment: str, from_environment: Optional[str] = None,
                       version: Optional[str] = None) -> Plan:
        """The version of the environment before ``to_environment`` (or of ``from_environment``,
        or ``version``), refused when it would skip a stage."""
        target = self.settings.environment(to_environment)
        before = self.settings.previous(target)
        if before is None:
            raise PromotionRefused(
                f"`{target.name}` is the first environment: nothing comes before it. "
                f"Use `!deploy {shown(app)} <version> to {target.name}`.")
        source = self.settings.environment(from_environment) if from_environment else before
        if source == target:
            raise PromotionRefused(f"Cannot promote `{shown(app)}` from {target.name} to itself.")
        inventory = self.inventory()
        pin = self.pin(app, target.name, inventory)
        if version is None:
            version = self._exact_version(self._source_pin(pin.app, source, inventory))
        version = check_version(version)
        self._require_stage(pin.app, version, before, target, inventory)
        return Plan("promote", pin, self._registry_spelling(pin, version), source.name)

    def promote(self, app: str, to_environment: str, requester: Requester,
                from_environment: Optional[str] = None, version: Optional[str] = None,
                dry_run: bool = False, force: bool = False) -> Change:
        """Move the version of the previous environment in the chain into ``to_environment``."""
        plan = self.plan_promotion(app, to_environment, from_environment, version)
        return self.apply(plan, requester, dry_run, force)

    def plan_rollback(self, app: str, environment: str, to: Optional[str] = None) -> Plan:
        """The previous distinct version in history, or ``to`` if the environment ran it before."""
        pin = self.pin(app, environment)
        current = pin.version
        earlier = [h.version for h in self.history(pin.app, pin.environment) if h.version != current]
        if to is not None:
            to = check_version(to)
            match = next((v for v in earlier if same_version(to, v)), None)
            if match is None:
                ran = ", ".join(dict.fromkeys(earlier)) or "no other version"
                raise NothingToRollback(
                    f"`{pin.app}` never ran `{to}` in {pin.environment} before; it ran: {ran}.")
            return Plan("rollback", pin, match)
        if not earlier:
            raise NothingToRollback(
                f"`{pin.app}` has had only `{current}` in {pin.environment} as far as Git knows: "
                "nothing to roll back to.")
        return Plan("rollback", pin, earlier[0])

    def rollback(self, app: str, environment: str, requester: Requester,
                 to: Optional[str] = None, dry_run: bool = False) -> Change:
        """Go back to the previous distinct version in history, or to ``to`` if it ran before."""
        return self.apply(self.plan_rollback(app, environment, to), requester, dry_run)

    def rolled_back(self, app: str, environment: str) -> Optional[RolledBack]:
        """The version last rolled back from ``app`` in ``environment``: version, by, when."""
        pin = self.pin(app, environment)
        return self.guard.rolled_back(pin.environment, pin.app)

    def check(self, plan: Plan, requester: Requester, force: bool = False,
              admin: bool = False) -> policy.Decision:
        """Refuse a plan this requester may not make, or that cannot be written now, before
        anything is said or written. Returns the decision: what ``--force`` overrode."""
        decision = self._decide(plan, requester, force=force, admin=admin)
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

    # ---- approvals, locks, audit -----------------------------------------------------------

    def approve(self, change_id: str, approver: Requester) -> Change:
        """Apply a pending change, decided again now: the approver allowed from where they ask,
        no blocker but those the request overrode, in the registry, and the pin still at the value
        its diff was made from. The change is claimed once: a concurrent reject or a second
        approval is told it is already being applied."""
        waiting = self.guard.waiting(change_id)
        pin = self.pin(waiting.app, waiting.environment)
        plan = Plan(waiting.action, pin, waiting.new, waiting.source_environment)
        decision = self._decide(plan, approver, requested_by=waiting.requester.id,
                                overridden=waiting.forced)
        if pin.version != waiting.old:
            self._pin_moved(waiting, pin.version)
        try:
            self._check_state(plan, decision)
        except FerryError as e:
            raise ApprovalRefused(f"Change `{waiting.id}` cannot be applied now: {e}") from None
        self.guard.claim(waiting.id, held.APPLYING, approver.name or approver.id)
        try:
            change = self._write(plan, waiting.requester, False, forced=waiting.forced,
                                 approver=approver, expect=waiting.old)
        except PinMoved as moved:
            self.guard.settle(waiting.id, held.WAITING)
            self._pin_moved(waiting, moved.now)
        except BaseException:
            self.guard.settle(waiting.id, held.WAITING)  # nothing was pushed: it may be approved again
            raise
        self.guard.settle(waiting.id, held.APPLIED)
        return change

    def _pin_moved(self, waiting: PendingChange, now: Optional[str]):
        """The approved diff no longer applies: drop the request and say so."""
        moved = f"`{waiting.app}` in {waiting.environment} moved from {waiting.old} to {now}"
        self.guard.claim(waiting.id, held.DROPPED, f"{moved} since it was asked")
        raise ApprovalRefused(
            f"{moved} since change `{waiting.id}` was asked: nothing changed; ask for it again.")

    def reject(self, change_id: str, by: Requester) -> PendingChange:
        """Drop a pending change: its requester withdrawing it, or someone who may approve it,
        from the environment's channels; claimed once, like an approval."""
        waiting = self.guard.waiting(change_id)
        env = self.settings.environment(waiting.environment)
        policy.may_reject(env.policy, env.name, waiting.action, by.id, waiting.requester.id, by.channels,
                          by.bot)
        return self.guard.claim(waiting.id, held.REJECTED, by.name or by.id)

    def pending(self) -> list[PendingChange]:
        return self.guard.pending()

    def lock(self, environment: str, app: Optional[str], by: Requester, reason: str = "") -> Lock:
        """Lock an environment, or one app in it, against changes (admins may still force)."""
        env = self.settings.environment(environment)
        name = self.app_name(app, self.inventory()) if app else None
        return self.guard.lock(env.name, name, by, reason)

    def unlock(self, environment: str, app: Optional[str] = None) -> Lock:
        env = self.settings.environment(environment)
        name = self.app_name(app, self.inventory()) if app else None
        return self.guard.unlock(env.name, name)

    def locks(self) -> list[tuple[str, Lock]]:
        """Every lock (``env`` or ``env/app``) and every freeze in force now."""
        found = sorted(self.guard.locks().items())
        now = self.clock()
        for env in self.settings.environments:
            for window in env.policy.freezes:
                if window.contains(now):
                    until = window.ends_after(now).strftime("%a %Y-%m-%d %H:%M %Z")
                    found.append((env.name, Lock(by="freeze window", reason=window.text,
                                                 when=f"until {until}")))
        return found

    def audit(self, environment: Optional[str] = None, limit: int = 10) -> list[AuditEntry]:
        """The last changes Ferry made, from Git: who asked, who approved, who forced."""
        envs = [self.settings.environment(environment)] if environment else self.settings.environments
        entries = []
        for repo in dict.fromkeys(e.repo for e in envs):
            ws = self._workspaces[repo]
            grep = [f"--grep=^Environment: {e.name}$" for e in envs if e.repo == repo]
            for rev in ws.log(ws.head(), limit, *grep):
                t = rev.trailers
                entries.append(AuditEntry(rev.sha, rev.when, rev.subject, t.get("Environment", ""),
                                          t.get("Requested-by", f"{rev.author_name} <{rev.author_email}>"),
                                          t.get("Approved-by", ""), t.get("Forced-by", "")))
        return sorted(entries, key=lambda e: e.when, reverse=True)[:limit]

    # ---- internals -------------------------------------------------------------------------

    def _source_pin(self, app: str, source: EnvironmentSettings, inventory: Inventory) -> Pin:
        try:
            return self.pin(app, source.name, inventory)
        except UnknownApp:
            raise PromotionRefused(
                f"`{app}` is not in {source.name}, so there is nothing to promote from there.") from None

    def _registry_spelling(self, pin: Pin, version: str) -> str:
        """The version as the registry's tag spells it (`v1.15.0` for `1.15.0`), so that Ferry
        never writes a tag the registry lacks; as typed when the registry cannot say (the check
        before writing then answers)."""
        if pin.source is None:
            return version
        try:
            tag = self.registry.require(pin.source, version, pin.chart)
        except FerryError:
            return version
        return version if tag == registry_tag(version) else tag.replace("_", "+")

    def _exact_version(self, pin: Pin) -> str:
        if pin.version is None or pin.is_range:
            what = f"the range `{pin.version}`" if pin.version else "no version"
            raise PromotionRefused(
                f"`{pin.app}` in {pin.environment} pins {what}, not one version: "
                f"deploy an exact version there first, or use `!deploy`.")
        return pin.version

    def _require_stage(self, app: str, version: str, before: EnvironmentSettings,
                       target: EnvironmentSettings, inventory: Inventory) -> None:
        """Promotion does not skip stages: the version must already run just before the target."""
        prior = inventory.find(app, before.name)
        if prior is not None and prior.version and not prior.is_range and same_version(prior.version, version):
            return
        raise PromotionRefused(
            f"`{app}` {version} is not in {before.name}, the stage before {target.name}: "
            f"promote it to {before.name} first.")

    def _decide(self, plan: Plan, who: Requester, force: bool = False, admin: bool = False,
                requested_by: Optional[str] = None, overridden: Optional[tuple] = None) -> policy.Decision:
        """The one decision over ``plan`` now (``policy.decide``), asked by ``who`` or, with
        ``requested_by``, approved by them; who and where refuse at once."""
        env = self.settings.environment(plan.environment)
        found = policy.blockers(env.name, plan.app, plan.new, plan.action, self.guard.locks(),
                                self.guard.rolled_back(env.name, plan.app), env.policy, self.clock())
        decision = policy.decide(env.policy, env.name, plan.action, found, who=who.id,
                                 channels=who.channels, force=force, admin=admin,
                                 requested_by=requested_by, overridden=overridden, bot=who.bot)
        if isinstance(decision.refusal, NotAllowed):
            raise decision.refusal
        return decision

    def _check_state(self, plan: Plan, decision: policy.Decision) -> policy.Decision:
        """What the repository, the decision's blockers and the registry allow now."""
        self._require_editable(plan.pin)
        decision.require()
        self.registry.require(self.location(plan.pin), plan.new, plan.pin.chart)
        return decision

    def _propose(self, plan: Plan, requester: Requester, forced: tuple) -> Change:
        preview = self._write(plan, requester, dry_run=True)
        env = self.settings.environment(plan.environment)
        waiting = self.guard.propose(
            env.policy.approval_minutes, env.policy.max_waiting, action=plan.action, app=plan.app,
            environment=env.name, old=plan.old, new=plan.new, file=preview.file, diff=preview.diff,
            requester=requester, source_environment=plan.source_environment,
            approvers=env.policy.may_approve(plan.action), forced=forced)
        return replace(preview, dry_run=False, pending=waiting)

    def _write(self, plan: Plan, requester: Requester, dry_run: bool, forced: tuple = (),
               approver: Optional[Requester] = None, expect: Optional[str] = None) -> Change:
        """Edit one line on the newest tip and push; ``expect``: the value the pin must still have."""
        action, pin, version, source_environment = plan.action, plan.pin, plan.new, plan.source_environment
        location = self.location(pin)
        between_versions = ()
        if action == "promote" and pin.version and not pin.is_range:
            between_versions = tuple(between(pin.version, version, self.registry.versions(location)))
        base = dict(action=action, app=pin.app, environment=pin.environment, file=pin.location.file,
                    source_environment=source_environment, between=between_versions, dry_run=dry_run)
        if plan.noop:
            return Change(old=pin.version, new=version, diff="", noop=True, **base)

        ws = self._workspace(pin.environment)
        if dry_run:
            tree = ws.tree(ws.head(refresh=False))
            old_text = tree.read(pin.location.file)
            new_text = editing.set_version(old_text, pin.location, version)
            return Change(old=pin.version, new=version, replaced_range=pin.is_range,
                          diff=editing.unified_diff(pin.location.file, old_text, new_text), **base)

        seen: dict = {"described": pin}

        def edit(tree):
            # Runs on the newest tip, again after a rejected push: plan from what is there now.
            current = self._pins(self._repo(pin.environment), tree.commit, tree)
            now = next((p for p in current if p.app == pin.app and p.environment == pin.environment), None)
            if now is None:
                raise UnknownApp(pin.app, [], pin.environment)
            self._require_editable(now)
            seen["pin"], seen["base"] = now, tree.commit
            if expect is not None and now.version != expect:
                raise PinMoved(now.version)
            if Plan(action, now, version).noop:
                return None  # someone got there first
            described = seen["described"]
            if (now.version, now.is_range) != (described.version, described.is_range):
                raise _Replan(now)  # the message in hand would describe another diff
            old_text = tree.read(now.location.file)
            new_text = editing.set_version(old_text, now.location, version)
            seen["diff"] = editing.unified_diff(now.location.file, old_text, new_text)
            return {now.location.file: new_text}

        try:
            for _ in range(5):  # as many as the workspace's push attempts: each replan is a new tip
                message = _commit_message(replace(plan, pin=seen["described"]), requester, approver, forced)
                try:
                    result = ws.change(edit, author=requester, message=message)
                    break
                except _Replan as moved:
                    seen["described"] = moved.pin
            else:
                raise PushRejected("the version kept moving under Ferry's change; try again.")
        except (PushRejected, GitUnavailable, GitUnauthorized) as e:
            # Many commands may be waiting on one remote: say which change this answer is about.
            raise type(e)(f"{action.capitalize()} {pin.app} {version} to {pin.environment} not "
                          f"pushed: {e}") from None
        now = seen.get("pin", pin)
        if result is None:
            return Change(old=now.version, new=version, diff="", noop=True, **base)
        sha, files = result
        self._derive_pins(self._repo(pin.environment), seen["base"], sha, now, version)
        self.guard.forget_rollback(pin.environment, pin.app, version)
        if action == "rollback" and now.version:
            self.guard.remember_rollback(pin.environment, pin.app, now.version, requester)
        return Change(old=now.version, new=version, replaced_range=now.is_range, diff=seen["diff"],
                      commit=Commit(sha, ws.public_url), **base)

    def _require_editable(self, pin: Pin) -> None:
        if pin.location is None and pin.version is None:
            raise NotEditable(
                f"`{pin.app}` has no chart version pinned in {pin.environment} (Flux takes the newest): "
                f"add `version:` under `spec.chart.spec` in `{pin.release_file}` first.")
        if pin.unknown:
            raise NotEditable(
                f"Ferry cannot know the version of `{pin.app}` in {pin.environment}: it comes from "
                f"{pin.refusal}. Change it by hand.")
        if pin.location is None or pin.refusal:
            why = pin.refusal or "a place Ferry cannot change one line of"
            raise NotEditable(
                f"`{pin.app}` in {pin.environment} gets `{pin.version}` from {why}: Ferry cannot "
                f"change that with one line. Edit it by hand (the release is in `{pin.release_file}`).")
        if pin.shared:
            raise SharedPin(pin.location.file, pin.shared_with, f"`{pin.app}` in {pin.environment}",
                            pin.shared_by)

    def _pins(self, repo: RepoSettings, commit: str, tree=None) -> tuple:
        key = (repo, commit)
        with self._cache_lock:
            cached = self._pins_by_commit.get(key)
        if cached is not None:
            return cached
        ws = self._workspaces[repo]
        tree = tree or ws.tree(commit)
        with self._cache_lock:
            last = self._latest.get(repo)
            known = self._pins_by_commit.get((repo, last))
        pins = None
        if known is not None:
            pins = carry.carry_forward(known, carry.changed_files(ws.tree(last), tree))
        if pins is None:
            envs = [e for e in self.settings.environments if e.repo == repo]
            problems: list = []
            pins = discovery.discover(tree, self.settings, envs, warnings=problems)
            with self._cache_lock:
                # What discovery could not follow changes only when discovery runs again.
                self._problems[repo] = tuple(problems)
        self._remember_pins(repo, commit, pins)
        return pins

    def _remember_pins(self, repo: RepoSettings, commit: str, pins: tuple) -> None:
        with self._cache_lock:
            if len(self._pins_by_commit) > 16:
                self._pins_by_commit.clear()
            self._pins_by_commit[(repo, commit)] = pins
            self._latest[repo] = commit

    def _derive_pins(self, repo: RepoSettings, base: str, sha: str, changed: Pin, version: str) -> None:
        """Ferry's own commit changed one scalar on ``base``: the pins at ``sha`` are those of
        ``base`` with that one version replaced, so the next command need not re-discover."""
        with self._cache_lock:
            before = self._pins_by_commit.get((repo, base))
        if before is not None:
            self._remember_pins(repo, sha, tuple(
                replace(p, version=version, is_range=False) if p.location == changed.location else p
                for p in before))

    def _repo(self, environment: str) -> RepoSettings:
        return self.settings.environment(environment).repo

    def _workspace(self, environment: str) -> Workspace:
        return self._workspaces[self._repo(environment)]


class _Replan(Exception):
    """The pin on the new tip is not the one the commit message describes: build it again."""

    def __init__(self, pin: Pin):
        super().__init__(pin.version)
        self.pin = pin


class PinMoved(Exception):
    """The pin no longer holds the value a change was planned from (internal to approvals)."""

    def __init__(self, now: Optional[str]):
        super().__init__(now)
        self.now = now


def _shown_version(pin: Optional[Pin]) -> str:
    if pin is None:
        return "-"
    return pin.version or "(latest)"


def _slug(repo: RepoSettings) -> str:
    readable = re.sub(r"[^A-Za-z0-9]+", "-", f"{repo.url.rsplit('/', 1)[-1]}-{repo.branch}").strip("-")
    digest = hashlib.sha256(f"{repo.url}\n{repo.branch}".encode()).hexdigest()[:10]
    return f"{readable[:40]}-{digest}"


def _commit_message(plan: Plan, requester: Requester, approver: Optional[Requester],
                    forced: tuple) -> str:
    """The subject and trailers of the diff ``plan`` makes (its pin as it is on the tip written);
    ``forced``: the blockers --force overrode."""
    old = plan.old or "unpinned"
    origin = f" from {plan.source_environment}" if plan.source_environment else ""
    trailers = [("Requested-by", requester.signature), ("Environment", plan.environment),
                ("App", plan.app), ("From-Version", old), ("To-Version", plan.new)]
    if requester.bot:  # a bot the environment's policy names asked: say so
        trailers.insert(1, ("Bot", requester.signature))
    if approver is not None:
        trailers.append(("Approved-by", approver.signature))
        if approver.bot:
            trailers.append(("Bot", approver.signature))
    trailers += [("Forced-by", f"{requester.signature} past: {blocker.reason}") for blocker in forced]
    if requester.link:
        trailers.append(("Chat-Thread", requester.link))
    subject = f"{plan.action} {plan.app} {old} → {plan.new}{origin} to {plan.environment}"
    body = "\n".join(f"{k}: {' '.join(str(v).split())}" for k, v in trailers)
    return f"{subject}\n\n{body}\n"
