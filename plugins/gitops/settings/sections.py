"""The settings file's sections that stand alone (each a mapping with its own defaults): Flux
feedback, Helm indexes, `!preview`'s archives, SSH host keys, how changes are written and signed,
the CA file for HTTPS chart sources. Each parser names the key and why when it refuses a value.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..credentials import CommitSigning, commit_signing, mapping as _mapping, string as _string
from ..errors import SettingsError


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
class PreviewSettings:
    """How `!preview` reads chart archives: at most ``max_mb`` MiB each in ``timeout`` seconds,
    kept on disk by digest up to ``cache_mb`` MiB in all."""

    max_mb: float = 10.0
    timeout: float = 30.0
    cache_mb: float = 256.0


@dataclass(frozen=True)
class SshSettings:
    """How SSH remotes' host keys are checked: against ``known_hosts`` (a file; "" = ssh's own
    ``~/.ssh/known_hosts``), a host not in it refused unless ``accept_new_host_keys``."""

    known_hosts: str = ""
    accept_new_host_keys: bool = False


@dataclass(frozen=True)
class WriteSettings:
    """How changes waiting for the same repository are written: with ``batch``, the first to
    reach it takes up to ``batch_max`` of them, each its own commit, pushed in one ``git push``;
    without, one fetch, commit and push after another."""

    batch: bool = True
    batch_max: int = 20

    @property
    def per_push(self) -> int:
        """How many changes one push may carry."""
        return self.batch_max if self.batch else 1


@dataclass(frozen=True)
class CommitSettings:
    """How Ferry's commits are written: signed by git with ``sign`` (None: unsigned)."""

    sign: Optional[CommitSigning] = None


def parse_preview(value) -> PreviewSettings:
    conf = _mapping(value if value is not None else {}, "preview", {"max_mb", "timeout", "cache_mb"})
    numbers = {}
    for key, low, high in (("max_mb", 0, 1024), ("timeout", 0, 600), ("cache_mb", -1, 1024 * 1024)):
        number = conf.get(key, getattr(PreviewSettings, key))
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not low < number <= high:
            raise SettingsError(f"`preview.{key}` must be a number between {max(low, 0)} and {high}.")
        numbers[key] = float(number)
    return PreviewSettings(**numbers)


def parse_ca_file(value, base: Path) -> str:
    if value is None:
        return ""
    path = (base / _string(value, "registry_ca_file")).resolve()
    if not path.is_file() or b"-----BEGIN CERTIFICATE-----" not in path.read_bytes()[:1024 * 1024]:
        raise SettingsError(f"`registry_ca_file` names {path}, which is not a file of PEM certificates "
                            "(`-----BEGIN CERTIFICATE-----`).")
    return str(path)


def parse_write(value) -> WriteSettings:
    conf = _mapping(value if value is not None else {}, "write", {"batch", "batch_max"})
    batch = conf.get("batch", WriteSettings.batch)
    if not isinstance(batch, bool):
        raise SettingsError("`write.batch` must be true (changes waiting for one repository pushed "
                            "together, each its own commit) or false (one push per change).")
    most = conf.get("batch_max", WriteSettings.batch_max)
    if not isinstance(most, int) or isinstance(most, bool) or not 1 <= most <= 200:
        raise SettingsError("`write.batch_max` must be a whole number of changes between 1 and 200.")
    return WriteSettings(batch, most)


def parse_ssh(value, base: Path) -> SshSettings:
    conf = _mapping(value if value is not None else {}, "ssh", {"known_hosts", "accept_new_host_keys"})
    known_hosts = ""
    if "known_hosts" in conf:
        known_hosts = str((base / _string(conf["known_hosts"], "ssh.known_hosts")).resolve())
        if not Path(known_hosts).is_file():
            raise SettingsError(f"`ssh.known_hosts` names {known_hosts}, which is not a file: the "
                                "host keys of the SSH remotes (`ssh-keyscan -t ed25519 <host>`).")
    accept_new = conf.get("accept_new_host_keys", False)
    if not isinstance(accept_new, bool):
        raise SettingsError("`ssh.accept_new_host_keys` must be true or false.")
    return SshSettings(known_hosts, accept_new)


def parse_helm_index(value) -> HelmIndexSettings:
    conf = _mapping(value if value is not None else {}, "helm_index", {"max_mb", "timeout", "cache_seconds"})
    numbers = {}
    for key, low, high in (("max_mb", 0, 4096), ("timeout", 0, 600), ("cache_seconds", -1, 86400)):
        number = conf.get(key, getattr(HelmIndexSettings, key))
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not low < number <= high:
            raise SettingsError(f"`helm_index.{key}` must be a number between {max(low, 0)} and {high}.")
        numbers[key] = float(number)
    return HelmIndexSettings(**numbers)


def parse_flux(value) -> FluxSettings:
    conf = _mapping(value if value is not None else {}, "flux", {"timeout_minutes", "max_age_minutes"})
    numbers = {}
    for key, limit in (("timeout_minutes", 24 * 60), ("max_age_minutes", 24 * 60)):
        number = conf.get(key, getattr(FluxSettings, key))
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not 0 < number <= limit:
            raise SettingsError(f"`flux.{key}` must be a number of minutes between 0 and {limit}.")
        numbers[key] = float(number)
    return FluxSettings(**numbers)


def parse_commit(value, environ: Mapping[str, str], base: Path) -> CommitSettings:
    return CommitSettings(commit_signing(_mapping(value or {}, "commit", {"sign"}).get("sign"), environ, base))
