"""Plain data shared by the core's modules: no I/O here."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from .identity import CHART, Release  # noqa: F401 (CHART: where the modules have always found it)

# The records that exist by the ten thousand (a pin per app, environment and part, where it lives,
# its chart's location, what discovery could not follow) are slotted: no dict per instance.

# A path to one scalar inside a YAML document: mapping keys and sequence indexes.
FieldPath = tuple  # tuple[str | int, ...]

# Each chart location pins name, held once: 40,000 pins name a handful, and equal locations are
# interchangeable (frozen). Bounded: past it, a new location stays the pin's own.
_LOCATIONS: dict = {}
_MAX_LOCATIONS = 4096


@dataclass(frozen=True, slots=True)
class ChartLocation:
    """Where a chart's versions live: an OCI repository (``oci://host/path/chart``), or a chart of
    a classic Helm repository (``https://host/path``, whose ``index.yaml`` lists its versions)."""

    host: str  # "127.0.0.1:5000" or "ghcr.io"
    repository: str  # "charts/podinfo": the path under the host, the chart name last
    insecure: bool = False  # plain HTTP
    scheme: str = "oci"  # "oci", or "https"/"http" for a Helm repository's index

    @property
    def is_index(self) -> bool:
        """A classic Helm repository: versions come from its ``index.yaml``, not from OCI tags."""
        return self.scheme != "oci"

    @property
    def chart(self) -> str:
        return self.repository.rstrip("/").rsplit("/", 1)[-1]

    @property
    def repository_url(self) -> str:
        """The Helm repository's URL as Flux names it (without the chart, for an index)."""
        if not self.is_index:
            return f"oci://{self.ref}"
        prefix = self.repository.rstrip("/").rpartition("/")[0]
        return f"{self.scheme}://{self.host}" + (f"/{prefix}" if prefix else "")

    @property
    def index_url(self) -> str:
        return f"{self.repository_url}/index.yaml"

    @property
    def ref(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        return f"oci://{self.ref}" if not self.is_index else f"{self.repository_url} ({self.chart})"


@dataclass(frozen=True, slots=True)
class PinLocation:
    """Exactly where a version text lives in the repository."""

    file: str  # repo-relative POSIX path
    document: int  # index of the YAML document in a multi-document file
    path: FieldPath  # e.g. ("spec", "chart", "spec", "version")
    # When the value sits in YAML written inside a string (an inline patch, `patch: |`):
    # (document index in that text, path there); ``path`` then leads to the string.
    inner: Optional[tuple] = None

    def __str__(self) -> str:
        return self.file


@dataclass(frozen=True, slots=True)
class Problem:
    """Something discovery could not follow: said in chat, not only in the log."""

    environment: str  # "" when it concerns the repository as a whole
    path: str  # the file or folder concerned
    reason: str  # one sentence

    def __str__(self) -> str:
        where = " · ".join(filter(None, [self.environment, f"`{self.path}`" if self.path else ""]))
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(frozen=True, slots=True)
class Pin:
    """One app's chart version as Git pins it in one environment."""

    app: str  # HelmRelease metadata.name (qualified as namespace/name on a clash)
    environment: str
    version: Optional[str]  # the text in Git, as written ("6.5.3", "v1.2.0", ">=1.0.0"); None: no version field
    is_range: bool  # a semver constraint (">=1.0.0", "1.x", "*") rather than one version
    location: Optional[PinLocation]  # None when the release has no version field anywhere
    kind: str  # "helmrelease" | "patch" | "ocirepository"
    chart: str  # chart name
    namespace: str = ""
    release_file: str = ""  # the file holding the HelmRelease itself
    source: Optional[ChartLocation] = None  # where the chart's versions live (OCI or a Helm index)
    source_url: str = ""  # the Flux source URL as written (oci:// or https://)
    shared_with: tuple = ()  # every environment pinned by the same location, this one included, when > 1
    values_files: tuple = ()  # files that set spec.values for this release in this environment
    # Other readers of the same location: "env/app" of other releases, other uses of a variable ("`${VAR}` in x").
    shared_by: tuple = ()
    origin: str = ""  # where the version comes from when not the release's own field, for people
    refusal: str = ""  # why no one line can change it, when none can ("a digest", …)
    unknown: bool = False  # Ferry cannot know the version Flux applies (a Secret, an expression)
    values_unknown: str = ""  # why Ferry cannot replay the Helm values Flux gives it, when it cannot
    values_from: bool = False  # the release takes values from ConfigMaps or Secrets (`spec.valuesFrom`)
    # Which part of the app this line pins: "chart" (its chart version), "image" (its one image's
    # tag) or "image:<container>" (the tag of one container's image, when it names several).
    part: str = CHART
    written_prefix: str = ""  # an image tag inside `repo:tag`: the text before the tag on that line

    def __post_init__(self):
        if self.source is not None and (self.source in _LOCATIONS or len(_LOCATIONS) < _MAX_LOCATIONS):
            object.__setattr__(self, "source", _LOCATIONS.setdefault(self.source, self.source))

    @property
    def shared(self) -> bool:
        return len(self.shared_with) > 1 or bool(self.shared_by)

    @property
    def is_image(self) -> bool:
        return self.part != CHART

    @property
    def label(self) -> str:
        """The app, with the part when it is not the chart: ``web`` or ``web image:api``."""
        return self.app if self.part == CHART else f"{self.app} {self.part}"

    @property
    def release(self) -> "Release":
        """What this pin is whatever Ferry calls it (``app`` may turn into ``namespace/name``; this does not)."""
        return Release(self.environment, self.namespace, self.app.rsplit("/", 1)[-1], self.part)


@dataclass(frozen=True)
class ChartVersions:
    """The tags of one chart in the registry, sorted for people."""

    releases: tuple  # semver versions without pre-release, newest first (tags as written)
    prereleases: tuple  # semver pre-releases, newest first
    other: tuple  # tags that are not semver ("latest", "main-abc123"), sorted by name

    @property
    def all_tags(self) -> tuple:
        return self.releases + self.prereleases + self.other

    @property
    def newest(self) -> Optional[str]:
        return self.releases[0] if self.releases else None


@dataclass(frozen=True)
class ChartInfo:
    """What the registry says about one chart version."""

    version: str
    app_version: str = ""
    description: str = ""
    created: str = ""  # ISO 8601 from org.opencontainers.image.created (or an index's `created`)
    digest: str = ""
    url: str = ""  # the chart archive's absolute URL, for a chart of a Helm repository's index


@dataclass(frozen=True)
class Requester:
    """Who asked, and from where: a chat identity, with a name and an email when known."""

    id: str  # "U024BE7LH" on Slack, "@alice" on the text backend
    name: str = ""
    email: str = ""
    channels: tuple = ()  # the channel asked in, by every name it goes by (ID, #name); () = a DM
    link: str = ""  # a link to the request in chat, when the backend gives one
    bot: bool = False  # a bot or an integration, not a person: ``id`` is its bot ID ("" unknown)

    @property
    def signature(self) -> str:
        """``Name <id>``, as commit trailers carry it."""
        return f"{self.name or self.id} <{self.id}>"


@dataclass(frozen=True)
class Commit:
    sha: str
    remote: str = ""  # the repository's URL without credentials (chat renders a forge link from it)


@dataclass(frozen=True)
class Proposal:
    """A change that lands as a pull request (``write: pull-request``): opened, or an open one of
    the same change updated; ``superseded``: the older one of the app it closed."""

    number: int
    url: str
    branch: str
    updated: bool = False
    superseded: Optional[int] = None
    kind: str = "github"  # the forge: GitHub's pull request #n, GitLab's merge request !n


@dataclass(frozen=True)
class HistoryEntry:
    """One version an app had in one environment."""

    version: str
    commit: str
    author: str
    email: str
    when: str  # ISO 8601
    requested_by: str = ""  # Requested-by trailer, when Ferry made the change
    subject: str = ""
    merged_by: str = ""  # the author of the merge commit that brought Ferry's (a pull request's)


@dataclass(frozen=True)
class Change:
    """The outcome of a deploy, promote or rollback (or its dry run)."""

    action: str  # "deploy" | "promote" | "rollback"
    app: str
    environment: str
    old: Optional[str]
    new: str
    file: str
    diff: str  # unified diff of the one-line change ("" when nothing changes)
    dry_run: bool = False
    noop: bool = False  # the version was already pinned: no commit
    replaced_range: bool = False  # the old text was a range, now an exact version
    commit: Optional[Commit] = None
    source_environment: str = ""  # for a promotion
    part: str = CHART  # what the line pins: the chart version or an image tag (Pin.part)
    moves: tuple = ()  # several parts in one commit: ((part, old, new), ...), the app's tracked one first
    between: tuple = field(default=())  # registry versions between old and new (promotion)
    pending: Optional["PendingChange"] = None  # waiting for a second person's approval
    pull_request: Optional[Proposal] = None  # landing as a pull request, not pushed
    requester: Optional["Requester"] = None  # pushed on whose behalf (an approved change's requester)
    release: Optional[Release] = None  # the release it changed, whatever its app is called later


@dataclass(frozen=True)
class Plan:
    """A change resolved against the repository, before any registry check or write."""

    action: str  # "deploy" | "promote" | "rollback"
    pin: Pin
    new: str
    source_environment: str = ""
    # The app's other parts moved in the same commit (a whole-app promotion): ((Pin, new), ...).
    also: tuple = ()

    @property
    def edits(self) -> tuple:
        """Every (pin, new value) of the change, ``pin`` first."""
        return ((self.pin, self.new),) + tuple(self.also)

    @property
    def app(self) -> str:
        return self.pin.app

    @property
    def part(self) -> str:
        return self.pin.part

    @property
    def environment(self) -> str:
        return self.pin.environment

    @property
    def old(self) -> Optional[str]:
        return self.pin.version

    @property
    def noop(self) -> bool:
        """The exact version asked for is already pinned (every part's, for several)."""
        return all(pin.version == new and not pin.is_range for pin, new in self.edits)


@dataclass(frozen=True)
class Lock:
    """A lock on an environment or one app in it (or a freeze window in force, as ``!locks`` shows)."""

    by: str  # the chat user ID of who locked it ("freeze window" for a freeze)
    when: str  # "2026-11-26 10:00 UTC"
    reason: str = ""
    release: Optional[Release] = None  # what it locks: an environment (name "") or every part of a release


@dataclass(frozen=True)
class RolledBack:
    """A version rolled back from an environment: bringing it back needs ``--force``."""

    version: str
    by: str  # the chat user ID of who rolled it back
    when: str
    release: Optional[Release] = None  # the part it was rolled back from


@dataclass(frozen=True)
class Blocker:
    """One thing that stands in a change's way and that ``--force`` may override."""

    kind: str  # "lock" | "freeze" | "rolled-back" | "preview"
    key: str  # what it is, stably: the same lock, freeze or rollback has the same key
    reason: str  # one line, as people and the Forced-by trailer read it
    admin_only: bool = True  # only an admin may force past it

    @property
    def message(self) -> str:
        if self.admin_only:
            return f"{self.reason}. An admin may add `--force`."
        if self.kind == "preview":
            return f"{self.reason[:1].upper()}{self.reason[1:]}. Fix the values first, or add `--force` " \
                "to go ahead all the same."
        return f"{self.reason}: add `--force` to bring it back on purpose."


@dataclass(frozen=True)
class PendingChange:
    """A change into an environment that needs a second person's approval."""

    id: str
    action: str
    app: str
    environment: str
    old: Optional[str]
    new: str
    file: str
    diff: str
    requester: Requester
    created: str  # ISO 8601, UTC
    expires: str
    source_environment: str = ""
    approvers: Optional[tuple] = None  # None: anyone allowed to make the change
    forced: tuple = ()  # tuple[Blocker, ...]: what --force overrode when it was asked, in the commit
    state: str = "waiting"  # "applying", "applied", "rejected", "expired", "dropped": claimed once
    settled_by: str = ""  # who took it out of "waiting" (or why, for "dropped")
    part: str = CHART  # the part of the app the diff pins (Pin.part)
    also: tuple = ()  # the other parts the diff moves: ((part, old, new), ...)
    namespace: Optional[str] = None  # the release's namespace and name (Pin.release): what it
    release_name: str = ""           # changes, whatever the app is called by approval time

    @property
    def release(self) -> Optional[Release]:
        """None for a change held before releases had identities: found by its app name then."""
        if not self.release_name:
            return None
        return Release(self.environment, self.namespace, self.release_name, self.part)



def pin_order(environments: list) -> Callable:
    """The key pins are ordered by: environment (as ``environments`` lists them; others last),
    then app."""
    rank = {name: i for i, name in enumerate(environments)}

    def key(p: Pin) -> tuple:
        return rank.get(p.environment, len(rank)), p.app

    return key


def in_order(pins: list, more: Iterable, environments: list) -> list:
    """``pins``, in ``pin_order``, with ``more`` among them in that order; ties keep ``pins``
    first and ``more`` as given."""
    key = pin_order(environments)
    more = list(more)
    if len(more) > 64:  # a merge of two sorted runs: one pass
        return sorted([*pins, *more], key=key)
    ordered = list(pins)
    for pin in more:  # a few: found by halving, not a pass over the fleet
        bisect.insort_right(ordered, pin, key=key)
    return ordered

@dataclass(frozen=True)
class AuditEntry:
    """One change Ferry made, as Git records it."""

    commit: str
    when: str
    subject: str
    environment: str
    requested_by: str
    approved_by: str = ""
    forced_by: str = ""
    merged_by: str = ""  # the author of the merge commit that brought it (a pull request's)
