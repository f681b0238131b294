"""Changes that land as pull requests (``environments[].write: pull-request``): a branch of
Ferry's, a pull request into the environment's branch, and what becomes of it.

A change is committed the same way as a push (``writing.to_branch``: the same edit, message and
commit path) onto ``ferry/<env>/<app>-<version>-<id>``, pushed never forced, and the pull request
opened there. The same change asked again while it is open gets a new commit on its branch (or
none) and its title and body rewritten; another version of the app in that environment opens its
own and closes the older one with a comment. A forge that fails after the push leaves nothing:
the branch is deleted while it still holds Ferry's commit.

Merges, closes, reviews and pushes by hand are learnt from the forge's webhook (checked by the
forge's client, replays refused by delivery id) or by polling (conditional reads). State, in the
state file's records (``state.store``), each decision one transaction: ``forge/open/<env>/<app>``
the open pull request of an app (its number, branch, Ferry's last commit, where to answer),
``forge/seen`` the deliveries accepted in the last week.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from . import pull_requests as text, writing
from ..errors import FerryError, ForgeRateLimited, ForgeRefused, ForgeUnavailable, ReplayedEvent, logged
from ..feedback.records import ReplyTarget
from ..identity import Release
from ..forges import CLOSED, MERGED, PullRequestDraft
from ..model import Change, Commit, Plan, Proposal, Requester
from ..state.store import Records, Store

log = logging.getLogger(__name__)

OPEN_PREFIX = "forge/open/"
SEEN_KEY = "forge/seen"
SEEN_SECONDS = 7 * 86400.0  # GitHub redelivers by hand for 3 days; GitLab retries for hours
SEEN_MAX = 5000
MAX_BODY = 512 * 1024  # bytes of a webhook delivery read (the forge's client bounds it too)


@dataclass(frozen=True)
class Heard:
    """What to say about a pull request of Ferry's and where (``target`` None: the environment's
    channel, if it has one). ``merged``: the change as it landed, for Flux's feedback to follow."""

    text: str
    environment: str
    app: str
    target: Optional[ReplyTarget] = None
    merged: Optional[Change] = None
    requester: str = ""


class Landing:
    """The pull requests of one core: ``forges`` maps a repository (``RepoSettings``) to its
    forge's client."""

    def __init__(self, settings, state: Store, forges: dict, workspace: Callable, guard=None,
                 clock: Callable[[], float] = time.time):
        self.settings, self.state, self.forges, self.clock = settings, state, forges, clock
        self.workspace = workspace  # environment -> its Workspace
        self.guard = guard  # rolled-back versions: kept when a merge lands, as when a push does
        self.memory = Records(state)
        self._proposing = threading.Lock()  # one app's pull request decided at a time

    def forge(self, environment: str):
        return self.forges[self.settings.environment(environment).repo]

    def polled(self) -> list:
        """The forges' settings (``ForgeSettings``) of the repositories followed by polling: no
        webhook secret is set for them."""
        return [repo.forge for repo in self.forges if not repo.forge.webhook_secret]

    # ---- a change proposed -------------------------------------------------------------------

    def propose(self, ws, plan: Plan, requester: Requester, pins_at: Callable, base: dict, *,
                forced: tuple = (), approver: Optional[Requester] = None, expect: Optional[dict] = None,
                preview: str = "") -> Change:
        """Commit ``plan`` on a branch of Ferry's and open (or update) its pull request.
        ``base``: the ``Change`` fields the core has made; ``preview``: the upgrade preview's
        Markdown for the body ("" when none)."""
        with self._proposing:
            return self._propose(ws, plan, requester, pins_at, base, forced, approver, expect, preview)

    def _propose(self, ws, plan, requester, pins_at, base, forced, approver, expect, preview) -> Change:
        env = self.settings.environment(plan.environment)
        forge, key = self.forges[env.repo], _key(env.name, plan.app)
        older = self._get(key)
        same = older is not None and older["version"] == plan.new and older["part"] == plan.part
        branch = older["branch"] if same else text.branch_name(env.name, plan.app, plan.new)
        written = writing.to_branch(ws, plan, requester, pins_at, branch, onto_existing=same, forced=forced,
                                    approver=approver, expect=expect)
        if written.sha is None and not same:  # the environment's branch holds it already
            return Change(old=written.pin.version, new=plan.new, diff="", noop=True, **base)
        head = written.sha or older["head"]
        diff = written.diff or (older or {}).get("diff", "")
        described = text.title_and_body(plan, writing.commit_message(plan, requester, approver, forced),
                                        requester, diff, preview, approver)
        try:
            pr = forge.update(older["number"], *described) if same else None
            if pr is None or pr.state != "open":
                pr = forge.open(PullRequestDraft(branch, env.repo.branch, *described, env.repo.forge.labels,
                                                 env.repo.forge.reviewers, env.repo.forge.auto_merge))
        except (ForgeUnavailable, ForgeRefused) as failed:
            if written.sha and not same:
                gone = ws.delete_branch(branch, written.sha)
                failed.message += (f" Nothing is left behind: the branch `{branch}` was removed." if gone else
                                   f" The branch `{branch}` could not be removed: delete it by hand.")
            raise
        kind = env.repo.forge.kind
        superseded = self._supersede(ws, forge, older, pr.number, plan.new, kind) if older and not same else None
        record = {"environment": env.name, "app": plan.app, "part": plan.part, "action": plan.action,
                  "old": plan.old or "", "version": plan.new, "file": base.get("file", ""), "branch": branch, "remote": ws.public_url,
                  "number": pr.number, "url": pr.url, "kind": kind, "head": head, "diff": diff, "opened_at": self.clock(),
                  "requester": requester.name or requester.id, "requester_id": requester.id,
                  "target": (older or {}).get("target") if same else None, "by_hand": False, "etag": None,
                  "releases": [[p.release.namespace, p.release.name, p.part, p.version or "", new]
                               for p, new in plan.edits]}
        self.memory[key] = record
        log.info("%s pull request #%d for %s %s in %s (branch %s)", "updated" if same else "opened", pr.number,
                 plan.app, plan.new, env.name, branch)
        return Change(old=plan.old, new=plan.new, diff=diff, replaced_range=plan.pin.is_range,
                      pull_request=Proposal(pr.number, pr.url, branch, same, superseded, kind), **base)

    def _supersede(self, ws, forge, older: dict, number: int, version: str, kind: str) -> Optional[int]:
        """Close the app's older pull request, pointing at the new one; its branch is deleted while
        it holds Ferry's commit only. A failure is logged: the new pull request stands."""
        try:
            forge.close(older["number"], f"Superseded by {'!' if kind == 'gitlab' else '#'}{number} ({version}), "
                                         "opened by Ferry.")
        except FerryError as e:
            log.warning("could not close superseded pull request #%d: %s", older["number"], logged(e))
            return None
        ws.delete_branch(older["branch"], older["head"])
        return older["number"]

    def answer_in(self, change: Change, target: ReplyTarget) -> None:
        """Where to tell what becomes of ``change``'s pull request: the command's thread."""
        key = _key(change.environment, change.app)
        with self.state.transaction():
            record = self._get(key)
            if record is not None and change.pull_request and record["number"] == change.pull_request.number:
                record["target"] = asdict(target)
                self.memory[key] = record

    def open_requests(self) -> list[dict]:
        """Ferry's open pull requests, oldest first."""
        return sorted(self.memory.items_under(OPEN_PREFIX).values(), key=lambda r: r["opened_at"])

    # ---- what the forge says ---------------------------------------------------------------

    def receive(self, kind: str, headers, body: bytes) -> list[Heard]:
        """One webhook delivery to ``/forge/<kind>``: checked by the forge whose secret signed it,
        refused when replayed; what to say about it."""
        forges = [f for repo, f in self.forges.items() if repo.forge.kind == kind]
        if not forges:
            raise ForgeRefused(f"No repository of Ferry's is on {kind}.")
        refusal = None
        for forge in forges:
            try:
                event = forge.webhook(headers, body)
                break
            except FerryError as e:
                refusal = e
        else:
            raise refusal
        if event is None:
            return []
        now = self.clock()
        with self.state.transaction():
            seen = {d: t for d, t in (self._get(SEEN_KEY) or {}).items() if t > now - SEEN_SECONDS}
            if event.delivery in seen:
                raise ReplayedEvent(f"Delivery {event.delivery} was accepted already.")
            seen[event.delivery] = now
            self.memory[SEEN_KEY] = dict(sorted(seen.items(), key=lambda i: i[1])[-SEEN_MAX:])
            return self._heard(forge, event.action, event.pull_request, event.actor)

    def poll(self) -> list[Heard]:
        """Where no webhook secret is set: each open pull request read again, conditionally (an
        unchanged one costs GitHub no rate limit); a spent limit waits for its reset."""
        said = []
        for record in self.open_requests():
            forge = self.forge(record["environment"])
            if self.settings.environment(record["environment"]).repo.forge.webhook_secret:
                continue
            try:
                pr = forge.get(record["number"], record.get("etag"))
            except ForgeRateLimited:
                break
            except FerryError as e:
                log.warning("could not read pull request #%d: %s", record["number"], logged(e))
                continue
            if pr is None:
                continue
            with self.state.transaction():
                said += self._heard(forge, pr.state if pr.state != "open" else "updated", pr, pr.merged_by,
                                    etag=pr.etag)
        return said

    def _heard(self, forge, action: str, pr, actor: Optional[str], etag: Optional[str] = None) -> list[Heard]:
        """Inside the caller's transaction: the record of ``pr`` updated or dropped, what to say."""
        key, record = self._find(forge, pr.number)
        if record is None:
            return []
        where = dict(environment=record["environment"], app=record["app"], requester=record["requester"],
                     target=ReplyTarget(**record["target"]) if record.get("target") else None)
        named = f"merge request !{pr.number}" if record.get("kind") == "gitlab" else f"pull request #{pr.number}"
        what = f"`{record['app']}` {record['version']} in {record['environment']}: {named}"
        by_hand = pr.head_sha != record["head"]
        hand = (" It was changed by hand before the merge: what was merged is what Flux applies."
                if by_hand else "")
        actor = re.sub(r"[^A-Za-z0-9_.\[\]-]", "", actor or "")[:60]  # a forge login, never markup
        who = f" by {actor}" if actor else ""
        if action == MERGED:
            del self.memory[key]
            self._landed(record)
            self.workspace(record["environment"]).remote_moved()  # reads now see the merge
            change = Change(action=record["action"], app=record["app"], environment=record["environment"],
                            old=record["old"], new=record["version"], file=record["file"], diff=record["diff"],
                            part=record["part"], commit=Commit(pr.merge_commit or "", record.get("remote", "")))
            sha = (pr.merge_commit or "?")[:10]
            return [Heard(f"{what} merged{who} as {sha}.{hand}", merged=change if pr.merge_commit else None,
                          **where)]
        if action == CLOSED:
            del self.memory[key]
            return [Heard(f"{what} closed without merging{who}. Nothing changes in {record['environment']}.",
                          **where)]
        said = []
        if action == "approved" or (pr.approved and not record.get("approved")):
            record["approved"] = True
            said.append(Heard(f"{what} approved in review{who}.", **where))
        if by_hand and not record["by_hand"]:
            record["by_hand"] = True
            said.append(Heard(f"{what} was changed by hand (its head is now {pr.head_sha[:10]}): what is "
                              "merged is what Flux applies.", **where))
        record["etag"] = etag or record.get("etag")
        self.memory[key] = record
        return said

    def _landed(self, record: dict) -> None:
        """Per part, as after a push: a version brought back loses its rolled-back guard, and a
        rollback guards the version it left."""
        if self.guard is None:
            return
        for namespace, name, part, old, new in record.get("releases", []):
            release = Release(record["environment"], namespace, name, part)
            self.guard.forget_rollback(release, new)
            if record["action"] == "rollback" and old:
                self.guard.remember_rollback(release, old, Requester(record["requester_id"], record["requester"]))

    def _find(self, forge, number: int) -> tuple:
        for key, record in self.memory.items_under(OPEN_PREFIX).items():
            if record["number"] == number and self.forge(record["environment"]) is forge:
                return key, record
        return None, None

    def _get(self, key: str):
        try:
            return self.memory[key]
        except KeyError:
            return None


def _key(environment: str, app: str) -> str:
    return f"{OPEN_PREFIX}{environment}/{app}"
