"""Forges: where a change lands as a pull request (GitHub) or merge request (GitLab) instead of a
push, for environments whose branch is protected.

This module is the contract every forge client keeps; the clients (one module per forge) speak
their forge's REST API and read its webhooks, and nothing above them knows which forge it is.
Clients raise ``ForgeUnavailable`` (down, timed out, 5xx), ``ForgeRateLimited`` (with the reset
time from the forge's headers) and ``ForgeRefused`` (401/403/404/422: the token's permissions or
the request) with a one-line message; a webhook that fails its check raises an ``EventRefused``.

May import: sources, settings, credentials, model, errors, safeyaml, addresses, identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Protocol

OPEN, MERGED, CLOSED = "open", "merged", "closed"


@dataclass(frozen=True)
class PullRequestDraft:
    """What Ferry asks a forge to open: ``branch`` (already pushed) into ``base``."""

    branch: str
    base: str
    title: str
    body: str  # Markdown
    labels: tuple = ()
    reviewers: tuple = ()  # forge user names
    auto_merge: bool = False


@dataclass(frozen=True)
class PullRequest:
    """A pull/merge request as the forge last reported it."""

    number: int  # GitHub's number, GitLab's iid
    url: str  # the page a person opens
    state: str  # OPEN, MERGED or CLOSED
    branch: str  # head (source) branch
    base: str  # base (target) branch
    head_sha: str  # the head commit the forge holds now (changed by hand if not Ferry's)
    merge_commit: Optional[str] = None  # the commit on ``base`` once merged
    merged_by: Optional[str] = None  # forge user name
    approved: bool = False  # the forge's required reviews are satisfied
    etag: Optional[str] = None  # for the next conditional read


@dataclass(frozen=True)
class PullRequestEvent:
    """A webhook delivery about one pull request, once its signature or token is checked."""

    delivery: str  # the forge's delivery id (replay protection)
    action: str  # "opened", "updated", "merged", "closed", "approved"
    pull_request: PullRequest
    actor: Optional[str] = None  # who merged, closed, pushed or approved


class Forge(Protocol):
    """One repository on one forge, with its credentials."""

    def open(self, draft: PullRequestDraft) -> PullRequest:
        """Open a pull request; idempotent per ``draft.branch`` (an open one is returned)."""

    def get(self, number: int, etag: Optional[str] = None) -> Optional[PullRequest]:
        """The pull request now, or None when ``etag`` still matches (304: nothing changed)."""

    def find_open(self, branch: str) -> Optional[PullRequest]:
        """The open pull request whose head is ``branch``, if any."""

    def update(self, number: int, title: str, body: str) -> PullRequest:
        """Rewrite a pull request's title and body."""

    def close(self, number: int, comment: str) -> PullRequest:
        """Comment on a pull request, then close it (superseded, or cleaned up)."""

    def webhook(self, headers: Mapping[str, str], body: bytes) -> Optional[PullRequestEvent]:
        """Check and read one webhook delivery; None for events that are not about a pull request."""
