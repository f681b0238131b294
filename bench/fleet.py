"""The benchmark's world: a large Flux repository with a long history, and the charts it names.

The repository is the demo's three layouts repeated over many apps (``devtools.fluxrepo.fleet_files``)
in a bare remote; its history is written with one ``git fast-import`` (10,000 commits in a few
seconds; ``git commit`` in a loop would take minutes). Every commit changes one app's version in
one environment, the way Ferry's own commits do; one app in one environment (the "hot" pin) changes
at regular intervals, so its history has a few dozen versions spread over the whole history.
"""
from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.fluxrepo import ENVIRONMENTS, fleet_apps, fleet_files, fleet_pin_file

SMALL_CHARTS = ("web", "api", "worker", "cache", "gateway", "jobs")
BIG_CHART = "bigchart"
# Every pin in Git is one of these, and every small chart holds all of them.
POOL = tuple(f"1.{minor}.{patch}" for minor in range(4) for patch in range(6))
PEOPLE = (("Alice Martin", "alice@example.com"), ("Bob Chen", "bob@example.com"),
          ("Chloé Dubois", "chloe@example.com"), ("Dev Patel", "dev@example.com"),
          ("Eve Novak", "eve@example.com"), ("Ferry", "ferry@localhost"))
HOT_CHANGES = 40  # how often the hot pin changes over the whole history


def big_tags(count: int) -> list[str]:
    """``count`` distinct tags: releases with a pre-release every tenth, and ``latest``."""
    tags, i = [], 0
    while len(tags) < count - 1:
        release = f"{i // 400}.{(i // 20) % 20}.{i % 20}"
        if i % 10 == 9:
            tags.append(f"{release}-rc.1")
        if len(tags) < count - 1:
            tags.append(release)
        i += 1
    return tags + ["latest"] if count > 0 else []


def git_env(author=PEOPLE[0]) -> dict:
    """git for the benchmark's own set-up and baselines: no machine config, a fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1],
               GIT_COMMITTER_NAME=author[0], GIT_COMMITTER_EMAIL=author[1], LC_ALL="C")
    return env


def git(*args: str, cwd=None) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:4])} failed: {res.stderr.strip()[:500]}")
    return res.stdout.strip()


@dataclass
class Fleet:
    """What was generated: the remote, the apps, and the version of every pin at the tip."""

    url: str
    bare: Path
    apps: list  # [(name, layout, chart)]
    pins: dict  # (app, env) -> version at the remote's tip; the benchmark keeps it current
    hot: tuple  # (app, env) whose file changed HOT_CHANGES times
    hot_changes: int
    commits: int  # on the remote's branch, the initial one included
    files: int
    registry: str  # oci://host:port/charts
    by_name: dict = field(default_factory=dict)

    def __post_init__(self):
        self.by_name = {a[0]: a for a in self.apps}

    def pin_file(self, app: str, env: str, version: str) -> tuple[str, str]:
        """(path, text) of the file pinning ``app`` in ``env`` with ``version``."""
        return fleet_pin_file(self.by_name[app], env, self.registry, version)


def charts_for(apps: int) -> list[tuple[str, str, str]]:
    """The fleet's apps: app-0000 uses the big chart, the others the small ones in turn."""
    fleet = fleet_apps(apps, SMALL_CHARTS)
    if fleet:
        fleet[0] = (fleet[0][0], fleet[0][1], BIG_CHART)
    return fleet


def build_remote(directory: Path, registry: str, apps: int, commits: int, seed: int = 1) -> Fleet:
    """A bare repository ``directory/remote.git``: one commit of the whole fleet, then ``commits``
    one-line version changes, written by ``git fast-import``."""
    rng = random.Random(seed)
    fleet_list = charts_for(apps)
    pins = {(a[0], env): rng.choice(POOL) for a in fleet_list for env in ENVIRONMENTS}
    files = fleet_files(registry, fleet_list, pins)
    middle = len(fleet_list) // 2
    hot_app = fleet_list[min(len(fleet_list) - 1, middle - middle % 3 + 1)]  # a HelmRelease file
    hot = (hot_app[0], "qa")
    by_name = {a[0]: a for a in fleet_list}
    others = [(a[0], e) for a in fleet_list[1:] for e in ENVIRONMENTS if (a[0], e) != hot]
    every = max(2, commits // HOT_CHANGES) if commits else 0

    bare = Path(directory) / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    proc = subprocess.Popen(["git", f"--git-dir={bare}", "fast-import", "--quiet", "--done"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=git_env())
    out = proc.stdin
    when = int(time.time()) - (commits + 1) * 900  # one change every quarter of an hour

    def data(payload: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(payload), payload)

    def commit(author, message: str, changed: dict, stamp: int) -> None:
        who = f"{author[0]} <{author[1]}> {stamp} +0000".encode()
        chunks = [b"commit refs/heads/main\n", b"author " + who + b"\n",
                  b"committer Ferry <ferry@localhost> %d +0000\n" % stamp,
                  data(message.encode())]
        for path, text in changed.items():
            chunks.append(b"M 100644 inline " + path.encode() + b"\n")
            chunks.append(data(text.encode()))
        out.write(b"".join(chunks))

    hot_changes = 0
    try:
        commit(PEOPLE[0], "Initial fleet\n", files, when)
        for i in range(1, commits + 1):
            if every and i % every == 0 and hot_changes < HOT_CHANGES:
                target = hot
                hot_changes += 1
            else:
                target = rng.choice(others)
            app, env = target
            old = pins[target]
            new = rng.choice([v for v in POOL if v != old])
            pins[target] = new
            path, text = fleet_pin_file(by_name[app], env, registry, new)
            person = rng.choice(PEOPLE[:-1])
            message = (f"deploy {app} {old} → {new} to {env}\n\n"
                       f"Requested-by: {person[0]} <U{PEOPLE.index(person):08d}>\n"
                       f"Environment: {env}\nApp: {app}\nFrom-Version: {old}\nTo-Version: {new}\n")
            commit(PEOPLE[-1] if i % 3 else person, message, {path: text}, when + i * 900)
        out.write(b"done\n")
        out.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"git fast-import failed: {err.strip()[:500]}")
    return Fleet(bare.as_uri(), bare, fleet_list, pins, hot, hot_changes, commits + 1, len(files),
                 registry)
