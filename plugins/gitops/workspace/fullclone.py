"""The whole history, fetched in the background after a shallow first clone.

A first start needs only the tip to answer (discovery reads one commit's files), and a clone of
the tip alone (``--depth 1``) costs a small part of a full one: on a long history most of a clone
is its commits and trees. History (``git log``, older texts) needs the rest, so a full clone
is made beside the shallow one in a thread of its own, at a low CPU priority (the first discovery
runs meanwhile), with its commit-graph written there. Nothing of the live clone is touched by
that thread: no lock file of the live clone's fetches and pushes can be raced. ``Clone`` adopts
the finished clone under the workspace's lock (what the shallow one got since is fetched into it
from the shallow one, locally; then the directories are swapped).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from . import process

log = logging.getLogger(__name__)

NICENESS = 10  # the full clone's git processes yield the CPU to the bot's own work


class FullClone:
    """One full clone of ``url``'s ``branch`` being made beside ``directory``; ``path`` is the
    finished clone's directory (None until it is, or when it failed: ``failure`` says why)."""

    def __init__(self, url: str, branch: str, directory: Path, env: dict, *, timeout: float,
                 public_url: str, scrub: Callable[[str], str], observe):
        self.url, self.branch, self.directory = url, branch, directory
        self.env, self.timeout, self.public_url = env, timeout, public_url
        self._scrub, self.observe = scrub, observe
        self.path: Optional[Path] = None
        self.failure = ""
        self._done = threading.Event()
        self._proc: Optional[subprocess.Popen] = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ferry-full-clone", daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once the thread has finished (made the clone or failed)."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Kill the clone under way, wait for the thread, and remove what it made."""
        with self._lock:
            self._stopped = True
            if self._proc is not None:
                process.stop(self._proc)
        self._thread.join(30)
        if self.path is not None:
            remove(self.path)
            self.path = None

    def _started(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._proc = proc
            if self._stopped:
                process.stop(proc)

    def _run(self) -> None:
        try:
            os.nice(NICENESS)  # Linux: this thread only, and the processes it starts
        except OSError:
            pass
        staging = None
        try:
            started = time.monotonic()
            for left in self.directory.parent.glob(f".{self.directory.name}.full.*"):
                remove(left)  # of a run stopped before its history came
            staging = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}.full.",
                                            dir=self.directory.parent))
            res = self.observe.run("clone", process.run, [
                "clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch", "--branch",
                self.branch, "--", self.url, str(staging)], Path.cwd(), self.env, None,
                self.timeout, self._started)
            with self._lock:
                self._proc = None
            if self._stopped:
                self.failure = "stopped"
            elif res.returncode != 0:
                self.failure = self._scrub(res.stderr).strip()[:300] or f"exit {res.returncode}"
            else:
                write_commit_graph(staging / ".git", self.env, self.timeout, self.public_url,
                                   self._scrub)
                self.path, staging = staging, None
                log.info("cloned the whole history of %s in the background in %.1f s",
                         self.public_url, time.monotonic() - started)
        except process.Timeout:
            self.failure = f"it took longer than {self.timeout:g} s"
        except OSError as e:
            self.failure = str(e)
        finally:
            if staging is not None:
                remove(staging)
            if self.failure and not self._stopped:
                log.warning("could not clone the whole history of %s in the background: %s",
                            self.public_url, self.failure)
            self._done.set()


def write_commit_graph(git_dir: Path, env: dict, timeout: float, public_url: str,
                       scrub: Callable[[str], str]) -> None:
    """A commit-graph with changed-path Bloom filters, for fast path-limited history (later
    fetches add layers that keep them: fetch.writeCommitGraph). Best effort: reads work
    without it, only slower."""
    started = time.monotonic()
    try:
        res = process.run([f"--git-dir={git_dir}", "commit-graph", "write", "--reachable",
                           "--changed-paths", "--no-progress"], git_dir.parent, env, None,
                          max(timeout, 60.0))
    except (process.Timeout, OSError) as e:
        log.warning("could not write the commit-graph of %s: %s", public_url,
                    type(e).__name__ if isinstance(e, process.Timeout) else e)
        return
    if res.returncode != 0:
        log.warning("could not write the commit-graph of %s: %s", public_url,
                    scrub(res.stderr).strip()[:300])
    else:
        log.info("wrote the commit-graph of %s in %.1f s", public_url, time.monotonic() - started)


def is_shallow(git_dir: Path) -> bool:
    """A clone with a history cut short (``--depth``): git lists its cut commits in ``shallow``."""
    return (git_dir / "shallow").exists()


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
