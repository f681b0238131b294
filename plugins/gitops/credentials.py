"""The settings' secrets and the one host each may go to: Git tokens per Git host, registry
credentials per registry host, Flux's tokens per environment; and whether any of them may travel
over plain HTTP (only where the settings say a host is plain HTTP, and only to this machine unless
``allow_plain_http_credentials`` says otherwise: never because something in Git says so).

Secrets never live in the settings file; they come from environment variables, or from files
named by ``<VARIABLE>_FILE`` (the way Kubernetes mounts secrets). The key Ferry signs its commits
with is a file too, named by the settings or by ``GITOPS_COMMIT_SIGNING_KEY_FILE``.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .addresses import is_loopback
from .errors import SettingsError

@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials bound to one registry host: sent to that host (``host[:port]`` exactly as in
    ``oci://`` URLs) and to a token realm on the same host name or on one of ``token_hosts``."""

    host: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    token_hosts: tuple = ()  # other host names whose token realm may receive them (auth.docker.io)
    variables: str = ""  # where they came from, for messages: "GITOPS_REGISTRY_GHCR_USERNAME/PASSWORD"
    plain_http: bool = False  # the settings say this host serves plain HTTP: they may go over it


@dataclass(frozen=True)
class GitCredentials:
    """A token bound to one Git host (``host[:port]`` as in its https:// URLs): given to git only
    when it asks for that host."""

    host: str
    token: str = field(repr=False)
    username: str = ""  # "" = x-access-token
    variables: str = ""  # where the token came from, for messages


@dataclass(frozen=True)
class CommitSigning:
    """How git signs every commit Ferry writes: ``ssh`` with the private key in ``key_file``, or
    ``openpgp`` with the key ``key`` of the keyring in ``gnupg_home``."""

    format: str  # "ssh" or "openpgp"
    key_file: str = ""  # ssh: the private key file (absolute)
    key: str = ""  # openpgp: the key's fingerprint or ID
    gnupg_home: str = ""  # openpgp: GNUPGHOME (absolute)

    @property
    def described(self) -> str:
        """Which key, for messages (a path or a key ID, never a secret)."""
        return f"SSH key {self.key_file}" if self.format == "ssh" else \
            f"OpenPGP key {self.key} in {self.gnupg_home}"


@dataclass(frozen=True)
class PrometheusCredentials:
    """Credentials bound to one Prometheus host (``host[:port]`` as in its URL): a bearer token,
    or a username and password (basic auth), sent to that host only."""

    host: str
    token: str = field(default="", repr=False)
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    variables: str = ""  # where they came from, for messages

    @property
    def secret(self) -> str:
        return self.token or self.password


@dataclass(frozen=True)
class Secrets:
    git_token: str = field(default="", repr=False)
    git_ssh_key_file: str = ""
    registries: tuple = field(default=(), repr=False)  # tuple[RegistryCredentials, ...], one per host
    flux_tokens: tuple = field(default=(), repr=False)  # ((environment, token), …) for Flux's HMAC
    git_hosts: tuple = field(default=(), repr=False)  # tuple[GitCredentials, ...], one per host
    prometheus: tuple = field(default=(), repr=False)  # tuple[PrometheusCredentials, ...], one per host
    receiver_tokens: tuple = field(default=(), repr=False)  # ((environment, token), …): Flux Receivers

    def values(self) -> list[str]:
        """Every secret value, for scrubbing text before it reaches a person."""
        return [v for v in (self.git_token, *(r.password for r in self.registries),
                            *(g.token for g in self.git_hosts), *dict(self.flux_tokens).values(),
                            *(p.secret for p in self.prometheus),
                            *dict(self.receiver_tokens).values()) if v]

    def prometheus_host(self, host: str) -> Optional["PrometheusCredentials"]:
        """The credentials bound to the Prometheus ``host`` (``host[:port]``), or None."""
        return next((p for p in self.prometheus if p.host == host.lower()), None)

    def git(self, url: str) -> Optional[GitCredentials]:
        """The credentials of the Git host ``url`` is on (an http(s) URL), or None: the token of
        `repo.url` goes to `repo.url`'s host only, another host's come from `git_credentials`."""
        host = git_host(url)
        return next((g for g in self.git_hosts if g.host == host), None) if host else None

    def registry(self, host: str) -> Optional[RegistryCredentials]:
        """The credentials bound to ``host`` (``host[:port]``), or None."""
        return next((r for r in self.registries if r.host == host.lower()), None)

    def flux_token(self, environment: str) -> str:
        """The token Flux signs ``environment``'s events with ("" when none is set)."""
        return dict(self.flux_tokens).get(environment, "")

    def receiver_token(self, environment: str) -> str:
        """The token ``environment``'s Flux Receiver checks calls with ("" when none is set)."""
        return dict(self.receiver_tokens).get(environment, "")


def flux_token_variable(environment: str) -> str:
    """``GITOPS_FLUX_TOKEN_<ENV>``: the environment's name upper-cased, other than A-Z0-9 as ``_``."""
    return "GITOPS_FLUX_TOKEN_" + re.sub(r"[^A-Z0-9]", "_", environment.upper())


def receiver_token_variable(environment: str) -> str:
    """``GITOPS_FLUX_RECEIVER_TOKEN_<ENV>``: the token of the environment's Flux ``Receiver``
    (its Secret's ``token``), named as ``flux_token_variable`` names Flux's."""
    return "GITOPS_FLUX_RECEIVER_TOKEN_" + re.sub(r"[^A-Z0-9]", "_", environment.upper())


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
    receivers = tuple((env, token) for env in environments
                      if (token := read_secret(environ, receiver_token_variable(env))))
    return Secrets(read_secret(environ, "GITOPS_GIT_TOKEN"), key_file, (), flux,
                   receiver_tokens=receivers)


_ENV_NAME = re.compile(r"^[A-Z0-9_]{1,40}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")


def registry_credentials(value, registry,
                         environ: Mapping[str, str]) -> tuple:
    """Each registry host's credentials, from ``registry_credentials`` entries
    ``{host, env, token_hosts}`` (secrets in ``GITOPS_REGISTRY_<ENV>_USERNAME``/``_PASSWORD``), and
    the older single pair ``GITOPS_REGISTRY_USERNAME``/``_PASSWORD``, bound to ``registry.url``'s host."""
    found: dict = {}
    if value is not None and not isinstance(value, list):
        raise SettingsError("`registry_credentials` must be a list of {host, env, token_hosts}.")
    for i, item in enumerate(value or []):
        where = f"registry_credentials[{i}]"
        entry = mapping(item, where, {"host", "env", "token_hosts", "plain_http"})
        host, env = _host_and_env(entry, where, "a registry host[:port] as in oci:// URLs", "GHCR",
                                  "the secrets are GITOPS_REGISTRY_<ENV>_USERNAME and _PASSWORD")
        token_hosts = entry.get("token_hosts", [])
        if not isinstance(token_hosts, list) or not all(isinstance(h, str) and _HOST.match(h.lower())
                                                        for h in token_hosts):
            raise SettingsError(f"`{where}.token_hosts` must be a list of host names (auth.docker.io).")
        plain_http = entry.get("plain_http", False)
        if not isinstance(plain_http, bool):
            raise SettingsError(f"`{where}.plain_http` must be true or false.")
        names = f"GITOPS_REGISTRY_{env}_USERNAME/PASSWORD"
        username = read_secret(environ, f"GITOPS_REGISTRY_{env}_USERNAME")
        password = read_secret(environ, f"GITOPS_REGISTRY_{env}_PASSWORD")
        if not username or not password:
            raise SettingsError(f"`{where}` names {names} for {host}, but they are not both set.")
        if host in found:
            raise SettingsError(f"`{where}.host`: {host} already has credentials.")
        found[host] = RegistryCredentials(host, username, password,
                                          tuple(h.lower().split(":")[0] for h in token_hosts), names,
                                          plain_http)
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
        # `registry.url` is the settings' own word: plain HTTP when it says so.
        found[host] = RegistryCredentials(host, username, password, (),
                                          "GITOPS_REGISTRY_USERNAME/PASSWORD",
                                          registry.insecure or registry.url.startswith("http://"))
    return tuple(found.values())


def prometheus_credentials(value, environ: Mapping[str, str]) -> tuple:
    """Each Prometheus host's credentials, from ``prometheus_credentials`` entries ``{host, env}``:
    ``GITOPS_PROMETHEUS_<ENV>_TOKEN`` (a bearer token), or ``_USERNAME`` and ``_PASSWORD``."""
    found: dict = {}
    if value is not None and not isinstance(value, list):
        raise SettingsError("`prometheus_credentials` must be a list of {host, env}.")
    for i, item in enumerate(value or []):
        where = f"prometheus_credentials[{i}]"
        entry = mapping(item, where, {"host", "env"})
        host, env = _host_and_env(entry, where, "a Prometheus host[:port] as in its URL", "METRICS",
                                  "the secrets are GITOPS_PROMETHEUS_<ENV>_TOKEN, or _USERNAME and _PASSWORD")
        prefix = f"GITOPS_PROMETHEUS_{env}"
        token = read_secret(environ, f"{prefix}_TOKEN")
        username, password = read_secret(environ, f"{prefix}_USERNAME"), read_secret(environ, f"{prefix}_PASSWORD")
        if not token and not (username and password):
            raise SettingsError(f"`{where}` names {prefix}_TOKEN (or _USERNAME and _PASSWORD) for {host}, "
                                "but they are not set.")
        if host in found:
            raise SettingsError(f"`{where}.host`: {host} already has credentials.")
        found[host] = PrometheusCredentials(host, token, username, password,
                                            f"{prefix}_TOKEN" if token else f"{prefix}_USERNAME/PASSWORD")
    return tuple(found.values())


def git_host(url: str) -> str:
    """``host[:port]`` of an http(s) Git URL, lower case; "" for any other remote."""
    if not re.match(r"^https?://", url, re.I):
        return ""
    return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()


def git_credentials(value, repo, token: str, environ: Mapping[str, str]) -> tuple:
    """Each Git host's token: ``GITOPS_GIT_TOKEN`` for `repo.url`'s host, and ``git_credentials``
    entries ``{host, env}`` (``GITOPS_GIT_<ENV>_TOKEN``, optionally ``GITOPS_GIT_<ENV>_USERNAME``)
    for the hosts of other environments' repositories."""
    found: dict = {}
    if token and git_host(repo.url):
        host = git_host(repo.url)
        found[host] = GitCredentials(host, token, "", "GITOPS_GIT_TOKEN")
    if value is not None and not isinstance(value, list):
        raise SettingsError("`git_credentials` must be a list of {host, env}.")
    for i, item in enumerate(value or []):
        where = f"git_credentials[{i}]"
        entry = mapping(item, where, {"host", "env"})
        host, env = _host_and_env(entry, where, "a Git host[:port] as in https:// URLs", "GITLAB",
                                  "the token is GITOPS_GIT_<ENV>_TOKEN")
        names = f"GITOPS_GIT_{env}_TOKEN"
        secret = read_secret(environ, names)
        if not secret:
            raise SettingsError(f"`{where}` names {names} for {host}, but it is not set.")
        if host in found:
            raise SettingsError(f"`{where}.host`: {host} already has a token "
                                f"({found[host].variables}).")
        found[host] = GitCredentials(host, secret, read_secret(environ, f"GITOPS_GIT_{env}_USERNAME"),
                                     names)
    return tuple(found.values())


def plain_http_allowed(secrets: Secrets, repos: list, anywhere: bool) -> None:
    """Credentials go over plain HTTP only where the settings say a host is plain HTTP (an
    http:// repository URL, `plain_http: true` on a registry), and only to this machine unless
    `allow_plain_http_credentials` says otherwise."""
    if anywhere:
        return
    for r in secrets.registries:
        if r.plain_http and not is_loopback(urlsplit(f"//{r.host}").hostname or r.host):
            raise SettingsError(f"{r.variables} would go over plain HTTP to {r.host}, which is not "
                                "this machine: serve it over HTTPS, or set "
                                "`allow_plain_http_credentials: true` if the network is yours.")
    for repo in repos:
        found = secrets.git(repo.url)
        if found is not None and repo.url.lower().startswith("http://") and \
                not is_loopback(urlsplit(repo.url).hostname or ""):
            raise SettingsError(f"{found.variables} would go over plain HTTP to {found.host} "
                                f"(`{without_credentials(repo.url)}`): use https://, or set "
                                "`allow_plain_http_credentials: true` if the network is yours.")


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def mapping(value, where: str, allowed: Optional[set]) -> dict:
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


def string(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"`{where}` must be a non-empty string.")
    return value.strip()


def _host_and_env(entry: dict, where: str, host_is: str, example: str, secrets: str) -> tuple[str, str]:
    """The ``host`` and ``env`` of one credentials entry, checked: where the secrets come from."""
    host = string(entry.get("host"), f"{where}.host").lower()
    if not _HOST.match(host):
        raise SettingsError(f"`{where}.host` must be {host_is}, not `{host}`.")
    env = string(entry.get("env"), f"{where}.env")
    if not _ENV_NAME.match(env):
        raise SettingsError(f"`{where}.env` must be upper-case letters, digits or `_` ({example}): "
                            f"{secrets}.")
    return host, env


SIGNING_KEY_VARIABLE = "GITOPS_COMMIT_SIGNING_KEY_FILE"


def commit_signing(value, environ: Mapping[str, str], base: Path) -> Optional[CommitSigning]:
    """``commit.sign`` checked, or None when commits are not signed. The SSH key is a file the
    settings name (``key_file``, relative to the settings file) or ``GITOPS_COMMIT_SIGNING_KEY_FILE``
    names; it must be readable now, and not open to others (ssh-keygen ignores such a key)."""
    if value is None:
        return None
    sign = mapping(value, "commit.sign", {"format", "key_file", "key", "gnupg_home"})
    form = sign.get("format")
    if form not in ("ssh", "openpgp"):
        raise SettingsError("`commit.sign.format` must be `ssh` (a private key file) or `openpgp` "
                            "(a key in a GnuPG home).")
    if form == "openpgp":
        if "key_file" in sign:
            raise SettingsError("`commit.sign.key_file` is for `format: ssh`; OpenPGP signs with "
                                "`key` (its fingerprint) from the keyring in `gnupg_home`.")
        home = str((base / string(sign.get("gnupg_home"), "commit.sign.gnupg_home")).resolve())
        if not os.access(home, os.R_OK | os.X_OK) or not Path(home).is_dir():
            raise SettingsError(f"`commit.sign.gnupg_home` names {home}, which is not a readable "
                                "folder: the GnuPG home holding Ferry's signing key.")
        return CommitSigning("openpgp", key=string(sign.get("key"), "commit.sign.key"), gnupg_home=home)
    if "key" in sign or "gnupg_home" in sign:
        raise SettingsError("`commit.sign.key` and `gnupg_home` are for `format: openpgp`; SSH "
                            "signs with the private key in `key_file`.")
    if "key_file" in sign:
        key_file, where = str((base / string(sign["key_file"], "commit.sign.key_file")).resolve()), \
            "`commit.sign.key_file`"
    elif environ.get(SIGNING_KEY_VARIABLE):
        key_file, where = str(Path(environ[SIGNING_KEY_VARIABLE]).resolve()), SIGNING_KEY_VARIABLE
    else:
        raise SettingsError(f"`commit.sign` with `format: ssh` needs the private key: "
                            f"`commit.sign.key_file` or {SIGNING_KEY_VARIABLE}.")
    return CommitSigning("ssh", key_file=_ssh_private_key(key_file, where))


def _ssh_private_key(path: str, where: str) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        mode, owner = os.stat(path).st_mode, os.stat(path).st_uid
    except OSError as e:
        raise SettingsError(f"{where} names {path}, which cannot be read ({e.strerror}): the private "
                            "SSH key Ferry signs commits with.") from None
    if b"PRIVATE KEY-----" not in head:
        raise SettingsError(f"{where} names {path}, which is not a private SSH key "
                            "(`ssh-keygen -t ed25519 -N ''` writes one; the .pub file is the other half).")
    if owner == os.getuid() and mode & 0o077:
        raise SettingsError(f"{where} names {path}, which others may read (mode {mode & 0o777:04o}): "
                            "ssh-keygen refuses such a key. Make it 0600 (a Secret volume: "
                            "defaultMode 0400).")
    # What git will run to sign, asked once now: no passphrase (nobody is there to type it).
    try:
        derived = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", path], capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=10, start_new_session=True)
    except FileNotFoundError:
        raise SettingsError("`commit.sign` with `format: ssh` needs ssh-keygen (openssh-client): "
                            "git signs with it.") from None
    except subprocess.TimeoutExpired:
        derived = None
    if derived is None or derived.returncode != 0:
        raise SettingsError(f"{where} names {path}, which ssh-keygen cannot read without a passphrase: "
                            "Ferry signs unattended, with a key made by `ssh-keygen -t ed25519 -N ''`.")
    return path
