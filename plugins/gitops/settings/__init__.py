"""Ferry's GitOps settings: a YAML file named by ``GITOPS_CONFIG``, validated on load.

Secrets never live in that file; they come from environment variables, or from files named by
``<VARIABLE>_FILE`` (the way Kubernetes mounts secrets).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

# RegistryCredentials, GitCredentials and flux_token_variable are imported from here too.
from ..credentials import (GitCredentials, RegistryCredentials, Secrets,  # noqa: F401
                          flux_token_variable, git_credentials, mapping as _mapping,
                          plain_http_allowed, prometheus_credentials, read_secrets, receiver_token_variable,
                          registry_credentials, string as _string)
from ..errors import SettingsError, UnknownEnvironment, UnreadableDocument
from ..model import ChartLocation
from ..forge_settings import ForgeSettings, parse_forge
from ..safeyaml import load_typed
from ..guard.policy import Policy, parse_policy
from ..guard.soak import Verify, parse_verify
from . import sections
# The sections are imported from here too.
from .sections import (CommitSettings, FluxSettings, HelmIndexSettings, PreviewSettings,  # noqa: F401
                       SshSettings, WriteSettings)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class RepoSettings:
    url: str
    branch: str = "main"
    # Where its pull requests go (environments whose `write` is `pull-request`); not part of
    # the repository's identity (one workspace per url and branch).
    forge: Optional[ForgeSettings] = field(default=None, compare=False)


@dataclass(frozen=True)
class RegistrySettings:
    """An OCI location under which charts live as ``<url>/<chart>``, or a Helm repository
    (``https://…``) whose ``index.yaml`` lists them."""

    url: str  # oci://host[:port][/path] or https://host[:port][/path]
    insecure: bool = False

    def location(self, chart: str) -> ChartLocation:
        parts = urlsplit(self.url)
        prefix = parts.path.strip("/")
        return ChartLocation(parts.netloc, f"{prefix}/{chart}" if prefix else chart,
                             self.insecure or parts.scheme == "http", parts.scheme)


@dataclass(frozen=True)
class EnvironmentSettings:
    name: str
    paths: tuple  # repo-relative paths or globs
    repo: RepoSettings
    aliases: tuple = ()
    policy: Policy = Policy()
    notify: str = ""  # chat channel for Flux events no command waits for ("" = none)
    show_values: str = "anywhere"  # or "channels": Helm values and pending diffs only in policy.channels
    verify: Optional[Verify] = None  # what healthy means after Flux reports a change live (guard.soak)
    flux_receiver: str = ""  # the URL of the Flux Receiver told of each push ("" = none)
    write: str = "push"  # or "pull-request": a branch of Ferry's and a pull request into the branch

    def shows_values_in(self, channels: tuple) -> bool:
        """Whether this environment's Helm values (``!diff <app>``) and the diffs of its pending
        changes (``!pending``) may be shown in the conversation ``channels`` name (() = a DM)."""
        return self.show_values == "anywhere" or bool(set(channels) & set(self.policy.channels or ()))


@dataclass(frozen=True)
class AppSettings:
    chart: Optional[str] = None
    registry: Optional[RegistrySettings] = None
    track: Optional[str] = None  # "chart", "image" or "image:<container>": what `!deploy` changes


@dataclass(frozen=True)
class Settings:
    repo: RepoSettings
    environments: tuple  # tuple[EnvironmentSettings, ...] in promotion order
    registry: Optional[RegistrySettings] = None
    apps: Mapping = field(default_factory=dict)  # app name -> AppSettings
    data_dir: str = "data"
    secrets: Secrets = field(default_factory=Secrets)
    registry_timeout: float = 5.0
    flux: FluxSettings = field(default_factory=FluxSettings)
    helm_index: HelmIndexSettings = field(default_factory=HelmIndexSettings)
    ssh: SshSettings = field(default_factory=SshSettings)
    registry_busy_seconds: float = 5.0  # a command waits this long for its turn at a busy source
    write: WriteSettings = field(default_factory=WriteSettings)
    commit: CommitSettings = field(default_factory=CommitSettings)
    preview: PreviewSettings = field(default_factory=PreviewSettings)
    registry_ca_file: str = ""  # PEM CA certificates trusted for HTTPS chart sources, besides the default ones

    @property
    def environment_names(self) -> list[str]:
        return [e.name for e in self.environments]

    def environment(self, name: str) -> EnvironmentSettings:
        """The environment called ``name`` or one of its aliases, case-insensitively."""
        wanted = (name or "").strip().lower()
        for env in self.environments:
            if wanted == env.name or wanted in env.aliases:
                return env
        raise UnknownEnvironment(name, [n for e in self.environments for n in (e.name, *e.aliases)])

    def previous(self, env: EnvironmentSettings) -> Optional[EnvironmentSettings]:
        i = self.environments.index(env)
        return self.environments[i - 1] if i > 0 else None

    def repos(self) -> list[RepoSettings]:
        """Distinct repositories, in environment order."""
        return list(dict.fromkeys(e.repo for e in self.environments))


def load_settings(path: Optional[str] = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate the settings file (default: ``$GITOPS_CONFIG``)."""
    path = path or environ.get("GITOPS_CONFIG")
    if not path:
        raise SettingsError("GITOPS_CONFIG is not set: point it at Ferry's settings file.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"Cannot read settings file {path}: {e.strerror}.") from None
    try:
        docs = load_typed(text, f"Settings file {path}")
    except UnreadableDocument as e:
        raise SettingsError(f"Settings file {path} {e.problem}.") from None
    raw = docs[0] if len(docs) == 1 else docs or None  # several documents: not one mapping
    base = Path(path).resolve().parent
    return parse_settings(raw, environ, base)


def parse_settings(raw, environ: Mapping[str, str] = os.environ, base: Path = Path(".")) -> Settings:
    """Validate the settings' plain data; every error names the key and says why."""
    root = _mapping(raw, "the settings file", {"repo", "registry", "environments", "apps", "data_dir",
                                                "registry_timeout", "flux", "registry_credentials",
                                                "helm_index", "git_credentials", "ssh",
                                                "registry_busy_seconds", "write", "commit",
                                                "allow_plain_http_credentials", "preview",
                                                "registry_ca_file", "prometheus_credentials"})
    for key in ("repo", "environments"):
        if key not in root:
            raise SettingsError(f"`{key}` is missing from the settings file.")
    plain_http_anywhere = root.get("allow_plain_http_credentials", False)
    if not isinstance(plain_http_anywhere, bool):
        raise SettingsError("`allow_plain_http_credentials` must be true or false.")
    forge = lambda value, where: parse_forge(value, where, environ, base, plain_http_anywhere)
    repo = _repo(root["repo"], "repo", forge=forge)
    registry = _registry(root["registry"], "registry") if root.get("registry") is not None else None

    envs_raw = root["environments"]
    if not isinstance(envs_raw, list) or not envs_raw:
        raise SettingsError("`environments` must be a list of {name, path}, in promotion order.")
    environments, seen = [], {}
    for i, item in enumerate(envs_raw):
        where = f"environments[{i}]"
        env = _mapping(item, where, {"name", "path", "repo", "branch", "aliases", "policy",
                                          "notify", "show_values", "verify", "on_failure",
                                          "promote_after", "flux_receiver", "write"})
        name = _name(env.get("name"), f"{where}.name")
        if "path" not in env:
            raise SettingsError(f"`{where}.path` is missing: where environment {name}'s manifests live.")
        paths = env["path"] if isinstance(env["path"], list) else [env["path"]]
        if not paths or not all(isinstance(p, str) and p.strip() for p in paths):
            raise SettingsError(f"`{where}.path` must be a path, a glob or a list of them.")
        for p in paths:
            if p.startswith("/") or ".." in Path(p).parts:
                raise SettingsError(f"`{where}.path` `{p}` must stay inside the repository.")
        env_repo = repo
        if "repo" in env:
            env_repo = _repo(env["repo"], f"{where}.repo", default_branch=repo.branch, forge=forge)
            if env_repo.url == repo.url and env_repo.forge is None:
                env_repo = replace(env_repo, forge=repo.forge)
        if "branch" in env:
            env_repo = replace(env_repo, branch=_string(env["branch"], f"{where}.branch"))
        aliases_raw = env.get("aliases", [])
        if not isinstance(aliases_raw, list):
            raise SettingsError(f"`{where}.aliases` must be a list of names.")
        aliases = tuple(_name(a, f"{where}.aliases") for a in aliases_raw)
        for n in (name, *aliases):
            if n in seen:
                raise SettingsError(f"`{where}`: the name `{n}` is already used by {seen[n]}.")
            seen[n] = f"environment {name}"
        policy = parse_policy(env.get("policy"), f"{where}.policy", name, aliases)
        environments.append(EnvironmentSettings(name, tuple(p.strip().strip("/") or "." for p in paths),
                                                env_repo, aliases, policy,
                                                _string(env["notify"], f"{where}.notify") if "notify" in env else "",
                                                _show_values(env.get("show_values", "anywhere"), where, policy),
                                                parse_verify(env, where),
                                                _receiver(env.get("flux_receiver"), f"{where}.flux_receiver"),
                                                _write_mode(env.get("write", "push"), where, env_repo, policy)))

    apps = {}
    for app, conf in (_mapping(root.get("apps") or {}, "apps", None)).items():
        where = f"apps.{app}"
        conf = _mapping(conf, where, {"chart", "registry", "track"})
        apps[str(app)] = AppSettings(
            chart=_string(conf["chart"], f"{where}.chart") if "chart" in conf else None,
            registry=_registry(conf["registry"], f"{where}.registry") if "registry" in conf else None,
            track=_track(conf["track"], f"{where}.track") if "track" in conf else None,
        )
    data_dir = _string(root.get("data_dir", environ.get("GITOPS_DATA_DIR", "data")), "data_dir")
    timeout = root.get("registry_timeout", 5.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        raise SettingsError("`registry_timeout` must be a number of seconds between 0 and 120.")
    busy = root.get("registry_busy_seconds", 5.0)
    if not isinstance(busy, (int, float)) or isinstance(busy, bool) or not 0 < busy <= 600:
        raise SettingsError("`registry_busy_seconds` must be a number of seconds between 0 and 600.")
    secrets = read_secrets(environ, [e.name for e in environments])
    secrets = replace(
        secrets, registries=registry_credentials(root.get("registry_credentials"), registry, environ),
        git_hosts=git_credentials(root.get("git_credentials"), repo, secrets.git_token, environ),
        prometheus=prometheus_credentials(root.get("prometheus_credentials"), environ))
    plain_http_allowed(secrets, [e.repo for e in environments], plain_http_anywhere)
    for i, env in enumerate(environments):
        if env.flux_receiver and not secrets.receiver_token(env.name):
            raise SettingsError(f"`environments[{i}].flux_receiver` is set but "
                                f"{receiver_token_variable(env.name)} (or _FILE) is not: the `token` of "
                                "the Receiver's Secret, which signs each call.")
    return Settings(repo, tuple(environments), registry, apps, str(base / data_dir), secrets,
                    float(timeout), sections.parse_flux(root.get("flux")),
                    sections.parse_helm_index(root.get("helm_index")), sections.parse_ssh(root.get("ssh"), base),
                    float(busy), sections.parse_write(root.get("write")),
                    sections.parse_commit(root.get("commit"), environ, base),
                    sections.parse_preview(root.get("preview")),
                    sections.parse_ca_file(root.get("registry_ca_file"), base))


def _receiver(value, where: str) -> str:
    """A Flux Receiver's webhook URL (``{url}`` or the URL alone), as its ``status.webhookPath``
    names it under notification-controller's address: ``http(s)://host[:port]/hook/<digest>``."""
    if value is None:
        return ""
    # `token` is known only to be refused: secrets come from the environment (mapping says so).
    url = _string(_mapping(value, where, {"url", "token"}).get("url") if isinstance(value, dict) else value,
                  f"{where}.url" if isinstance(value, dict) else where)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc \
            or not parts.path.startswith("/hook/") or parts.query or parts.fragment:
        raise SettingsError(f"`{where}` must be the Receiver's webhook URL, "
                            "http(s)://<notification-controller's webhook-receiver>/hook/<digest> "
                            "(`kubectl get receiver <name> -o jsonpath='{.status.webhookPath}'`), "
                            "no credentials in it.")
    return url


def _write_mode(value, where: str, repo: RepoSettings, policy: Policy) -> str:
    if value not in ("push", "pull-request"):
        raise SettingsError(f"`{where}.write` must be `push` (the default: Ferry pushes to the branch) "
                            "or `pull-request` (a branch and a pull request into it).")
    if value == "pull-request" and repo.forge is None:
        raise SettingsError(f"`{where}.write: pull-request` needs the repository's `forge` (kind, "
                            "repository, its token): where the pull requests are opened.")
    if policy.review and value != "pull-request":
        raise SettingsError(f"`{where}.policy.approval: pull-request` needs `{where}.write: "
                            "pull-request`: the forge's review is the approval.")
    return value


def _show_values(value, where: str, policy: Policy) -> str:
    if value not in ("anywhere", "channels"):
        raise SettingsError(f"`{where}.show_values` must be `anywhere` (the default) or `channels` (Helm "
                            "values and pending diffs only in the environment's `policy.channels`).")
    if value == "channels" and not policy.channels:
        raise SettingsError(f"`{where}.show_values: channels` needs `{where}.policy.channels`: the "
                            "channels (by ID) where its values may be shown.")
    return value


_TRACK = re.compile(r"^(chart|image(:[A-Za-z0-9][A-Za-z0-9_./-]{0,62})?)$")


def _track(value, where: str) -> str:
    text = _string(value, where)
    if not _TRACK.match(text):
        raise SettingsError(f"`{where}` must be `chart`, `image` or `image:<container>`, not `{text[:40]}`.")
    return text


def _name(value, where: str) -> str:
    text = _string(value if not isinstance(value, (int, float)) else str(value), where).lower()
    if not _NAME.match(text):
        raise SettingsError(f"`{where}` `{text}` must be lowercase letters, digits, `-`, `_` or `.`.")
    return text


def _repo(value, where: str, default_branch: str = "main", forge=None) -> RepoSettings:
    if isinstance(value, str):
        value = {"url": value}
    repo = _mapping(value, where, {"url", "branch", "forge"})
    url = _string(repo.get("url"), f"{where}.url")
    if re.match(r"^https?://", url, re.I) and "@" in urlsplit(url).netloc:
        # A user, a token or a password in the URL: git would send it, and show it in errors.
        raise SettingsError(f"`{where}.url` holds credentials: give the token in GITOPS_GIT_TOKEN "
                            "(or `git_credentials` for another host) instead.")
    return RepoSettings(url, _string(repo.get("branch", default_branch), f"{where}.branch"),
                        forge(repo["forge"], f"{where}.forge") if "forge" in repo and forge else None)


def _registry(value, where: str) -> RegistrySettings:
    if isinstance(value, str):
        value = {"url": value}
    reg = _mapping(value, where, {"url", "insecure"})
    url = _string(reg.get("url"), f"{where}.url")
    if not url.startswith(("oci://", "https://", "http://")) or not urlsplit(url).netloc:
        raise SettingsError(f"`{where}.url` must look like oci://host[:port]/path (or a Helm "
                            f"repository's https://host/path), not `{url}`.")
    if "@" in urlsplit(url).netloc:
        raise SettingsError(f"`{where}.url` holds credentials: use `registry_credentials` instead.")
    insecure = reg.get("insecure", False)
    if not isinstance(insecure, bool):
        raise SettingsError(f"`{where}.insecure` must be true or false.")
    return RegistrySettings(url.rstrip("/"), insecure)
