"""`ferry check`: the settings read as the bot reads them, then every connection they name tried
once, as the bot would make it: each Git remote fetched, each chart and image registry the fleet
uses asked for one repository's tags with its credentials, each forge asked for Ferry's open pull
requests with its token, each environment's Flux token found, each verification check's query
evaluated once on its Prometheus.

One ``Finding`` per item: what was found, or what is wrong and how to fix it. Nothing is written
anywhere but a scratch folder for the clone; chat is checked by the chat backend's own check.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Optional

from .core import GitOps
from .errors import FerryError, SettingsError
from .feedback import receiver
from .model import Pin
from .settings import Settings, flux_token_variable, load_settings
from .sources.prometheus import PrometheusClient


@dataclass(frozen=True)
class Finding:
    item: str  # what was checked: "settings", "git <url> (main)", "registry <host>", …
    detail: str = ""  # when it is fine: what was found
    problem: str = ""  # when it is not: what is wrong and how to make it right, in one line

    @property
    def ok(self) -> bool:
        return not self.problem

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL'}  {self.item}: {self.problem or self.detail}"


def settings_findings(path: Optional[str], environ: Mapping[str, str]) -> tuple[Optional[Settings], list]:
    """The settings as the bot loads them (``GITOPS_CONFIG``), or the one line that stops it."""
    try:
        settings = load_settings(path, environ)
    except SettingsError as e:
        return None, [Finding("settings", problem=str(e))]
    envs = ", ".join(settings.environment_names)
    return settings, [Finding("settings", f"{path or environ.get('GITOPS_CONFIG', '')}: {envs}")]


def connection_findings(settings: Settings) -> list:
    """Every remote and registry the settings and the fleet name, each tried once."""
    with tempfile.TemporaryDirectory(prefix="ferry-check-") as scratch:
        core = GitOps(replace(settings, data_dir=scratch), fetch_interval=0)
        try:
            findings = list(_git(core)) + list(_forges(core))
            if all(f.ok for f in findings):
                inventory = core.inventory(refresh=False)
                findings.append(Finding("discovery", f"{len(inventory.pins)} pins, "
                                        f"{len(inventory.problems)} problem(s) (`!versions` lists them)"))
                findings += _registries(core, inventory.pins)
        finally:
            core.registry.close()
            for workspace in core.workspaces.values():
                workspace.close()
    return findings + flux_token_findings(settings) + verification_findings(settings) + receiver_findings(settings)


def verification_findings(settings: Settings) -> list:
    """Each environment's verification checks, evaluated once: a query Prometheus refuses, or a
    server that does not answer, is named now rather than in a deploy's thread."""
    client, findings = PrometheusClient(settings.secrets.prometheus_host, settings.registry_timeout), []
    for env in settings.environments:
        for check in env.verify.checks if env.verify is not None else ():
            item = f"verify {env.name} `{check.label}`"
            try:
                found = client.query(check.prometheus, check.query)
            except FerryError as e:
                findings.append(Finding(item, problem=str(e)))
                continue
            now = "holds" if found.holds else "does not hold"
            findings.append(Finding(item, f"{now} now on {check.prometheus} ({found.figure})"))
    return findings


def receiver_findings(settings: Settings) -> list:
    """Each Flux Receiver called once, signed as after a push (it only asks Flux to reconcile its
    sources now): the token and the address tried."""
    return [Finding(f"flux receiver {target.shown}", detail, problem)
            for target, detail, problem in receiver.tried(settings)]


def flux_token_findings(settings: Settings) -> list:
    """Each environment's token for Flux's signed events on `/flux/<env>`."""
    findings = []
    for env in settings.environment_names:
        variable = flux_token_variable(env)
        if settings.secrets.flux_token(env):
            findings.append(Finding(f"flux token {env}", f"{variable} is set"))
        else:
            findings.append(Finding(f"flux token {env}", problem=(
                f"{variable} (or {variable}_FILE) is not set: Flux's events for {env} are refused; "
                "set it to the token of the environment's generic-hmac Provider")))
    return findings


def _git(core: GitOps) -> Iterable[Finding]:
    for repo, workspace in core.workspaces.items():
        item = f"git {workspace.public_url} ({repo.branch})"
        try:
            yield Finding(item, f"fetched, {repo.branch} at {workspace.head(refresh=True)[:10]}")
        except FerryError as e:
            yield Finding(item, problem=str(e))


def _forges(core: GitOps) -> Iterable[Finding]:
    """Each forge asked once, with its token, the way the bot asks it (a list of open pull requests)."""
    for repo, forge in core.landing.forges.items():
        conf = repo.forge
        item = f"forge {conf.kind} {conf.repository}"
        following = ("its webhook (secret set)" if conf.webhook_secret else
                     f"polling every {conf.poll_seconds:g} s (no {conf.webhook_secret_variable})")
        try:
            forge.find_open("ferry/check")
            yield Finding(item, f"answers at {conf.api_url}; pull requests followed by {following}")
        except FerryError as e:
            yield Finding(item, problem=str(e))


def _registries(core: GitOps, pins: Iterable[Pin]) -> Iterable[Finding]:
    """One request per registry host (a chart's or an image's tags), with that host's credentials."""
    first: dict = {}
    for pin in pins:
        if pin.source is not None:
            first.setdefault(_host(pin.source), pin.source)
    for host, location in sorted(first.items()):
        try:
            found = core.registry.versions(location)
            yield Finding(f"registry {host}", f"{len(found.all_tags)} tag(s) of {location.repository}")
        except FerryError as e:
            yield Finding(f"registry {host}", problem=str(e))


def _host(location) -> str:
    return f"{location.scheme}://{location.host}"
