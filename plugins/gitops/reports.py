"""The questions people ask of the repository and the registry: history, newest versions, one
app's report, differences between environments, the audit trail. Read-only.

``Reports`` is a part of ``GitOps`` (it needs its ``settings``, ``registry``, ``inventory()``,
``pin()``, ``location()`` and workspaces); kept apart so the façade stays about changing things.
"""
from __future__ import annotations

import difflib
from typing import Optional

from .flux import discovery, images
from .flux.manifests import DEFAULT_CACHE
from .changes import editing, trailers
from .errors import NoRegistry, NotEditable, RegistryUnauthorized, RegistryUnavailable
from .model import AuditEntry, ChartInfo, HistoryEntry, Pin
from .changes.pins import app_name
from .versions import parse


class Reports:
    """Read-only answers over the inventory, Git history and the registry."""

    def history(self, app: str, environment: str, limit: int = 500,
                part: Optional[str] = None) -> list[HistoryEntry]:
        """Every version ``app`` (its tracked pin, or ``part``) had in ``environment``, newest
        first, from Git."""
        pin = self.pin(app, environment, part=part)
        if pin.location is None:
            return []
        ws = self._workspace(pin.environment)
        entries: list[HistoryEntry] = []
        revisions = ws.file_history(pin.location.file, ws.head(refresh=False), limit=limit)
        for rev in reversed(revisions):  # oldest first: keep the commit where each version began
            version = images.read_tag(pin, _version_at(rev, pin.location))
            if version is None or (entries and entries[-1].version == version):
                continue
            carried, merged_by = _carried(ws, rev, pin.environment, "--", pin.location.file)
            entries.append(HistoryEntry(version, rev.sha, carried.author_name, carried.author_email, rev.when,
                                        carried.trailers.get(trailers.REQUESTED_BY, ""), carried.subject,
                                        merged_by))
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
        """One app in every environment (the part it is tracked by first), the registry's newest
        versions of that first part (its chart, or its image when it is tracked by its image) with
        their dates, a note."""
        inventory = self.inventory()
        name = app_name(app, inventory)
        pins = [p for p in inventory.pins if p.app == name]
        parts = [q for p in pins for q in inventory.parts(name, p.environment)]
        try:
            # The newest of what the app is tracked by (the first part): an app tracked by its
            # image is told its image's newest tags, not its chart's.
            tracked = parts[0] if parts else None
            if tracked is None:
                return parts, [], ""
            location = self.location(tracked)
            available = self.registry.versions(location)
            tags = list(available.releases[:count])
            newest_pre = available.prereleases[:1]
            if newest_pre and (not tags or parse(newest_pre[0]) > parse(tags[0])):
                tags.insert(0, newest_pre[0])  # a release candidate ahead of the releases is news
            return parts, [self.registry.chart_info(location, t) for t in tags], ""
        except (NoRegistry, RegistryUnavailable, RegistryUnauthorized) as e:
            return parts, [], str(e)

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

    def audit(self, environment: Optional[str] = None, limit: int = 10) -> list[AuditEntry]:
        """The last changes Ferry made, from Git: who asked, who approved, who forced."""
        envs = [self.settings.environment(environment)] if environment else self.settings.environments
        entries = []
        for repo in dict.fromkeys(e.repo for e in envs):
            grep = [_trailer_grep(e.name) for e in envs if e.repo == repo]
            for rev, merge in _changes(self._workspaces[repo], limit, grep):
                t, shown = rev.trailers, merge or rev
                entries.append(AuditEntry(
                    shown.sha, shown.when, rev.subject, t.get(trailers.ENVIRONMENT, ""),
                    t.get(trailers.REQUESTED_BY, f"{rev.author_name} <{rev.author_email}>"),
                    t.get(trailers.APPROVED_BY, ""), t.get(trailers.FORCED_BY, ""),
                    merge.author_name if merge is not None else ""))
        return sorted(entries, key=lambda e: e.when, reverse=True)[:limit]


MERGES_READ = 50  # merge commits `!audit` looks through for the pull requests of Ferry's they brought


def _trailer_grep(environment: str) -> str:
    return f"--grep=^{trailers.ENVIRONMENT}: {environment}$"


def _changes(ws, limit: int, grep: list) -> list[tuple]:
    """Ferry's commits the ``grep`` selects on the branch's line, each with the merge commit that
    brought it (None: pushed): those on the line itself (pushes, squashes, merges whose message is
    the description), then those brought by a merge that says nothing of Ferry's (looked through
    back to the oldest of the first when they are ``limit`` already)."""
    head = ws.head()
    found = [(rev, rev if len(rev.parents) > 1 else None) for rev in ws.log(head, limit, *grep)]
    since = [f"--since={found[-1][0].when}"] if len(found) >= limit else []
    for merge in ws.log(head, MERGES_READ, "--merges", *since):
        if trailers.ENVIRONMENT not in merge.trailers:
            found += [(rev, merge) for rev in _brought(ws, merge, *grep)]
    return list({(merge or rev).sha: (rev, merge) for rev, merge in found}.values())  # each once


def _brought(ws, merge, *selection: str) -> list:
    """The newest commit the ``selection`` picks among those ``merge`` brought (its second
    parent's line: the pull request's branch)."""
    return ws.log(f"{merge.parents[0]}..{merge.parents[1]}", 1, *selection) if len(merge.parents) > 1 else []


def _carried(ws, rev, environment: str, *paths: str) -> tuple:
    """The commit that carried what ``rev`` brought, and who merged it: a merge commit that says
    nothing of Ferry's is read through to the newest commit of Ferry's on its second parent's line
    (the pull request's branch) for ``environment``; any other commit is its own."""
    if len(rev.parents) < 2:
        return rev, ""
    if trailers.REQUESTED_BY in rev.trailers:  # a merge whose message is the pull request's description
        return rev, rev.author_name
    brought = _brought(ws, rev, _trailer_grep(environment), *paths)
    return (brought[0], rev.author_name) if brought else (rev, "")


def _version_at(rev, location) -> Optional[str]:
    """The version text at ``location`` in the revision's text, kept by blob id with the parsed
    documents (a blob's text never changes): a history asked again parses only what is new."""
    if rev.text is None:
        return None
    if not rev.blob:
        return editing.read_version(rev.text, location)
    fact = f"version:{location.document}:{location.path!r}:{location.inner!r}"
    return DEFAULT_CACHE.fact(_Revision(rev), location.file, fact,
                              lambda text: editing.read_version(text, location))


class _Revision:
    """One revision of a file as the parse cache reads a file: its blob id and its text."""

    def __init__(self, rev):
        self._rev = rev

    def blob_id(self, path: str) -> str:
        return self._rev.blob

    def read(self, path: str) -> str:
        return self._rev.text


def _shown_version(pin: Optional[Pin]) -> str:
    if pin is None:
        return "-"
    return pin.version or "(latest)"
