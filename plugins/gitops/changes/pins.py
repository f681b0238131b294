"""What every environment pins, per commit: discovered once, then carried forward or derived.

Discovery reads the whole repository; most commits change a few files, and Ferry's own commits
change one scalar. The cache keeps what discovery found (pins, what it could not follow, what it
read, per environment) at the newest commits known per repository, and the next commit, anyone's
or Ferry's own, is carried from it where ``carry`` proves the result equal to discovering again,
or its files of HelmReleases read again on their own (``carry.reread``); else only the
environments the commit touched are built again (``carry.rediscover``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping, Optional

from . import carry
from ..flux import images
from ..flux.manifests import DEFAULT_CACHE
from ..flux.parsestore import FILE_NAME, ParseStore
from ..errors import UnknownApp, UsageError
from ..inventory import Inventory
from ..model import CHART, Pin, pin_order
from ..settings import RepoSettings, Settings
from ..workspace import Workspace


# What discovery found at this many recent commits is kept: enough for a batch of changes pushed
# together, each commit carried from the one before it.
KEPT_COMMITS = 16


class PinCache:
    """What discovery finds at each repository's recent commits; safe to share between threads."""

    def __init__(self, settings: Settings, workspaces: Mapping[RepoSettings, Workspace]):
        self.settings = settings
        self._workspaces = workspaces
        self._by_commit: dict = {}  # (repo, commit) -> carry.Known
        self._latest: dict = {}  # repo -> the newest commit whose pins are known
        self._inventory: Optional[tuple] = None  # (the heads it was made at, Inventory)
        self._lock = threading.Lock()
        # The process's parsed documents, and behind them the parse cache in the data directory:
        # the first discovery after a restart reads and parses only blobs it has never seen.
        self.documents = DEFAULT_CACHE.backed_by(ParseStore(Path(settings.data_dir) / FILE_NAME))

    def inventory(self, refresh: bool = True) -> Inventory:
        """Every pin of every environment at the remote's newest commits."""
        heads = tuple((repo, ws.head(refresh=refresh)) for repo, ws in self._workspaces.items())
        with self._lock:
            last = self._inventory
        if last is not None and last[0] == heads:
            return last[1]  # the same commits: the same inventory, already sorted
        knowns = tuple(self._known(repo, head) for repo, head in heads)
        commit = "+".join(head[:12] for _, head in heads)
        inventory = self._carried(last, heads, knowns, commit) if last is not None else None
        if inventory is None:
            inventory = build_inventory(commit, knowns, self.settings)
        with self._lock:
            self._inventory = (heads, inventory)
        return inventory

    def at(self, repo: RepoSettings, commit: str, tree=None) -> tuple:
        """The pins of ``repo`` at ``commit`` (``tree``: that commit's tree, when in hand)."""
        return self._known(repo, commit, tree).pins

    def derive(self, repo: RepoSettings, base: str, sha: str) -> None:
        """Ferry's own commit ``sha`` on ``base``: carried from ``base`` under the same proof as
        anyone's commit, so the next command need not discover again."""
        with self._lock:
            before = self._by_commit.get((repo, base))
        if before is not None:
            ws = self._workspaces[repo]
            carried = carry.carry_forward(before, ws.tree(base), ws.tree(sha))
            if carried is not None:
                self._remember(repo, sha, carried)

    def _known(self, repo: RepoSettings, commit: str, tree=None) -> carry.Known:
        key = (repo, commit)
        with self._lock:
            cached = self._by_commit.get(key)
            last = self._latest.get(repo)
            before = self._by_commit.get((repo, last))
        if cached is not None:
            return cached
        ws = self._workspaces[repo]
        old = ws.tree(last) if before is not None else None
        tree = tree or ws.tree(commit, near=last)  # listed as what differs from ``old``
        known = None
        if before is not None:
            known = carry.follow(before, old, tree, self.settings, self.documents)
            self.documents.flush()
        if known is None:
            known = carry.discover(tree, self.settings, [e for e in self.settings.environments if e.repo == repo],
                                   self.documents)
            self.documents.flush()
            tree.forget_texts()  # every file's text: parsed, kept by blob: 24 MB at 10k apps
        self._remember(repo, commit, known)
        return known

    def _carried(self, last: tuple, heads: tuple, knowns: tuple, commit: str) -> Optional[Inventory]:
        """The last inventory moved to ``heads``, when every repository's commit moved so from the
        last one's (``Known.carried_from``), perhaps over several commits; else None."""
        steps: list = []
        for (repo, head), known, (_, last_head) in zip(heads, knowns, last[0]):
            since = self._carried_since(repo, known, head, last_head)
            if since is None:
                return None
            steps.extend(reversed(since))
        try:
            return moved_inventory(last[1], commit, steps, tuple(p for known in knowns for p in known.problems),
                                   self.settings)
        except KeyError:  # a pin the last inventory does not hold: build it again
            return None

    def _carried_since(self, repo: RepoSettings, known: carry.Known, commit: str,
                       since: str) -> Optional[list]:
        """The steps ((moves, splice), …) from ``since`` to ``commit`` (whose pins are ``known``),
        newest first, when each commit between was carried from the one before."""
        steps = []
        while commit != since:
            if known is None or known.carried_from is None or len(steps) >= KEPT_COMMITS:
                return None
            commit, moves, splice = known.carried_from
            steps.append((moves, splice))
            with self._lock:
                known = self._by_commit.get((repo, commit))
        return steps

    def _remember(self, repo: RepoSettings, commit: str, known: carry.Known) -> None:
        with self._lock:
            while len(self._by_commit) >= KEPT_COMMITS:  # the oldest first: a batch's chain stays whole
                self._by_commit.pop(next(iter(self._by_commit)))
            # What the next commit builds on (the listing, the environments' parts, what was read)
            # kept at the newest commit only: older commits keep their pins and where they came
            # from. An app added or a kustomization changed makes new parts of thousands of
            # releases; sixteen commits of them were 85 MB at 10k apps.
            for key, other in list(self._by_commit.items()):
                if key[0] == repo and other.read is not None and other is not known:
                    self._by_commit[key] = other.let_go()
            self._by_commit[(repo, commit)] = known
            self._latest[repo] = commit


def build_inventory(commit: str, knowns, settings: Settings) -> Inventory:
    """The inventory of what discovery found in each repository (``knowns``), from scratch: sorted
    by environment then app, each app's tracked pin apart from its other parts."""
    pins, problems = [], []
    for known in knowns:
        pins.extend(known.pins)
        problems.extend(known.problems)
    pins.sort(key=pin_order(settings.environment_names))
    tracked, others = images.split(pins, settings)
    return Inventory(commit, tracked, tuple(problems), others)


def moved_inventory(inventory: Inventory, commit: str, steps, problems: tuple, settings: Settings) -> Inventory:
    """``inventory`` moved to ``commit`` by ``steps`` ((moves, splice), … as ``Known.carried_from``
    says them, oldest first), with ``problems``. KeyError: a pin it does not hold."""
    for moves, splice in steps:
        if moves:
            inventory = inventory.carried(commit, moves, problems)
        if splice is not None:
            gone, anew = splice
            inventory = inventory.spliced(commit, gone, *images.split(anew, settings), settings.environment_names,
                                          problems)
    return inventory.carried(commit, (), problems)


def app_name(app: str, inventory: Inventory) -> str:
    """The app as the inventory spells it; names are matched case-insensitively."""
    found = inventory.app_named(app)
    if found is None:
        raise UnknownApp(app, inventory.apps())
    return found


def find(inventory: Inventory, app: str, environment: str, part: Optional[str] = None) -> Pin:
    """The pin of ``app`` in ``environment`` (its canonical name): the one it is tracked by, or
    ``part`` ("chart", "image", "image:<container>")."""
    found = inventory.find(app_name(app, inventory), environment)
    if found is None:
        raise UnknownApp(app, [p.app for p in inventory.in_environment(environment)], environment)
    if part is None or part == found.part:
        return found
    parts = inventory.parts(found.app, environment)
    chosen = images.find_part(parts, part)
    if chosen is None:
        has = ", ".join(f"`{p.part}`" for p in parts)
        raise UsageError(f"`{found.app}` has no {'chart version' if part == CHART else f'`{part}`'} "
                         f"pinned in {environment}; it has {has}.",
                         f"`!deploy {found.app} {parts[0].part} <version> to {environment}`")
    return chosen
