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
from datetime import datetime, timezone
from pathlib import Path
from typing import MutableMapping, Optional

from . import discovery, editing
from .errors import (shown, NoRegistry, NotEditable, NothingToRollback, PromotionRefused,
                     RegistryUnauthorized, RegistryUnavailable, RolledBackVersion, SharedPin,
                     UnknownApp)
from .model import (Change, ChartInfo, ChartLocation, Commit, HistoryEntry, Inventory, Pin, Plan,
                    Requester)
from .registry import RegistryClient
from .settings import EnvironmentSettings, RepoSettings, Settings
from .versions import between, check_version, parse, same_version
from .workspace import Workspace, commit_url, git_environment

log = logging.getLogger(__name__)


class GitOps:
    """One instance per process, shared by every capability plugin."""

    def __init__(self, settings: Settings, registry: Optional[RegistryClient] = None,
                 fetch_interval: float = 5.0, memory: Optional[MutableMapping] = None):
        self.settings = settings
        # What Git cannot hold (versions rolled back from an environment); Errbot's storage in the bot.
        self.memory = memory if memory is not None else {}
        self.registry = registry or RegistryClient(
            settings.secrets.registry_username, settings.secrets.registry_password,
            timeout=settings.registry_timeout)
        data = Path(settings.data_dir)
        git_env = git_environment(settings.secrets.git_token, settings.secrets.git_ssh_key_file)
        self._workspaces = {
            repo: Workspace(repo.url, repo.branch, data / "repos" / _slug(repo), git_env=git_env,
                            fetch_interval=fetch_interval, secrets=settings.secrets.values())
            for repo in settings.repos()
        }
        self._pins_by_commit: dict = {}
        self._cache_lock = threading.Lock()

    # ---- reading ---------------------------------------------------------------------------

    def inventory(self, refresh: bool = True) -> Inventory:
        """Every pin of every environment at the remote's newest commits."""
        pins, commits = [], []
        for repo, ws in self._workspaces.items():
            head = ws.head(refresh=refresh)
            commits.append(head[:12])
            pins.extend(self._pins(repo, head))
        order = {name: i for i, name in enumerate(self.settings.environment_names)}
        pins.sort(key=lambda p: (order[p.environment], p.app))
        return Inventory("+".join(commits), tuple(pins))

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

    def newest(self, pins) -> tuple[dict, list[str]]:
        """The newest released chart version per app, and a note per registry that failed.

        A registry that is down is asked once, not once per app."""
        newest, notes, failed = {}, [], set()
        for pin in pins:
            if pin.app in newest or pin.source is None:
                continue
            if pin.source.host in failed:
                newest[pin.app] = None
                continue
            try:
                newest[pin.app] = self.registry.versions(pin.source).newest
            except (RegistryUnavailable, RegistryUnauthorized) as e:
                failed.add(pin.source.host)
                newest[pin.app] = None
                notes.append(str(e))
        return newest, notes

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
            ws = self._workspace(pin.environment)
            tree = ws.tree(ws.head(refresh=False))
            texts.append(discovery.release_values_text(tree, pin))
        diff = "".join(difflib.unified_diff(
            texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
            f"{pa.environment}/values", f"{pb.environment}/values"))
        return pa, pb, diff

    # ---- changing --------------------------------------------------------------------------

    def plan_deploy(self, app: str, environment: str, version: str) -> Plan:
        version = check_version(version)
        return Plan("deploy", self.pin(app, environment), version)

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
        return Plan("promote", pin, version, source.name)

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

    def rolled_back(self, app: str, environment: str) -> Optional[dict]:
        """The version last rolled back from ``app`` in ``environment``: version, by, when."""
        key = _rolled_back_key(self.pin(app, environment))
        return self.memory[key] if key in self.memory else None

    def apply(self, plan: Plan, requester: Requester, dry_run: bool = False,
              force: bool = False) -> Change:
        """Check a plan against the registry and policy, then write it (or show its diff)."""
        self.check(plan, force)
        change = self._write(plan, requester, dry_run)
        if change.commit is not None:
            self._forget_rollback(plan.pin, change.new)
            if plan.action == "rollback" and change.old:
                self.memory[_rolled_back_key(plan.pin)] = {
                    "version": change.old, "by": requester.name or requester.id,
                    "when": datetime.now(timezone.utc).isoformat(timespec="minutes")}
        return change

    def check(self, plan: Plan, force: bool = False) -> None:
        """Refuse a plan that cannot or may not be written, before anything is said or written."""
        self._require_editable(plan.pin)
        if plan.action != "rollback":
            self._refuse_rolled_back(plan.pin, plan.new, force)
        self.registry.require(self.location(plan.pin), plan.new, plan.pin.chart)

    # ---- internals -------------------------------------------------------------------------

    def _source_pin(self, app: str, source: EnvironmentSettings, inventory: Inventory) -> Pin:
        try:
            return self.pin(app, source.name, inventory)
        except UnknownApp:
            raise PromotionRefused(
                f"`{app}` is not in {source.name}, so there is nothing to promote from there.") from None

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

    def _refuse_rolled_back(self, pin: Pin, version: str, force: bool) -> None:
        key = _rolled_back_key(pin)
        record = self.memory[key] if key in self.memory else None
        if not record or not same_version(record["version"], version):
            return
        if not force:
            raise RolledBackVersion(
                f"`{pin.app}` {version} was rolled back from {pin.environment} by {record['by']} "
                f"({record['when']}): add `--force` to bring it back on purpose.")

    def _forget_rollback(self, pin: Pin, version: str) -> None:
        key = _rolled_back_key(pin)
        if key in self.memory and same_version(self.memory[key]["version"], version):
            del self.memory[key]

    def _write(self, plan: Plan, requester: Requester, dry_run: bool) -> Change:
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

        seen: dict = {}

        def edit(tree, worktree: Path):
            # Runs on the newest tip, again after a rejected push: plan from what is there now.
            current = self._pins(self._repo(pin.environment), tree.commit, tree)
            now = next((p for p in current if p.app == pin.app and p.environment == pin.environment), None)
            if now is None:
                raise UnknownApp(pin.app, [], pin.environment)
            self._require_editable(now)
            seen["pin"] = now
            if Plan(action, now, version).noop:
                return None  # someone got there first
            path = worktree / now.location.file
            old_text = path.read_bytes().decode("utf-8")
            new_text = editing.set_version(old_text, now.location, version)
            path.write_bytes(new_text.encode("utf-8"))
            seen["diff"] = editing.unified_diff(now.location.file, old_text, new_text)
            return [now.location.file]

        message = _commit_message(action, pin, version, requester, source_environment)
        result = ws.change(edit, author=requester, message=message)
        now = seen.get("pin", pin)
        if result is None:
            return Change(old=now.version, new=version, diff="", noop=True, **base)
        sha, files = result
        return Change(old=now.version, new=version, replaced_range=now.is_range, diff=seen["diff"],
                      commit=Commit(sha, commit_url(self._repo(pin.environment).url, sha)), **base)

    def _require_editable(self, pin: Pin) -> None:
        if pin.location is None and pin.version is None:
            raise NotEditable(
                f"`{pin.app}` has no chart version pinned in {pin.environment} (Flux takes the newest): "
                f"add `version:` under `spec.chart.spec` in `{pin.release_file}` first.")
        if pin.location is None:
            raise NotEditable(
                f"`{pin.app}` in {pin.environment} is pinned to `{pin.version}` where Ferry cannot "
                f"change one line (an inline kustomize patch or a digest): edit it by hand.")
        if pin.shared:
            raise SharedPin(pin.location.file, pin.shared_with, f"`{pin.app}` in {pin.environment}")

    def _pins(self, repo: RepoSettings, commit: str, tree=None) -> tuple:
        key = (repo, commit)
        with self._cache_lock:
            cached = self._pins_by_commit.get(key)
        if cached is not None:
            return cached
        tree = tree or self._workspaces[repo].tree(commit)
        envs = [e for e in self.settings.environments if e.repo == repo]
        pins = discovery.discover(tree, self.settings, envs)
        with self._cache_lock:
            if len(self._pins_by_commit) > 16:
                self._pins_by_commit.clear()
            self._pins_by_commit[key] = pins
        return pins

    def _repo(self, environment: str) -> RepoSettings:
        return self.settings.environment(environment).repo

    def _workspace(self, environment: str) -> Workspace:
        return self._workspaces[self._repo(environment)]


def _shown_version(pin: Optional[Pin]) -> str:
    if pin is None:
        return "-"
    return pin.version or "(latest)"


def _rolled_back_key(pin: Pin) -> str:
    return f"rolled-back/{pin.environment}/{pin.app}"


def _slug(repo: RepoSettings) -> str:
    readable = re.sub(r"[^A-Za-z0-9]+", "-", f"{repo.url.rsplit('/', 1)[-1]}-{repo.branch}").strip("-")
    digest = hashlib.sha256(f"{repo.url}\n{repo.branch}".encode()).hexdigest()[:10]
    return f"{readable[:40]}-{digest}"


def _commit_message(action: str, pin: Pin, version: str, requester: Requester, source: str) -> str:
    old = pin.version or "unpinned"
    origin = f" from {source}" if source else ""
    who = f"{requester.name or requester.id} <{requester.id}>"
    trailers = [("Requested-by", who), ("Environment", pin.environment), ("App", pin.app),
                ("From-Version", old), ("To-Version", version)]
    subject = f"{action} {pin.app} {old} → {version}{origin} to {pin.environment}"
    return subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers) + "\n"
