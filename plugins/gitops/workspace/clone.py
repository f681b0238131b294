"""The clone: one bare-like clone (objects and refs, never checked out) of one remote branch, made,
fetched, pushed to and repaired here. Not thread-safe: the workspace holds its lock around every
call but ``local`` reads.

A first clone is shallow (the tip only: what discovery reads) and the whole history follows in the
background (``fullclone``), adopted at the next call under the lock once it is there; history
reads wait for it (``whole_history``).
"""
from __future__ import annotations

import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .. import addresses
from ..errors import GitUnavailable
from . import failures, process
from .fullclone import FullClone, is_shallow, remove as _remove, write_commit_graph
from .objects import ObjectReader
from .process import GitCommandFailed, Result

log = logging.getLogger(__name__)

GC_EVERY = 25  # pushes between two ``gc --auto`` checks (each is cheap, but a process)
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class Clone:
    """``head``: the branch's tip as last seen on the remote by this instance (a clone, fetch or
    push; never taken from the clone's refs, which anyone with access to the data folder can
    move); ``fetched_at``: when (monotonic), None when never. ``clones`` counts the clones made
    (a repair shows as one more); ``on_clone`` runs before each."""

    def __init__(self, url: str, branch: str, directory: Path, env: dict, *, timeout: float,
                 secrets: Sequence[str], public_url: str, on_clone: Callable[[], None], observe):
        self.url, self.branch, self.directory = url, branch, directory
        self.git_dir = directory / ".git"
        self.env, self.timeout, self.public_url = env, timeout, public_url
        self._secrets = secrets
        self._on_clone = on_clone
        self.observe = observe  # a GitObserver (the metrics): each network call timed and counted
        self.head: Optional[str] = None
        self.fetched_at: Optional[float] = None
        self.verified = False  # the clone's remote was checked by this instance, and is unchanged since
        self._config_seen: Optional[tuple] = None  # .git/config as it was when checked
        self.clones = 0
        self.reader = ObjectReader(self.git_dir, env)
        self._pushes_since_gc = 0
        self._full: Optional[FullClone] = None  # the whole history, being cloned beside this one

    @property
    def tracking_ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    def ensure(self) -> None:
        """A usable clone of the right remote at ``directory``; (re-)clone when it is not.

        Checked with git once per instance, again after any failure, and again whenever the
        clone's config file changed (someone re-pointed ``origin``: cloned again) or its
        origin/<branch> is not where this instance last saw the remote's branch (someone moved it:
        fetched again before anything is read or built on it). Otherwise the ref file being where
        we left it is enough, without a process: a clone that breaks later makes a git command
        fail, and every such failure repairs it. A whole history cloned in the background since
        the last call takes the shallow clone's place here."""
        if self._full is not None and self._full.done():
            self._adopt_full()
        if self.verified and self.git_dir.is_dir():
            if self._config_signature() == self._config_seen:
                tip = self.read_ref(self.tracking_ref)
                if tip is not None and tip == self.head:
                    return
                log.warning("origin/%s in the clone of %s at %s was moved outside Ferry (to %s): "
                            "fetching it again", self.branch, self.public_url, self.directory,
                            (tip or "an unreadable value")[:12])
            else:
                log.warning("the config of the clone of %s at %s was changed outside Ferry: "
                            "checking its remote", self.public_url, self.directory)
            self.verified, self.fetched_at = False, None  # whatever comes next fetches first
        if self.git_dir.is_dir():
            seen = self._config_signature()
            tip = self.tip()
            if tip and self.origin_is_ours():
                if self.head is not None and tip != self.head:
                    self.fetched_at = None  # a ref we did not set: the remote says where it is
                if is_shallow(self.git_dir):  # an earlier run stopped before its history came
                    self.full_clone()
                elif not has_changed_path_graph(self.git_dir):  # made before graphs existed
                    self.write_commit_graph()
                self.verified, self._config_seen = True, seen
                return
            log.warning("the clone of %s at %s is unusable or points elsewhere: cloning again",
                        self.public_url, self.directory)
        self.clone()

    def clone(self) -> None:
        """The first clone of this instance is shallow, its history following in the background;
        a repair (a clone again) is whole at once: readers may hold commits the tip does not."""
        shallow = self.clones == 0
        self.clones += 1
        self.reader.close()
        self.stop_full_clone()
        self.head = self.fetched_at = None
        self.verified = False
        self._on_clone()
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        # Clone beside the target and rename: an interrupted clone never looks like a clone.
        staging = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}.", dir=self.directory.parent))
        try:
            self.network("clone", "clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch",
                         *(("--depth", "1") if shallow else ()), "--branch", self.branch, "--",
                         self.url, str(staging),
                         cwd=Path.cwd())  # a relative remote path means relative to the bot
            _remove(self.directory)
            staging.rename(self.directory)
        finally:
            _remove(staging)
        tip = self.tip()
        if tip is None:
            raise GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        if shallow:
            self.full_clone()
        else:
            self.write_commit_graph()
        self.head, self.fetched_at, self.verified = tip, time.monotonic(), True  # held from here
        self._config_seen = self._config_signature()

    def fetch(self) -> None:
        res = self.network("fetch", "fetch", "--quiet", "--no-tags", "origin",
                           f"+refs/heads/{self.branch}:{self.tracking_ref}", check=False)
        if res.returncode != 0:
            if self.tip() is None:  # not the remote: the clone itself is broken (a garbage HEAD…)
                log.warning("the clone of %s at %s is broken: cloning again", self.public_url,
                            self.directory)
                self.clone()  # a fetch of everything
                return
            raise self.remote_error("fetch", res.stderr)
        self.fetched_at = time.monotonic()
        tip = self.read_ref(self.tracking_ref) or self.tip()
        if tip is None:
            raise GitUnavailable(f"The Git repository {self.public_url} has no branch `{self.branch}`.")
        self.head = tip

    def push(self, sha: str, branch: str = "") -> bool:
        """True when pushed; False when the branch moved (retry); raises on any other refusal.
        ``branch``: another branch than the clone's (a pull request's), never forced either."""
        res = self.network("push", "push", "--porcelain", "--no-verify", "origin",
                           f"{sha}:refs/heads/{branch or self.branch}", check=False)
        if res.returncode == 0:
            return True
        refusal = failures.push_refusal(res.stdout.decode(errors="replace"), res.stderr)
        if refusal is None:
            raise self.remote_error("push", res.stderr)
        if refusal[0] == "moved":
            return False
        log.warning("push to %s refused: %s %s", self.public_url, self.scrub(refusal[1]),
                    self.scrub(res.stderr))
        raise failures.push_rejected(self.public_url, self.scrub(refusal[1]))

    def branch_tip(self, branch: str) -> Optional[str]:
        """Another branch of the remote fetched (a pull request's): its tip, None when it is not
        there. Kept under ``refs/ferry/branches/``, never the clone's own branch."""
        res = self.network("ls-remote", "ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        listed = [line.split("\t") for line in res.stdout.decode().splitlines()]
        if not any(len(entry) == 2 and entry[1] == f"refs/heads/{branch}" for entry in listed):
            return None
        local = f"refs/ferry/branches/{branch}"
        self.network("fetch", "fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{branch}:{local}")
        return self.read_ref(local) or self.local("rev-parse", local).stdout.decode().strip()

    def delete_branch(self, branch: str, expected: str) -> bool:
        """Delete a branch of the remote only while it is still at ``expected`` (Ferry's own last
        commit): someone's work pushed on it since is never lost. True when it is gone."""
        res = self.network("push", "push", "--porcelain", "--no-verify",
                           f"--force-with-lease=refs/heads/{branch}:{expected}", "origin",
                           f":refs/heads/{branch}", check=False)
        return res.returncode == 0

    def pushed(self, sha: str) -> None:
        """After a push landed: our view of the remote is the commit just pushed, as fresh as a
        fetch. ``git push`` moved origin/<branch> itself (the clone's fetch refspec maps it);
        only when it did not is ``update-ref`` run. Then, now and again, housekeeping."""
        self.head, self.fetched_at = sha, time.monotonic()
        try:
            if self.read_ref(self.tracking_ref) != sha:
                self.local("update-ref", self.tracking_ref, sha, check=False)
            self._pushes_since_gc += 1
            if self._pushes_since_gc >= GC_EVERY:
                self._pushes_since_gc = 0
                # In the foreground, not racing reads: -c beats the pinned gc.auto=0.
                self.local("-c", "gc.auto=6700", "-c", "gc.autoDetach=false", "gc", "--auto",
                           "--quiet", check=False)
        except (GitCommandFailed, OSError) as e:  # the next fetch puts the ref right
            self.verified = False
            log.warning("pushed %s to %s, but the clone could not follow: %s", sha[:12],
                        self.public_url, self.scrub(str(e)))

    def write_commit_graph(self) -> None:
        write_commit_graph(self.git_dir, self.env, self.timeout, self.public_url, self.scrub)

    # ---- the whole history, after a shallow first clone ------------------------------------

    @property
    def shallow(self) -> bool:
        return is_shallow(self.git_dir)

    def full_clone(self) -> FullClone:
        """The whole history being cloned in the background; started when none is."""
        if self._full is None or (self._full.done() and self._full.path is None):
            self._full = FullClone(self.url, self.branch, self.directory, self.env,
                                   timeout=self.timeout, public_url=self.public_url,
                                   scrub=self.scrub, observe=self.observe)
        return self._full

    def whole_history(self, lock) -> None:
        """Wait for the whole history (``lock``: the workspace's, held to take it in)."""
        if self.head is not None and not self.shallow:
            return  # readers never wait for a writer's lock
        with lock:
            self.ensure()  # a clone first
            if not self.shallow:
                return
            full = self.full_clone()
        full.wait(self.timeout + 60.0)  # the clone's own bound, and its commit-graph
        with lock:
            self.ensure()  # takes it in
            if self.shallow:
                raise GitUnavailable(f"The history of {self.public_url} is still being fetched "
                                     f"({full.failure or 'not there yet'}). Try again later.")

    def stop_full_clone(self) -> None:
        full, self._full = self._full, None
        if full is not None:
            full.stop()

    def _adopt_full(self) -> None:
        """The full clone made in the background takes the shallow clone's place, with what the
        shallow one got since it was made (fetches, pushes) fetched into it from the shallow one,
        locally; then the directories are swapped while no cat-file runs."""
        full, self._full = self._full, None
        staging = full.path
        if staging is None or not (staging / ".git").is_dir():
            return  # it failed (logged), or its folder was removed: history reads start another
        res = process.run([f"--git-dir={staging / '.git'}", "fetch", "--quiet", "--no-tags",
                           str(self.git_dir), f"+{self.tracking_ref}:{self.tracking_ref}"],
                          staging, self.env, None, self.timeout)
        if res.returncode != 0:
            log.warning("could not bring the whole history of %s in: %s", self.public_url,
                        self.scrub(res.stderr).strip()[:300])
            _remove(staging)
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}.shallow.",
                                      dir=self.directory.parent))
        try:
            with self.reader.paused():
                self.directory.rename(aside / "clone")
                try:
                    staging.rename(self.directory)
                except OSError:
                    (aside / "clone").rename(self.directory)
                    raise
        except OSError as e:
            log.warning("could not put the whole history of %s in place: %s", self.public_url, e)
            _remove(staging)
            return
        finally:
            _remove(aside)
        self.verified = False  # checked again like any clone found on disk: its remote, its tip
        log.info("the clone of %s now holds its whole history", self.public_url)

    def close(self) -> None:
        self.stop_full_clone()
        self.reader.close()

    def read_ref(self, name: str) -> Optional[str]:
        """The object id a ref holds, read from the ref files (a loose ref, else packed-refs)
        without a process; None when it is not there in a plain form (the caller asks git)."""
        try:
            value = (self.git_dir / name).read_text(encoding="ascii").strip()
            return value if _OBJECT_ID.fullmatch(value) else None
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError):
            return None
        try:
            with open(self.git_dir / "packed-refs", encoding="utf-8", errors="replace") as packed:
                for line in packed:
                    sha, _, ref = line.rstrip("\n").partition(" ")
                    if ref == name:
                        return sha if _OBJECT_ID.fullmatch(sha) else None
        except OSError:
            pass
        return None

    def tip(self) -> Optional[str]:
        res = self.local("rev-parse", "--verify", "--quiet", f"{self.tracking_ref}^{{commit}}",
                         check=False)
        if res.returncode != 0:
            return None
        return res.stdout.decode().strip() or None

    def origin_is_ours(self) -> bool:
        """The clone's ``origin`` fetches from and pushes to the configured URL, and nothing in its
        config rewrites that URL: one ``remote.origin.url``, no ``pushurl``, no ``url.*.insteadOf``."""
        res = self.local("config", "--local", "--includes", "--get-regexp",
                         r"^remote\.origin\.(url|pushurl)$|^url\.", check=False)
        entries = [line.partition(" ") for line in res.stdout.decode(errors="replace").splitlines()]
        return (len(entries) == 1 and entries[0][0] == "remote.origin.url"
                and same_remote(entries[0][2], self.url))

    def _config_signature(self) -> Optional[tuple]:
        """The clone's config file as the file system sees it (``git remote set-url`` and
        ``git config`` replace the file: a new inode, a new time)."""
        try:
            st = (self.git_dir / "config").stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns

    # ---- running git in the clone ----------------------------------------------------------

    def local(self, *args: str, check: bool = True, stdin: Optional[bytes] = None,
              env: Optional[dict] = None, timeout: Optional[float] = None) -> Result:
        """A git command inside the clone, with its git directory explicit: a broken clone must
        fail, not let git walk up to an enclosing repository (the project's own, say). ``env``:
        variables for this command only; ``timeout``: seconds (``process.Timeout`` past them)."""
        full = [f"--git-dir={self.git_dir}", f"--work-tree={self.directory}", *args]
        try:
            res = process.run(full, self.directory, {**self.env, **env} if env else self.env, stdin,
                              timeout)
        except OSError as e:  # the directory vanished under us
            raise GitCommandFailed(args, -1, str(e)) from None
        if check and res.returncode != 0:
            raise GitCommandFailed(args, res.returncode, self.scrub(res.stderr))
        return res

    def network(self, what: str, *args: str, cwd: Optional[Path] = None, check: bool = True) -> Result:
        """A git command that talks to the remote: bounded in time, failures classified."""
        forbidden = addresses.forbidden_address_of(process.remote_host(self.url))
        if forbidden is not None:
            raise GitUnavailable(f"The Git repository {self.public_url}: "
                                 f"{addresses.refusal(process.remote_host(self.url), forbidden)}")
        if cwd is None:
            args = (f"--git-dir={self.git_dir}", f"--work-tree={self.directory}", *args)
        try:
            res = self.observe.run(what, process.run, list(args), cwd or self.directory, self.env, None,
                                   self.timeout)
        except process.Timeout:
            log.warning("git %s with %s took longer than %g s: killed", what, self.public_url,
                        self.timeout)
            raise GitUnavailable(f"The Git repository {self.public_url} did not answer within "
                                 f"{self.timeout:g} s ({what}). Try again later.") from None
        if check and res.returncode != 0:
            raise self.remote_error(what, res.stderr)
        return res

    def remote_error(self, what: str, stderr: str) -> Exception:
        log.warning("git %s with %s failed: %s", what, self.public_url, self.scrub(stderr).strip())
        return failures.remote_error(what, stderr, self.public_url, self.branch)

    def scrub(self, text: str) -> str:
        return process.scrub(text, self._secrets)


def same_remote(configured: str, wanted: str) -> bool:
    """Git records a local remote as an absolute path: compare local paths resolved."""
    if configured == wanted:
        return True
    local = [u[len("file://"):] if u.startswith("file://") else u for u in (configured, wanted)]
    if any(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/]+:", u) for u in local):
        return False
    return Path(local[0]).resolve() == Path(local[1]).resolve()


def has_changed_path_graph(git_dir: Path) -> bool:
    """True when every layer of the clone's commit-graph has changed-path Bloom filters (a
    ``BIDX`` chunk in each file's table of contents)."""
    info = git_dir / "objects" / "info"
    try:
        chain = (info / "commit-graphs" / "commit-graph-chain").read_text().split()
        files = [info / "commit-graphs" / f"graph-{h}.graph" for h in chain] or [info / "commit-graph"]
    except OSError:
        files = [info / "commit-graph"]
    for file in files:
        try:
            with open(file, "rb") as graph:
                head = graph.read(8)
                if len(head) < 8 or head[:4] != b"CGPH":
                    return False
                table = graph.read(12 * (head[6] + 1))
        except OSError:
            return False
        if not any(table[i:i + 4] == b"BIDX" for i in range(0, len(table), 12)):
            return False
    return True

