"""What someone with a shell in Ferry's data folder can do to a clone behind its back (a plain
helper module for the repair tests): re-point ``origin``, rewrite its URL, move the remote-tracking
ref to a missing object or to a commit that is not on the remote."""
from __future__ import annotations

import shutil
from pathlib import Path

from tests.fixtures_git import git, remote_path

DAMAGE = ("origin re-pointed", "push URL re-pointed", "URL rewritten", "ref to a missing object",
          "ref to a commit not on the remote", "ref to an older commit")
MISSING = "deadbeef" * 5


def evil_copy(url: str, tmp_path: Path, external_commit, files: dict) -> str:
    """Another remote: a copy of ``url`` plus one commit of ``files`` that must never reach ``url``."""
    copy = tmp_path / "evil" / remote_path(url).name
    shutil.copytree(remote_path(url), copy)
    external_commit(copy.as_uri(), files, message="not from the real remote")
    return copy.as_uri()


def damage(clone: Path, kind: str, url: str, evil: str, branch: str = "main") -> None:
    ref = f"refs/remotes/origin/{branch}"
    if kind == "origin re-pointed":
        git("remote", "set-url", "origin", evil, cwd=clone)
    elif kind == "push URL re-pointed":
        git("remote", "set-url", "--push", "origin", evil, cwd=clone)
    elif kind == "URL rewritten":
        git("config", f"url.{evil}.insteadOf", git("config", "remote.origin.url", cwd=clone),
            cwd=clone)
    elif kind == "ref to a missing object":
        (clone / ".git" / ref).parent.mkdir(parents=True, exist_ok=True)
        (clone / ".git" / ref).write_text(MISSING + "\n")  # update-ref refuses a missing object
    elif kind == "ref to a commit not on the remote":
        git("fetch", "--quiet", evil, f"+refs/heads/{branch}:refs/ferry-test/evil", cwd=clone)
        git("update-ref", ref, "refs/ferry-test/evil", cwd=clone)
        git("update-ref", "-d", "refs/ferry-test/evil", cwd=clone)
    elif kind == "ref to an older commit":
        git("update-ref", ref, f"{ref}~1", cwd=clone)
    else:
        raise ValueError(kind)
