"""Running git: one bounded subprocess per call, an environment the machine cannot bend, the
token handed over by GIT_ASKPASS to the remote's own host only, secrets scrubbed from what git says.

Git runs as a plain subprocess (not GitPython's wrappers) so that every call gets the same
bounded timeout, a scrubbed stderr and one classification of failures; GitPython's push also
logs the raw stderr itself, where a remote's message could carry a secret.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

TOKEN_VARIABLE = "FERRY_GIT_TOKEN"
USERNAME_VARIABLE = "FERRY_GIT_USERNAME"
ORIGIN_VARIABLE = "FERRY_GIT_ORIGIN"  # scheme://host[:port] the token belongs to

# Settings every git call gets, whatever the machine's global config says: no hooks, no signing
# prompts, no line-ending rewrites, no background gc racing the bot or its tests.
_PINNED_CONFIG = (
    ("core.hooksPath", "/dev/null"),
    ("commit.gpgsign", "false"),
    ("tag.gpgsign", "false"),
    ("core.autocrlf", "false"),
    ("core.fsmonitor", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("log.showSignature", "false"),
    # A redirect is never followed: git's default ("initial") would fetch from, and push to,
    # whatever host the remote's first answer names. Same-host redirects are refused too (git
    # cannot tell them apart): the settings name the repository's current address.
    ("http.followRedirects", "false"),
    # History reads: a commit-graph with changed-path Bloom filters (written after the clone) makes
    # a path-limited `git log` skip the diff of nearly every commit; every fetch adds a layer for
    # what it brought, and a layer written on top of one with Bloom filters gets them too.
    ("core.commitGraph", "true"),
    ("commitGraph.readChangedPaths", "true"),
    ("fetch.writeCommitGraph", "true"),
)
# Variables that would point git at another repository than the clone, or stack config on ours.
_FOREIGN_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                      "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
                      "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT")

# Git calls GIT_ASKPASS with its prompt: "Username for 'https://host': " or
# "Password for 'https://user@host': ". The token goes only to the scheme and host (with port)
# of the remote Ferry was configured with; any other prompt gets nothing and a failure.
_ASKPASS_SCRIPT = """#!/bin/sh
# Ferry's GIT_ASKPASS: answers git from the environment, so the token is in no URL, argv or file,
# and only when git asks for the remote's own host ($FERRY_GIT_ORIGIN).
case "$1" in
  "Username for '"*"': ") kind=username ;;
  "Password for '"*"': ") kind=password ;;
  *) exit 1 ;;
esac
url=${1#*"'"}
url=${url%"': "}
scheme=${url%%://*}
rest=${url#*://}
host=${rest##*@}
asked=$(printf '%s' "$scheme://$host" | tr 'A-Z' 'a-z')  # host names are case-insensitive
[ -n "$FERRY_GIT_ORIGIN" ] && [ "$asked" = "$FERRY_GIT_ORIGIN" ] || exit 1
if [ "$kind" = username ]; then
  printf '%s\\n' "${FERRY_GIT_USERNAME:-x-access-token}"
else
  printf '%s\\n' "$FERRY_GIT_TOKEN"
fi
"""
_askpass_lock = threading.Lock()
_askpass_dir: Optional[Path] = None


class GitCommandFailed(RuntimeError):
    """A local git command failed: a bug or a broken machine, not something a chat user can fix."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        super().__init__(f"git {' '.join(args[:3])} failed ({returncode}): {stderr.strip()[:500]}")
        self.returncode = returncode
        self.stderr = stderr


class Timeout(Exception):
    pass


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: str


def run(args: list, cwd: Path, env: dict, stdin: Optional[bytes], timeout: Optional[float],
        started: Optional[Callable[[subprocess.Popen], None]] = None) -> Result:
    """Run git in its own process group, so a timeout also kills its helpers (ssh, remote-https).
    ``started`` gets the process as soon as it runs (whoever may have to stop it early: ``stop``)."""
    proc = subprocess.Popen(["git", *args], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    if started is not None:
        started(proc)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise Timeout() from None
    return Result(proc.returncode, out, err.decode("utf-8", errors="replace"))


def stop(proc: subprocess.Popen) -> None:
    """Kill a git process ``run`` started, and its helpers (its whole process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def process_env(git_env: dict, url: str) -> dict:
    """The environment of every git process of the workspace on ``url``."""
    env = {k: v for k, v in os.environ.items()
           if k not in _FOREIGN_VARIABLES and not re.match(r"GIT_CONFIG_(KEY|VALUE)_\d+$", k)}
    # ssh as the settings say, never the machine's GIT_SSH(_COMMAND): that would skip the host keys.
    env.pop("GIT_SSH", None)
    env["GIT_SSH_COMMAND"] = ssh_command()
    env.update(git_env)
    env[ORIGIN_VARIABLE] = credential_origin(url)  # empty: askpass answers nobody
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")  # bytes/s; below it for 30 s = dead
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", "30")
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "",  # English errors to classify
                "GIT_LITERAL_PATHSPECS": "1"})
    return _with_config(env, _PINNED_CONFIG)


def credential_origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) remote, the way git names it in its credential
    prompts (host lower-case, the port only when the URL has one); "" for any other remote."""
    if not re.match(r"^https?://", url, re.I):
        return ""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    return f"{parts.scheme.lower()}://{host}" if host else ""


def git_environment(token: str = "", ssh_key_file: str = "", *, username: str = "",
                    known_hosts: str = "", accept_new_host_keys: bool = False,
                    helper_dir: Optional[Path] = None) -> dict[str, str]:
    """The environment for git subprocesses: credentials without putting them in a URL or a file.

    A token is handed to git by a GIT_ASKPASS script that prints it from an environment variable,
    to the remote's own host only (each workspace names it, and is given only its host's token);
    credential helpers are switched off so none of them stores it. SSH goes through
    ``GIT_SSH_COMMAND``: the key, and host keys checked (``ssh_command``). Prompts are always off:
    a bot has no terminal.
    """
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if token:
        env.update({"GIT_ASKPASS": str(_askpass_script(helper_dir)), TOKEN_VARIABLE: token})
        if username:
            env[USERNAME_VARIABLE] = username
        env = _with_config(env, [("credential.helper", "")])
    env["GIT_SSH_COMMAND"] = ssh_command(ssh_key_file, known_hosts, accept_new_host_keys)
    return env


def ssh_command(key_file: str = "", known_hosts: str = "", accept_new: bool = False) -> str:
    """ssh as git runs it: host keys checked against ``known_hosts`` (ssh's own file when "") and
    a host not there refused, unless the settings accept new hosts (trust on first use, then
    checked); no agent, no prompt, no other identity than the key."""
    parts = ["ssh"]
    if key_file:
        parts += ["-i", shlex.quote(str(key_file)), "-o", "IdentitiesOnly=yes"]
    if known_hosts:
        parts += ["-o", f"UserKnownHostsFile={shlex.quote(str(known_hosts))}",
                  "-o", "GlobalKnownHostsFile=/dev/null"]
    parts += ["-o", f"StrictHostKeyChecking={'accept-new' if accept_new else 'yes'}",
              "-o", "ConnectTimeout=10", "-o", "BatchMode=yes"]
    return " ".join(parts)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` without URL credentials and without any of ``secrets`` (longest first)."""
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
        if quote(secret, safe="") != secret:
            text = text.replace(quote(secret, safe=""), "***")
    return text


def remote_host(url: str) -> str:
    """The host a remote URL connects to: ``scheme://[user@]host[:port]/…`` or scp-like
    ``[user@]host:path``; "" for a local path or ``file://``."""
    if "://" in url:
        return urlsplit(url).hostname or ""
    match = re.match(r"^(?:[^@/]+@)?(\[[^]]+\]|[^:/]+):", url)
    return match.group(1).strip("[]") if match and len(match.group(1)) > 1 else ""


def without_userinfo(url: str) -> str:
    if "://" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def _with_config(env: dict, pairs) -> dict:
    """``env`` plus git config entries through GIT_CONFIG_COUNT: they apply to every git command
    and are never written into the clone (git drops them before running a local remote's side)."""
    env = dict(env)
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    for key, value in pairs:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def _askpass_script(helper_dir: Optional[Path]) -> Path:
    global _askpass_dir
    with _askpass_lock:
        if helper_dir is not None:
            folder = Path(helper_dir)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            if _askpass_dir is None or not _askpass_dir.is_dir():
                _askpass_dir = Path(tempfile.mkdtemp(prefix="ferry-git-"))  # mode 0700
            folder = _askpass_dir
        script = folder / "askpass.sh"
        if not script.is_file() or script.read_text() != _ASKPASS_SCRIPT:
            staging = folder / f".askpass.{os.getpid()}"
            staging.write_text(_ASKPASS_SCRIPT)
            staging.chmod(0o700)
            staging.replace(script)
        return script
