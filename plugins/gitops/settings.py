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

from .errors import SettingsError, UnknownEnvironment, UnreadableDocument
from .model import ChartLocation
from .safeyaml import load_typed
from .guard.policy import Policy, parse_policy

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class RepoSettings:
    url: str
    branch: str = "main"


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


@dataclass(frozen=True)
class AppSettings:
    chart: Optional[str] = None
    registry: Optional[RegistrySettings] = None
    track: Optional[str] = None  # "chart", "image" or "image:<container>": what `!deploy` changes


@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials bound to one registry host: sent to that host (``host[:port]`` exactly as in
    ``oci://`` URLs) and to a token realm on the same host name or on one of ``token_hosts``."""

    host: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    token_hosts: tuple = ()  # other host names whose token realm may receive them (auth.docker.io)
    variables: str = ""  # where they came from, for messages: "GITOPS_REGISTRY_GHCR_USERNAME/PASSWORD"


@dataclass(frozen=True)
class Secrets:
    git_token: str = field(default="", repr=False)
    git_ssh_key_file: str = ""
    registries: tuple = field(default=(), repr=False)  # tuple[RegistryCredentials, ...], one per host
    flux_tokens: tuple = field(default=(), repr=False)  # ((environment, token), …) for Flux's HMAC

    def values(self) -> list[str]:
        """Every secret value, for scrubbing text before it reaches a person."""
        return [v for v in (self.git_token, *(r.password for r in self.registries),
                            *dict(self.flux_tokens).values()) if v]

    def registry(self, host: str) -> Optional[RegistryCredentials]:
        """The credentials bound to ``host`` (``host[:port]``), or None."""
        return next((r for r in self.registries if r.host == host.lower()), None)

    def flux_token(self, environment: str) -> str:
        """The token Flux signs ``environment``'s events with ("" when none is set)."""
        return dict(self.flux_tokens).get(environment, "")


@dataclass(frozen=True)
class FluxSettings:
    """Flux feedback: how long a pushed change waits for Flux, how old an event may be."""

    timeout_minutes: float = 10.0
    max_age_minutes: float = 15.0


@dataclass(frozen=True)
class HelmIndexSettings:
    """How Ferry reads Helm repositories' ``index.yaml``: at most ``max_mb`` MiB in ``timeout``
    seconds, kept ``cache_seconds`` before asking again (conditionally)."""

    max_mb: float = 64.0
    timeout: float = 30.0
    cache_seconds: float = 300.0


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
                                                "helm_index"})
    for key in ("repo", "environments"):
        if key not in root:
            raise SettingsError(f"`{key}` is missing from the settings file.")
    repo = _repo(root["repo"], "repo")
    registry = _registry(root["registry"], "registry") if root.get("registry") is not None else None

    envs_raw = root["environments"]
    if not isinstance(envs_raw, list) or not envs_raw:
        raise SettingsError("`environments` must be a list of {name, path}, in promotion order.")
    environments, seen = [], {}
    for i, item in enumerate(envs_raw):
        where = f"environments[{i}]"
        env = _mapping(item, where, {"name", "path", "repo", "branch", "aliases", "policy",
                                          "notify"})
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
            env_repo = _repo(env["repo"], f"{where}.repo", default_branch=repo.branch)
        if "branch" in env:
            env_repo = RepoSettings(env_repo.url, _string(env["branch"], f"{where}.branch"))
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
                                                _string(env["notify"], f"{where}.notify") if "notify" in env else ""))

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
    secrets = read_secrets(environ, [e.name for e in environments])
    secrets = replace(secrets, registries=registry_credentials(root.get("registry_credentials"), registry, environ))
    return Settings(repo, tuple(environments), registry, apps, str(base / data_dir), secrets,
                    float(timeout), _flux(root.get("flux")), _helm_index(root.get("helm_index")))


def _helm_index(value) -> HelmIndexSettings:
    conf = _mapping(value if value is not None else {}, "helm_index", {"max_mb", "timeout", "cache_seconds"})
    numbers = {}
    for key, low, high in (("max_mb", 0, 4096), ("timeout", 0, 600), ("cache_seconds", -1, 86400)):
        number = conf.get(key, getattr(HelmIndexSettings, key))
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not low < number <= high:
            raise SettingsError(f"`helm_index.{key}` must be a number between {max(low, 0)} and {high}.")
        numbers[key] = float(number)
    return HelmIndexSettings(**numbers)


_TRACK = re.compile(r"^(chart|image(:[A-Za-z0-9][A-Za-z0-9_./-]{0,62})?)$")


def _track(value, where: str) -> str:
    text = _string(value, where)
    if not _TRACK.match(text):
        raise SettingsError(f"`{where}` must be `chart`, `image` or `image:<container>`, not `{text[:40]}`.")
    return text


def _flux(value) -> FluxSettings:
    conf = _mapping(value if value is not None else {}, "flux", {"timeout_minutes", "max_age_minutes"})
    numbers = {}
    for key, limit in (("timeout_minutes", 24 * 60), ("max_age_minutes", 24 * 60)):
        number = conf.get(key, getattr(FluxSettings, key))
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not 0 < number <= limit:
            raise SettingsError(f"`flux.{key}` must be a number of minutes between 0 and {limit}.")
        numbers[key] = float(number)
    return FluxSettings(**numbers)


def flux_token_variable(environment: str) -> str:
    """``GITOPS_FLUX_TOKEN_<ENV>``: the environment's name upper-cased, other than A-Z0-9 as ``_``."""
    return "GITOPS_FLUX_TOKEN_" + re.sub(r"[^A-Z0-9]", "_", environment.upper())


def read_secret(environ: Mapping[str, str], name: str) -> str:
    """The variable ``name``, or the content of the file ``<name>_FILE`` names ("" when neither)."""
    if environ.get(name):
        return environ[name].strip()
    file = environ.get(f"{name}_FILE")
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SettingsError(f"Cannot read {name}_FILE ({file}): {e.strerror}.") from None
    return ""


def read_secrets(environ: Mapping[str, str], environments=()) -> Secrets:
    """The Git and Flux secrets; registry credentials are bound to hosts by ``registry_credentials``."""
    key_file = environ.get("GITOPS_GIT_SSH_KEY_FILE", "")
    if key_file and not Path(key_file).is_file():
        raise SettingsError(f"GITOPS_GIT_SSH_KEY_FILE names {key_file}, which is not a file.")
    flux = tuple((env, token) for env in environments
                 if (token := read_secret(environ, flux_token_variable(env))))
    return Secrets(read_secret(environ, "GITOPS_GIT_TOKEN"), key_file, (), flux)


_ENV_NAME = re.compile(r"^[A-Z0-9_]{1,40}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")


def registry_credentials(value, registry: Optional[RegistrySettings],
                         environ: Mapping[str, str]) -> tuple:
    """Each registry host's credentials, from ``registry_credentials`` entries
    ``{host, env, token_hosts}`` (secrets in ``GITOPS_REGISTRY_<ENV>_USERNAME``/``_PASSWORD``), and
    the older single pair ``GITOPS_REGISTRY_USERNAME``/``_PASSWORD``, bound to ``registry.url``'s host."""
    found: dict = {}
    if value is not None and not isinstance(value, list):
        raise SettingsError("`registry_credentials` must be a list of {host, env, token_hosts}.")
    for i, item in enumerate(value or []):
        where = f"registry_credentials[{i}]"
        entry = _mapping(item, where, {"host", "env", "token_hosts"})
        host = _string(entry.get("host"), f"{where}.host").lower()
        if not _HOST.match(host):
            raise SettingsError(f"`{where}.host` must be a registry host[:port] as in oci:// URLs, "
                                f"not `{host}`.")
        env = _string(entry.get("env"), f"{where}.env")
        if not _ENV_NAME.match(env):
            raise SettingsError(f"`{where}.env` must be upper-case letters, digits or `_` (GHCR): "
                                f"the secrets are GITOPS_REGISTRY_<ENV>_USERNAME and _PASSWORD.")
        token_hosts = entry.get("token_hosts", [])
        if not isinstance(token_hosts, list) or not all(isinstance(h, str) and _HOST.match(h.lower())
                                                        for h in token_hosts):
            raise SettingsError(f"`{where}.token_hosts` must be a list of host names (auth.docker.io).")
        names = f"GITOPS_REGISTRY_{env}_USERNAME/PASSWORD"
        username = read_secret(environ, f"GITOPS_REGISTRY_{env}_USERNAME")
        password = read_secret(environ, f"GITOPS_REGISTRY_{env}_PASSWORD")
        if not username or not password:
            raise SettingsError(f"`{where}` names {names} for {host}, but they are not both set.")
        if host in found:
            raise SettingsError(f"`{where}.host`: {host} already has credentials.")
        found[host] = RegistryCredentials(host, username, password,
                                          tuple(h.lower().split(":")[0] for h in token_hosts), names)
    username = read_secret(environ, "GITOPS_REGISTRY_USERNAME")
    password = read_secret(environ, "GITOPS_REGISTRY_PASSWORD")
    if username or password:
        if registry is None:
            raise SettingsError("GITOPS_REGISTRY_USERNAME/PASSWORD are set but `registry.url` is not: "
                                "credentials go only to the host they are for; name it in "
                                "`registry_credentials` (host, env).")
        host = urlsplit(registry.url).netloc.lower()
        if not (username and password):
            raise SettingsError("Set both GITOPS_REGISTRY_USERNAME and GITOPS_REGISTRY_PASSWORD "
                                f"(for {host}, the host of `registry.url`).")
        if host in found:
            raise SettingsError(f"GITOPS_REGISTRY_USERNAME/PASSWORD are for {host} (`registry.url`), "
                                "which `registry_credentials` names too: keep one.")
        found[host] = RegistryCredentials(host, username, password, (),
                                          "GITOPS_REGISTRY_USERNAME/PASSWORD")
    return tuple(found.values())


def _mapping(value, where: str, allowed: Optional[set]) -> dict:
    if not isinstance(value, dict):
        raise SettingsError(f"`{where}` must be a mapping of keys to values.")
    if allowed is not None:
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise SettingsError(
                f"`{where}` has an unknown key `{unknown[0]}`; allowed: {', '.join(sorted(allowed))}."
            )
        secretish = [k for k in value if str(k).lower() in ("token", "password", "username", "ssh_key")]
        if secretish:
            raise SettingsError(f"`{where}.{secretish[0]}`: secrets come from environment variables.")
    return value


def _string(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"`{where}` must be a non-empty string.")
    return value.strip()


def _name(value, where: str) -> str:
    text = _string(value if not isinstance(value, (int, float)) else str(value), where).lower()
    if not _NAME.match(text):
        raise SettingsError(f"`{where}` `{text}` must be lowercase letters, digits, `-`, `_` or `.`.")
    return text


def _repo(value, where: str, default_branch: str = "main") -> RepoSettings:
    if isinstance(value, str):
        value = {"url": value}
    repo = _mapping(value, where, {"url", "branch"})
    url = _string(repo.get("url"), f"{where}.url")
    if "@" in urlsplit(url).netloc and ":" in urlsplit(url).netloc.split("@")[0]:
        raise SettingsError(f"`{where}.url` holds a password: use GITOPS_GIT_TOKEN instead.")
    return RepoSettings(url, _string(repo.get("branch", default_branch), f"{where}.branch"))


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
