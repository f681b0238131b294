"""Typed errors: each one carries the one-line message a person reads in chat.

The chat layer turns any ``FerryError`` into a reply with its ``message`` (which may name people
with ``identity.mention``); ``str(error)`` is that message as plain text, for everything else (logs,
HTTP answers, commits). Anything else is a bug and is answered with an apology and a log id.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable

from .identity import plain


def shown(text: str, limit: int = 40) -> str:
    """Echo a person's text back safely: short, printable, no backticks to break the markup."""
    text = re.sub(r"[^\x20-\x7e]", "?", str(text)).replace("`", "'")
    return text if len(text) <= limit else text[:limit] + "…"


# Control characters (C0, DEL, C1 with NEL) and Unicode's line and paragraph separators: what a
# terminal or a log shipper may take for the end of a line. The backslash is doubled so that an
# escape cannot be typed as text.
_LOG_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_LOG_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029", ord("\\"): "\\\\"})


def logged(text, limit: int = 200) -> str:
    """A person's text in a one-line log: nothing in it can end the line or forge another."""
    text = plain(str(text)).translate(_LOG_ESCAPES)
    return text if len(text) <= limit else text[:limit] + "…"


def nearest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates closest to ``word``, best first (case-insensitive)."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.4)
    return [by_lower[c] for c in close]


def did_you_mean(word: str, candidates: Iterable[str], noun: str) -> str:
    candidates = sorted(set(candidates))
    close = nearest(word, candidates)
    if close:
        return f"did you mean {' or '.join(f'`{c}`' for c in close)}?"
    if not candidates:
        return f"no {noun} is known."
    listed = ", ".join(f"`{c}`" for c in candidates[:8])
    more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
    return f"known {noun}s: {listed}{more}."


class FerryError(Exception):
    """An error a person can act on. ``message`` is the one-line chat message, ``str()`` the same
    in plain text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return plain(self.message)


class UsageError(FerryError):
    """A command typed wrongly: what was wrong, then how to type it."""

    def __init__(self, problem: str, usage: str):
        super().__init__(f"{problem} Usage: {usage}")


class NotAllowed(FerryError):
    """The requester may not do that there (policy: who, from which channel)."""


class Locked(FerryError):
    """The environment or app is locked, or the environment is frozen."""


class OutsideWindow(Locked):
    """The environment takes changes in its promotion windows only, and one is not open now."""


class NoLongerAllowed(NotAllowed):
    """The requester of a waiting change may no longer ask for it (the policy changed since)."""


class ApprovalRefused(FerryError):
    """An approval or rejection that cannot be taken."""


class ChangeDropped(ApprovalRefused):
    """Approving found that a waiting change can never be applied as asked: it was dropped (decided)."""


class NotLocked(FerryError):
    """An unlock of something that is not locked."""


class TooManyWaiting(FerryError):
    """One person already holds as many changes waiting for approval as the policy allows."""


class SettingsError(FerryError):
    """The settings file is wrong: names the key and why."""


class UnknownEnvironment(FerryError):
    def __init__(self, name: str, known: Iterable[str]):
        super().__init__(f"No environment `{shown(name)}`: {did_you_mean(name, known, 'environment')}")
        self.name = name


class UnknownApp(FerryError):
    def __init__(self, name: str, known: Iterable[str], where: str = ""):
        place = f" in {where}" if where else ""
        super().__init__(f"No app `{shown(name)}`{place}: {did_you_mean(name, known, 'app')}")
        self.name = name


class InvalidVersion(FerryError):
    """The text given cannot be a chart version (an OCI tag)."""


class VersionNotFound(FerryError):
    def __init__(self, chart: str, version: str, nearest_versions: Iterable[str], where: str = ""):
        close = list(nearest_versions)
        where = where or "the registry"  # or "the Helm repository https://…", naming its URL
        hint = f" Nearest: {', '.join(close)}." if close else f" {where[0].upper()}{where[1:]} holds no version of it."
        super().__init__(f"Chart `{chart}` has no version `{version}` in {where}.{hint}")
        self.version = version


class ImageTagNotFound(VersionNotFound):
    def __init__(self, image: str, tag: str, nearest_tags: Iterable[str]):
        close = list(nearest_tags)
        hint = f" Nearest: {', '.join(close)}." if close else " The registry holds no tag of it."
        FerryError.__init__(self, f"Image `{image}` has no tag `{tag}` in its registry.{hint}")
        self.version = tag


class SharedPin(FerryError):
    def __init__(self, file: str, environments: Iterable[str], target: str, readers: Iterable[str] = ()):
        envs = ", ".join(environments)
        readers = list(readers)
        if readers:
            shown = ", ".join(readers[:5]) + (f" and {len(readers) - 5} more" if len(readers) > 5 else "")
            super().__init__(
                f"The version for {target} is pinned in `{file}`, which is also read by {shown}: "
                f"changing it would change them too. Give the app its own pin first."
            )
            return
        super().__init__(
            f"The version for {target} is pinned in `{file}`, which is shared by {envs}: "
            f"changing it would change all of them. Give the environment its own pin first."
        )


class NotEditable(FerryError):
    """The version exists but Ferry cannot change it safely (no pin, inline patch, …)."""


class UnreadableDocument(FerryError):
    """YAML or JSON from outside that Ferry does not read: not valid, or past one of the bounds
    that keep a read cheap (size, nesting, aliases; gitops.safeyaml). ``problem`` is the predicate
    after ``source``'s name, for callers that say what it costs them."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source} {problem}: Ferry cannot read it.")
        self.source, self.problem = source, problem


class UnreadableValues(FerryError):
    """A file that sets a release's Helm values does not load: its values cannot be shown or
    compared (an empty guess would make two different environments look the same)."""

    def __init__(self, file: str, problem: str, inline: bool = False):
        """``problem``: what is wrong, after the file's name (``is not valid YAML (line 3: …)``)."""
        what = f"An inline patch in `{file}`" if inline else f"`{file}`"
        super().__init__(f"{what} {shown(problem, 160)}: the Helm values it sets cannot be read. "
                         "Fix it, then ask again.")
        self.file = file


class RegistryUnavailable(FerryError):
    """The registry did not answer in time or answered with an error. ``outage``: no answer at all
    (refused, timed out, no such name) or a server error: every request to that host would fail
    alike, unlike a refusal or an odd answer about one repository."""

    def __init__(self, message: str, outage: bool = False):
        super().__init__(message)
        self.outage = outage


class RegistryUnauthorized(FerryError):
    """The registry refused Ferry's credentials."""


class NoRegistry(FerryError):
    """No chart source (OCI registry or Helm repository) is known for an app's chart."""


class GitUnavailable(FerryError):
    """The Git remote cannot be reached."""


class GitUnauthorized(FerryError):
    """The Git remote refused Ferry's credentials."""


class PushRejected(FerryError):
    """The remote kept rejecting the push after the bounded retries."""


class CommitNotSigned(FerryError):
    """The settings ask for signed commits (``commit.sign``) and git could not sign one: nothing
    was pushed."""


class NothingToRollback(FerryError):
    """History has no earlier version to go back to."""


class PromotionRefused(FerryError):
    """A promotion that would skip a stage or has nothing to take."""


class RolledBackVersion(FerryError):
    """The version was rolled back from this environment: bringing it back needs ``--force``."""


class EventRefused(FerryError):
    """A request to the Flux webhook that Ferry does not act on; ``status`` is the HTTP answer."""

    status = 400


class Unsigned(EventRefused):
    status = 401


class BadSignature(EventRefused):
    status = 403


class FeedbackNotConfigured(EventRefused):
    """No token for the environment: no event can be verified, so none is accepted."""

    status = 403


class EventTooLarge(EventRefused):
    status = 413


class MalformedEvent(EventRefused):
    status = 400


class StaleEvent(EventRefused):
    status = 400


class ReplayedEvent(EventRefused):
    status = 409


class ForbiddenAddress(RegistryUnavailable):
    """A chart source's name leads to a link-local or metadata address: never asked."""


class SourceBusy(RegistryUnavailable):
    """A registry or Helm repository already has as many requests under way as Ferry sends it: the
    command is answered now rather than holding a chat worker in the queue. Like an outage, the
    host's other charts would wait alike: `!versions` asks it once, not once per app."""

    def __init__(self, message: str):
        super().__init__(message, outage=True)


class ForgeUnavailable(FerryError):
    """The forge (GitHub, GitLab) did not answer, timed out or failed (5xx)."""


class ForgeRateLimited(ForgeUnavailable):
    """The forge's rate limit is spent; ``reset`` is when it refills (epoch seconds) if known."""

    def __init__(self, message: str, reset: float = 0.0):
        super().__init__(message)
        self.reset = reset


class ForgeRefused(FerryError):
    """The forge refused the request: the token's permissions, a missing repository or branch."""



class UnsafeArchive(FerryError):
    """A chart archive Ferry will not read: a path leaving its folder, a link or device, too many
    members, or more bytes unpacked than the bounds allow (a decompression bomb)."""


class PreviewUnavailable(FerryError):
    """A preview Ferry cannot make: what it would compare is not a chart, or cannot be read. A
    change never waits for a preview: this is said in one line next to it."""


class PreviewNotClean(FerryError):
    """The environment's policy asks for a clean preview (``preview: require_clean``) and this
    change's shows schema errors or keys the environment sets that the new chart lacks."""


class CheckUnreadable(FerryError):
    """A verification check could not be evaluated: Prometheus did not answer, refused the query
    or answered something that is not an instant vector or scalar."""
