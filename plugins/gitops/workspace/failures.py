"""What git said, mapped to what a person can do about it: pure functions over stderr and
``git push --porcelain`` output, no process, no state."""
from __future__ import annotations

import re
from typing import Optional

from ..errors import GitUnauthorized, GitUnavailable, PushRejected

# Checked in this order. Redirects are never followed (process: http.followRedirects=false), so
# that the token and Ferry's pushes go to the configured host only; git then reports the 3xx.
_REDIRECT = re.compile(r"returned error: 30[12378]\b|unable to update url base from redirection",
                       re.I)
_UNAUTHORIZED = re.compile(
    r"authentication failed|permission denied \(publickey|could not read (username|password)"
    r"|returned error: 40[13]|access denied|invalid username or password|terminal prompts disabled"
    r"|HTTP Basic: Access denied|403 Forbidden|401 Unauthorized", re.I)
_HOST_KEY = re.compile(r"host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I)
_NO_BRANCH = re.compile(r"remote branch .* not found|couldn't find remote ref", re.I)
_REASONS = (
    (re.compile(r"could not resolve host|name or service not known|temporary failure in name", re.I),
     "host not found"),
    (re.compile(r"connection refused|failed to connect", re.I), "connection refused"),
    (re.compile(r"timed out|operation too slow", re.I), "timed out"),
    (re.compile(r"does not appear to be a git repository|not found|no such file|does not exist", re.I),
     "no repository there"),
)
# The branch moved under the push: plainly (fetch first), or mid-race at the server's ref update.
_MOVED = re.compile(r"^\[rejected\].*\((fetch first|non-fast-forward)\)"
                    r"|^\[remote rejected\].*\((failed to update ref|incorrect old value provided)"
                    r"|cannot lock ref '[^']*': is at [0-9a-f]+ but expected", re.I)
_PORCELAIN_REF = re.compile(r"^(.)\t([^\t]*)\t(.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def remote_error(what: str, stderr: str, public_url: str, branch: str) -> Exception:
    """The typed error for a failed network operation (``what``: clone, fetch, push)."""
    if _REDIRECT.search(stderr):
        return GitUnavailable(f"The Git repository {public_url} answered with a redirect ({what}): "
                              "Ferry follows none, so its token and its pushes go to that host "
                              "only. Set repo.url to the repository's current address.")
    if _HOST_KEY.search(stderr):
        return GitUnavailable(f"The Git repository {public_url} has an SSH host key Ferry does not "
                              f"know or that changed ({what}): check its fingerprint, then add it to "
                              "the file the settings' `ssh.known_hosts` names.")
    if _UNAUTHORIZED.search(stderr):
        return GitUnauthorized(f"The Git repository {public_url} refused Ferry's credentials "
                               f"({what}): check the token or SSH key.")
    if _NO_BRANCH.search(stderr):
        return GitUnavailable(f"The Git repository {public_url} has no branch `{branch}`.")
    reason = next((text for pattern, text in _REASONS if pattern.search(stderr)),
                  "see the bot's log")
    return GitUnavailable(f"Cannot reach the Git repository {public_url} ({what}: {reason}).")


def push_refusal(stdout: str, stderr: str) -> Optional[tuple[str, str]]:
    """A failed ``git push --porcelain``: None when no ref was refused (the remote failed: see
    ``remote_error``), ("moved", "") when the branch moved under the push (plan again), else
    ("refused", detail) with the refusal and the remote's own words."""
    refs = [m for m in map(_PORCELAIN_REF.match, stdout.splitlines()) if m]
    refused = [m.group(3) for m in refs if m.group(1) == "!"]
    if not refused:
        return None
    summary, reason = refused[0], remote_said(stderr)
    if _MOVED.search(summary) or _MOVED.search(reason):
        return "moved", ""
    why = re.sub(r"^\[[^]]*\]\s*", "", summary).strip("() ") or "refused"
    return "refused", f"{why}: {reason}" if reason else why


def push_rejected(public_url: str, detail: str) -> PushRejected:
    return PushRejected(f"The Git repository {public_url} refused the push ({detail[:300]}). "
                        "Nothing was changed.")


def remote_said(stderr: str) -> str:
    """The remote's own words (``remote: …`` lines, e.g. a hook's reason), on one line."""
    lines = [_ANSI.sub("", line[len("remote:"):]).strip()
             for line in stderr.splitlines() if line.startswith("remote:")]
    return " ".join(line for line in lines if line)


def signing_failure(stderr: str) -> str:
    """The line of what git and its signing program said that tells why a commit was not signed
    (ssh-keygen's banner and git's prefixes left out); "" when they said nothing."""
    lines = [line.strip().strip("@").strip() for line in stderr.replace("\r", "\n").splitlines()]
    lines = [re.sub(r"^((error|fatal|gpg): )?(Enter passphrase: )?", "", line) for line in lines if line]
    telling = next((line for line in lines if "too open" in line or "passphrase" in line.lower()), "")
    # git shows a carriage return of ssh-keygen's as "?"
    return (telling or next((line for line in lines if not line.startswith("WARNING")), "")).rstrip(".?")
