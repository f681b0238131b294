"""A repository's forge (GitHub, GitLab) in the settings: where its API is, which repository, how
Ferry authenticates there, and how its pull requests are opened and followed.

The token, the GitHub App's private key and the webhook secret come from environment variables
(or ``<VARIABLE>_FILE``), never from the settings file; they go to the forge's API host only,
and over plain HTTP only to this machine unless ``allow_plain_http_credentials`` says otherwise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .addresses import is_loopback
from .credentials import mapping, read_secret, string
from .errors import SettingsError

KINDS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_USER = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class GitHubApp:
    """A GitHub App installed on the repository: installation tokens are minted from its key."""

    app_id: str
    installation_id: str
    private_key: str = field(repr=False)  # PEM text, read from ``private_key_file``


@dataclass(frozen=True)
class ForgeSettings:
    kind: str  # "github" or "gitlab"
    api_url: str  # https://api.github.com, https://HOST/api/v3 (Enterprise), https://HOST/api/v4
    repository: str  # GitHub's owner/name, GitLab's project path
    token: str = field(default="", repr=False)  # a fine-grained/classic or project/group token
    token_variable: str = "GITOPS_FORGE_TOKEN"
    app: Optional[GitHubApp] = field(default=None, repr=False)
    webhook_secret: str = field(default="", repr=False)  # "" = no webhook: Ferry polls
    webhook_secret_variable: str = "GITOPS_FORGE_WEBHOOK_SECRET"
    labels: tuple = ()
    reviewers: tuple = ()
    auto_merge: bool = False
    poll_seconds: float = 60.0

    def secrets(self) -> list:
        """Every secret value, for scrubbing text before it reaches a person or a log."""
        return [s for s in (self.token, self.webhook_secret, self.app.private_key if self.app else "") if s]


def parse_forge(value, where: str, environ: Mapping[str, str], base: Path,
                plain_http_anywhere: bool = False) -> ForgeSettings:
    conf = mapping(value, where, {"kind", "api_url", "repository", "token_variable", "app",
                                  "webhook_secret_variable", "labels", "reviewers", "auto_merge",
                                  "poll_seconds"})
    kind = string(conf.get("kind"), f"{where}.kind")
    if kind not in KINDS:
        raise SettingsError(f"`{where}.kind` must be `github` or `gitlab`, not `{kind[:40]}`.")
    api_url = string(conf.get("api_url", KINDS[kind]), f"{where}.api_url").rstrip("/")
    parts = urlsplit(api_url)
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise SettingsError(f"`{where}.api_url` must be the API's https:// address without credentials "
                            "(GitHub Enterprise: https://HOST/api/v3).")
    if parts.scheme == "http" and not plain_http_anywhere and not is_loopback(parts.hostname):
        raise SettingsError(f"`{where}.api_url` is plain HTTP to {parts.hostname}, which is not this "
                            "machine: the forge's token would travel in clear. Use https://.")
    repository = string(conf.get("repository"), f"{where}.repository").strip("/")
    if not _REPOSITORY.match(repository) or (kind == "github" and repository.count("/") != 1):
        raise SettingsError(f"`{where}.repository` must be the repository's `owner/name` on GitHub "
                            "(GitLab: the project's path, `group/project`).")
    token_variable = _variable(conf, "token_variable", ForgeSettings.token_variable, where)
    secret_variable = _variable(conf, "webhook_secret_variable", ForgeSettings.webhook_secret_variable, where)
    app = _app(conf["app"], f"{where}.app", base, environ) if "app" in conf else None
    if app is not None and kind != "github":
        raise SettingsError(f"`{where}.app` is a GitHub App: GitLab takes a project or group access token.")
    token = read_secret(environ, token_variable) if app is None else ""
    if app is None and not token:
        raise SettingsError(f"No token for the forge of `{where}`: set {token_variable} (or "
                            f"{token_variable}_FILE), or give a GitHub App in `{where}.app`.")
    auto_merge = conf.get("auto_merge", False)
    if not isinstance(auto_merge, bool):
        raise SettingsError(f"`{where}.auto_merge` must be true or false.")
    poll = conf.get("poll_seconds", ForgeSettings.poll_seconds)
    if not isinstance(poll, (int, float)) or isinstance(poll, bool) or not 0 < poll <= 3600:
        raise SettingsError(f"`{where}.poll_seconds` must be a number of seconds between 0 and 3600.")
    return ForgeSettings(kind, api_url, repository, token, token_variable, app,
                         read_secret(environ, secret_variable), secret_variable,
                         _names(conf.get("labels", []), f"{where}.labels", re.compile(r"^[^\x00-\x1f,]{1,50}$")),
                         _names(conf.get("reviewers", []), f"{where}.reviewers", _USER),
                         auto_merge, float(poll))


def _variable(conf: dict, key: str, default: str, where: str) -> str:
    name = string(conf.get(key, default), f"{where}.{key}")
    if not _VARIABLE.match(name):
        raise SettingsError(f"`{where}.{key}` must name an environment variable (upper-case letters, "
                            "digits, `_`).")
    return name


def _app(value, where: str, base: Path, environ: Mapping[str, str]) -> GitHubApp:
    conf = mapping(value, where, {"id", "installation_id", "private_key_file", "private_key_variable"})
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
        variable = string(conf.get("private_key_variable", "GITOPS_GITHUB_APP_KEY"), f"{where}.private_key_variable")
        key = read_secret(environ, variable)
    if "PRIVATE KEY-----" not in key:
        raise SettingsError(f"`{where}` needs the App's private key (PEM, as GitHub downloads it) in "
                            "`private_key_file` or the variable `private_key_variable` names.")
    return GitHubApp(ids[0], ids[1], key)


def _names(value, where: str, pattern) -> tuple:
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v.strip()) for v in value):
        raise SettingsError(f"`{where}` must be a list of names.")
    return tuple(v.strip() for v in value)
