"""Real Git remotes for the tests: bare repositories on disk, no mocks (a pytest plugin module).

Fixtures
- ``bare_remote``: a factory ``make_remote(files, branch="main", executables=(), symlinks={})
  -> url``. ``files`` is a dict of repo-relative path -> text, or a folder (``Path``) to copy; the
  bare repository gets one commit of them on ``branch``, the paths in ``executables`` with mode
  100755 and ``symlinks`` (path -> target) as symlinks. The url is a ``file://`` URL, as a
  settings file would name it.
- ``external_commit``: ``external_commit(url, files, message="external change", branch="main")
  -> sha`` pushes a commit from a second clone, as a colleague would (``files``: path -> text, or
  None to delete). Use it to simulate someone else pushing between Ferry's fetch and push.

Helpers (plain functions, import them): ``git(*args, cwd=None)`` runs git isolated from the
machine's config; ``remote_path(url)``; ``remote_tip``, ``remote_log``, ``remote_file``, ``changed_lines`` read a
bare remote; ``install_hook(url, name, script)`` adds a server-side hook (e.g. pre-receive).

The fixture's own git runs with a fixed identity and no global or system config, so the machine
cannot change what the tests see; the code under test runs with the machine's real environment.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Union
from urllib.parse import unquote, urlsplit

import pytest

SEED_AUTHOR = ("Seed", "seed@example.test")
EXTERNAL_AUTHOR = ("Someone Else", "someone@example.test")


def _env(author=SEED_AUTHOR) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1],
               GIT_COMMITTER_NAME=author[0], GIT_COMMITTER_EMAIL=author[1])
    return env


def git(*args: str, cwd: Optional[Path] = None, author=SEED_AUTHOR, input: Optional[str] = None) -> str:
    """Run git for the test's own bookkeeping; stdout, stripped. Fails the test on error."""
    res = subprocess.run(["git", *args], cwd=cwd, env=_env(author), capture_output=True, text=True,
                         input=input, timeout=60)
    if res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr}")
    return res.stdout.strip()


def remote_path(url: str) -> Path:
    """The bare repository on disk behind a file:// URL (or a plain path)."""
    return Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)


def remote_tip(url: str, branch: str = "main") -> str:
    return git("--git-dir", str(remote_path(url)), "rev-parse", f"refs/heads/{branch}")


def remote_log(url: str, branch: str = "main", fmt: str = "%H") -> list[str]:
    """One line per commit on ``branch``, newest first, in ``fmt``."""
    out = git("--git-dir", str(remote_path(url)), "log", f"--format={fmt}", f"refs/heads/{branch}")
    return out.splitlines()


def remote_file(url: str, path: str, rev: str = "refs/heads/main") -> str:
    return git("--git-dir", str(remote_path(url)), "show", f"{rev}:{path}")


def changed_lines(url: str) -> tuple[str, list]:
    """What the newest commit on the remote touched: its numstat, and the lines it removed and added."""
    stat = git("--git-dir", str(remote_path(url)), "show", "--numstat", "--format=", "HEAD")
    diff = git("--git-dir", str(remote_path(url)), "show", "--format=", "--unified=0", "HEAD")
    return stat, [l for l in diff.splitlines() if l[:1] in "+-" and not l.startswith(("+++", "---"))]


def install_hook(url: str, name: str, script: str) -> None:
    hook = remote_path(url) / "hooks" / name
    hook.write_text(script)
    hook.chmod(0o755)


def _write(root: Path, files: dict) -> None:
    for path, text in files.items():
        target = root / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.fixture
def bare_remote(tmp_path):
    """Factory: a bare repository seeded with one commit of the given files; returns its URL."""
    counter = itertools.count(1)

    def make_remote(files: Union[dict, Path], branch: str = "main", executables=(),
                    symlinks: Optional[dict] = None) -> str:
        n = next(counter)
        bare, seed = tmp_path / f"remote{n}.git", tmp_path / f"seed{n}"
        git("init", "--quiet", "--bare", "--initial-branch", branch, str(bare))
        git("init", "--quiet", "--initial-branch", branch, str(seed))
        if isinstance(files, Path):
            shutil.copytree(files, seed, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
        else:
            _write(seed, files)
        for path, target in (symlinks or {}).items():
            (seed / path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, seed / path)
        git("add", "--all", cwd=seed)
        for path in executables:
            git("update-index", "--chmod=+x", "--", path, cwd=seed)
        git("commit", "--quiet", "--allow-empty", "-m", "Seed the repository", cwd=seed)
        git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=seed)
        shutil.rmtree(seed)
        return bare.as_uri()

    return make_remote


@pytest.fixture
def external_commit():
    """Push a commit to a remote from a second clone, as someone other than Ferry would."""

    def push(url: str, files: dict, message: str = "external change", branch: str = "main") -> str:
        with tempfile.TemporaryDirectory(prefix="external-") as folder:
            clone = Path(folder) / "clone"
            git("clone", "--quiet", "--branch", branch, url, str(clone))
            _write(clone, files)
            git("add", "--all", cwd=clone)
            git("commit", "--quiet", "-m", message, cwd=clone, author=EXTERNAL_AUTHOR)
            git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone)
            return git("rev-parse", "HEAD", cwd=clone)

    return push
