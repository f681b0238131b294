"""A repository's forge (GitHub, GitLab) in the settings: where its API is, which repository, how
Ferry authenticates there, and how its pull requests are opened and followed.

Secrets never live in the settings file: with ``env: NAME`` (default ``GITHUB`` or ``GITLAB``)
the token is ``GITOPS_FORGE_<NAME>_TOKEN`` and the webhook secret
``GITOPS_FORGE_<NAME>_WEBHOOK_SECRET`` (each or its ``_FILE``); a GitHub App's private key is a
file (``app.private_key_file``) or ``GITOPS_FORGE_<NAME>_APP_KEY``. They go to the forge's API
host only, and over plain HTTP only to this machine unless ``allow_plain_http_credentials``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .addresses import is_loopback
from .credentials import mapping, read_secret, string
from .errors import SettingsError, shown

GITHUB_COM = "https://api.github.com"
GITLAB_COM = "https://gitlab.com/api/v4"
# The pull-request flow's own keys, the same for every forge.
FLOW_KEYS = frozenset({"kind", "labels", "reviewers", "auto_merge", "poll_interval"})
OWN_KEYS = frozenset({"api_url", "project", "repository", "env", "auth", "timeout"})  # GitLab's
GITHUB_KEYS = frozenset({"api_url", "repository", "env", "app", "timeout"})
_ENV = re.compile(r"^[A-Z0-9_]{1,40}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_USER = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_LABEL = re.compile(r"^[^\x00-\x1f,]{1,50}$")


@dataclass(frozen=True)
class GitHubApp:
    """A GitHub App installed on the repository: installation tokens are minted from its key."""

    app_id: str
    installation_id: str
    private_key: str = field(repr=False)  # PEM text


@dataclass(frozen=True)
class ForgeSettings:
    kind: str  # "github" or "gitlab"
    api_url: str  # https://api.github.com, https://HOST/api/v3 (Enterprise), https://HOST/api/v4
    repository: str  # GitHub's owner/name, GitLab's project path (or number)
    token: str = field(default="", repr=False)  # a fine-grained/classic token, a project/group token
    token_variable: str = "GITOPS_FORGE_GITHUB_TOKEN"
    app: Optional[GitHubApp] = field(default=None, repr=False)
    webhook_secret: str = field(default="", repr=False)  # "" = no webhook: Ferry polls
    webhook_secret_variable: str = "GITOPS_FORGE_GITHUB_WEBHOOK_SECRET"
    labels: tuple = ()
    reviewers: tuple = ()
    auto_merge: bool = False
    poll_seconds: float = 60.0  # `poll_interval`
    timeout: float = 10.0  # seconds per request
    auth: str = "private-token"  # GitLab: private-token (project/group tokens) or bearer (OAuth)


def parse_forge(value, where: str, environ: Mapping[str, str], base: Path,
                plain_http_anywhere: bool = False) -> ForgeSettings:
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind not in ("github", "gitlab"):
        raise SettingsError(f"`{where}.kind` must be `github` or `gitlab`, not `{shown(kind)}`.")
    labels, reviewers, auto_merge, poll = _flow(value, where)
    if kind == "gitlab":
        own = parse_gitlab_forge(value, environ, where, plain_http_anywhere)
        env = value.get("env", "GITLAB")
        return ForgeSettings("gitlab", own["api_url"], own["project"], own["token"], own["token_variable"], None,
                             own["webhook_secret"], f"GITOPS_FORGE_{env}_WEBHOOK_SECRET", labels, reviewers,
                             auto_merge, poll, own["timeout"], own["auth"])
    conf = mapping(value, where, GITHUB_KEYS | FLOW_KEYS)
    api_url = string(conf.get("api_url", GITHUB_COM), f"{where}.api_url").rstrip("/")
    parts = urlsplit(api_url)
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise SettingsError(f"`{where}.api_url` must be the API's https:// address without credentials "
                            "(GitHub Enterprise: https://HOST/api/v3).")
    if parts.scheme == "http" and not plain_http_anywhere and not is_loopback(parts.hostname):
        raise SettingsError(f"`{where}.api_url` is plain HTTP to {parts.hostname}, which is not this "
                            "machine: the token would travel in the clear. Use https://, or set "
                            "`allow_plain_http_credentials: true` if the network is yours.")
    repository = string(conf.get("repository"), f"{where}.repository").strip("/")
    if not _REPOSITORY.match(repository):
        raise SettingsError(f"`{where}.repository` must be the repository's `owner/name` on GitHub.")
    env = string(conf.get("env", "GITHUB"), f"{where}.env")
    if not _ENV.match(env):
        raise SettingsError(f"`{where}.env` must be upper-case letters, digits or `_` (GITHUB): the "
                            "token is GITOPS_FORGE_<ENV>_TOKEN.")
    token_variable = f"GITOPS_FORGE_{env}_TOKEN"
    app = _app(conf["app"], f"{where}.app", base, environ, env) if "app" in conf else None
    token = read_secret(environ, token_variable) if app is None else ""
    if app is None and not token:
        raise SettingsError(f"`{where}` needs GitHub's token in {token_variable} (or {token_variable}_FILE), "
                            f"or a GitHub App in `{where}.app`.")
    return ForgeSettings("github", api_url, repository, token, token_variable, app,
                         read_secret(environ, f"GITOPS_FORGE_{env}_WEBHOOK_SECRET"),
                         f"GITOPS_FORGE_{env}_WEBHOOK_SECRET", labels, reviewers, auto_merge, poll,
                         _timeout(conf.get("timeout", 10), where))


def _flow(value: dict, where: str) -> tuple:
    """The flow's keys: labels, reviewers (forge user names), auto_merge, poll_interval."""
    labels = _names(value.get("labels", []), f"{where}.labels", _LABEL)
    reviewers = _names(value.get("reviewers", []), f"{where}.reviewers", _USER)
    auto_merge = value.get("auto_merge", False)
    if not isinstance(auto_merge, bool):
        raise SettingsError(f"`{where}.auto_merge` must be true or false.")
    poll = value.get("poll_interval", ForgeSettings.poll_seconds)
    if not isinstance(poll, (int, float)) or isinstance(poll, bool) or not 0 < poll <= 3600:
        raise SettingsError(f"`{where}.poll_interval` must be a number of seconds between 0 and 3600.")
    return labels, reviewers, auto_merge, float(poll)


def _timeout(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 120:
        raise SettingsError(f"`{where}.timeout` must be seconds, more than 0 and at most 120.")
    return float(value)


def _app(value, where: str, base: Path, environ: Mapping[str, str], env: str) -> GitHubApp:
    conf = mapping(value, where, {"id", "installation_id", "private_key_file"})
    ids = []
    for key in ("id", "installation_id"):
        raw = conf.get(key)
        if isinstance(raw, bool) or not re.fullmatch(r"[0-9]{1,20}", str(raw if raw is not None else "")):
            raise SettingsError(f"`{where}.{key}` must be the App's numeric {key.replace('_', ' ')}.")
        ids.append(str(raw))
    if "private_key_file" in conf:
        path = base / string(conf["private_key_file"], f"{where}.private_key_file")
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SettingsError(f"Cannot read `{where}.private_key_file` ({path}): {e.strerror}.") from None
    else:
        key = read_secret(environ, f"GITOPS_FORGE_{env}_APP_KEY")
    if "PRIVATE KEY-----" not in key:
        raise SettingsError(f"`{where}` needs the App's private key (PEM, as GitHub gives it) in "
                            f"`private_key_file` or GITOPS_FORGE_{env}_APP_KEY (or its _FILE).")
    return GitHubApp(ids[0], ids[1], key)


def _names(value, where: str, pattern) -> tuple:
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v.strip()) for v in value):
        raise SettingsError(f"`{where}` must be a list of names.")
    return tuple(v.strip() for v in value)


def parse_gitlab_forge(raw, environ: Mapping[str, str], where: str = "forge",
                       allow_plain_http_credentials: bool = False) -> dict:
    """The ``GitLab`` constructor's arguments from a settings ``forge:`` mapping (``kind: gitlab``):
    ``api_url`` (default GitLab.com's), ``project`` (or ``repository``: ``group/sub/project``),
    ``env`` (default ``GITLAB``: the token in ``GITOPS_FORGE_<ENV>_TOKEN``, the webhook secret in
    ``GITOPS_FORGE_<ENV>_WEBHOOK_SECRET``, each or its ``_FILE``), ``auth`` (``private-token`` or
    ``bearer`` for an OAuth token), ``timeout`` (seconds). The flow's own keys pass."""
    secretish = sorted(str(k) for k in (raw if isinstance(raw, dict) else {})
                       if str(k).lower() in ("token", "secret", "webhook_secret", "password"))
    if secretish:
        raise SettingsError(f"`{where}.{secretish[0]}`: secrets come from environment variables "
                            "(GITOPS_FORGE_<ENV>_TOKEN, GITOPS_FORGE_<ENV>_WEBHOOK_SECRET).")
    entry = mapping(raw, where, OWN_KEYS | FLOW_KEYS)
    api_url = string(entry.get("api_url", GITLAB_COM), f"{where}.api_url").rstrip("/")
    match = re.match(r"^(https?)://([^/@?#]+)(/[^?#]*)?$", api_url, re.I)
    if not match:
        raise SettingsError(f"`{where}.api_url` must be GitLab's API URL, like {GITLAB_COM} or "
                            "https://gitlab.example.com/api/v4.")
    host = match.group(2).rsplit(":", 1)[0].strip("[]")
    if match.group(1).lower() == "http" and not is_loopback(host) and not allow_plain_http_credentials:
        raise SettingsError(f"`{where}.api_url` is plain HTTP to {host}, which is not this machine: the "
                            "token would travel in the clear. Use https://, or set "
                            "`allow_plain_http_credentials: true` if the network is yours.")
    if "project" in entry and "repository" in entry:
        raise SettingsError(f"`{where}` names both `project` and `repository`: keep `project`.")
    project = string(entry.get("project", entry.get("repository")), f"{where}.project").strip("/")
    if not re.match(r"^(\d+|[\w][\w.-]*(/[\w][\w.-]*)+)$", project):
        raise SettingsError(f"`{where}.project` must be the project's path (group/sub/project) or its "
                            f"number, not `{shown(project)}`.")
    env = string(entry.get("env", "GITLAB"), f"{where}.env")
    if not _ENV.match(env):
        raise SettingsError(f"`{where}.env` must be upper-case letters, digits or `_` (GITLAB): the "
                            "token is GITOPS_FORGE_<ENV>_TOKEN.")
    auth = entry.get("auth", "private-token")
    if auth not in ("private-token", "bearer"):
        raise SettingsError(f"`{where}.auth` must be `private-token` (project or group access token) "
                            "or `bearer` (OAuth token).")
    timeout = entry.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
        raise SettingsError(f"`{where}.timeout` must be seconds, more than 0 and at most 120.")
    variable = f"GITOPS_FORGE_{env}_TOKEN"
    token = read_secret(environ, variable)
    if not token:
        raise SettingsError(f"`{where}` needs GitLab's token in {variable} (or {variable}_FILE): a "
                            "project access token with the `api` scope and the Developer role.")
    return {"api_url": api_url, "project": project, "token": token, "auth": auth,
            "timeout": float(timeout), "token_variable": variable,
            "webhook_secret": read_secret(environ, f"GITOPS_FORGE_{env}_WEBHOOK_SECRET")}
