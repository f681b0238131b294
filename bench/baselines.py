"""The baselines a deploy is judged against: plain git, the way a script without Ferry's core would
do it. An edit of the one pinning line (as ``sed -i``), ``git commit -a`` and ``git push`` in an
existing clone, the same after catching up with the remote, and a fresh clone per command (full or
``--depth 1``).
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.fleet import Fleet, git
from bench.measure import check


def edit_line(path: Path, key: str, old: str, new: str) -> None:
    """sed -i 's/<key>: <old>/<key>: <new>/' on the one line that pins the version."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf'^(\s*{key}: "?){re.escape(old)}(?="?(\s|$))', re.M)
    changed, count = pattern.subn(lambda m: m.group(1) + new, text, count=1)
    check(count == 1, f"{path}: no `{key}: {old}` line to edit")
    path.write_text(changed, encoding="utf-8")


def commit_and_push(clone: Path, fleet: Fleet, app: str, env: str, old: str, new: str) -> None:
    rel, _ = fleet.pin_file(app, env, old)
    key = "tag" if fleet.by_name[app][1] == "ocirepository" else "version"
    edit_line(clone / rel, key, old, new)
    git("commit", "-q", "-a", "-m", f"deploy {app} {old} → {new} to {env}", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)


def sync(clone: Path) -> None:
    git("fetch", "-q", "origin", cwd=clone)
    git("reset", "-q", "--hard", "origin/main", cwd=clone)


def clone_per_command(fleet: Fleet, dest: Path, change: tuple, shallow: bool) -> None:
    depth = ["--depth", "1"] if shallow else []
    git("clone", "-q", *depth, "--branch", "main", fleet.url, str(dest))
    commit_and_push(dest, fleet, *change)
