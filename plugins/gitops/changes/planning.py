"""The rules of deploy, promote and rollback: which version goes where, refused when it may not.

Functions over plain values (pins, inventories, history, settings); the one outside question is
the registry's spelling of a tag. Nothing here reads Git or writes anything.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from ..errors import (FerryError, NotEditable, NothingToRollback, PromotionRefused, SharedPin,
                     SourceBusy, UnknownApp, shown)
from ..inventory import Inventory
from ..model import CHART, HistoryEntry, Pin, Plan
from .pins import find
from ..sources.registry import RegistryClient
from ..settings import EnvironmentSettings, Settings
from ..versions import check_version, registry_tag, same_version


def deploy_plan(pin: Pin, version: str, registry: RegistryClient) -> Plan:
    return Plan("deploy", pin, registry_spelling(registry, pin, check_version(version)))


def promotion_plan(settings: Settings, app: str, to_environment: str,
                   from_environment: Optional[str], version: Optional[str],
                   inventory: Callable[[], Inventory], registry: RegistryClient,
                   part: Optional[str] = None) -> Plan:
    """The version of the environment before ``to_environment`` (or of ``from_environment``,
    or ``version``), refused when it would skip a stage. ``inventory`` is read only once the
    environments allow a promotion."""
    target = settings.environment(to_environment)
    before = settings.previous(target)
    if before is None:
        raise PromotionRefused(
            f"`{target.name}` is the first environment: nothing comes before it. "
            f"Use `!deploy {shown(app)} <version> to {target.name}`.")
    source = settings.environment(from_environment) if from_environment else before
    if source == target:
        raise PromotionRefused(f"Cannot promote `{shown(app)}` from {target.name} to itself.")
    known = inventory()
    pin = find(known, app, target.name, part)
    whole = part is None and version is None
    if version is None:
        version = exact_version(_source_pin(pin.app, source, known, pin.part))
    version = check_version(version)
    require_stage(pin.app, version, before, target, known, pin.part)
    also = _other_parts(pin, source, before, target, known, registry) if whole else ()
    return Plan("promote", pin, registry_spelling(registry, pin, version), source.name, also)


def _other_parts(pin: Pin, source: EnvironmentSettings, before: EnvironmentSettings,
                 target: EnvironmentSettings, inventory: Inventory, registry: RegistryClient) -> tuple:
    """The app's other parts (chart version, image tags) that differ between the source and the
    target, each its own line there: a whole-app promotion moves them in the same commit. A part
    shared with other apps (one chart version for many) is not the app's to move."""
    moves = []
    targets = {p.part: p for p in inventory.parts(pin.app, target.name)}
    for from_pin in inventory.parts(pin.app, source.name):
        to_pin = targets.get(from_pin.part)
        if from_pin.part == pin.part or to_pin is None or from_pin.is_range or from_pin.version is None:
            continue
        if to_pin.shared_by or from_pin.shared_by or to_pin.version == from_pin.version:
            continue
        require_editable(to_pin)
        require_stage(pin.app, from_pin.version, before, target, inventory, from_pin.part)
        moves.append((to_pin, registry_spelling(registry, to_pin, from_pin.version)))
    return tuple(moves)


def rollback_plan(pin: Pin, history: Iterable[HistoryEntry], to: Optional[str] = None) -> Plan:
    """The previous distinct version in ``history``, or ``to`` if the environment ran it before."""
    current = pin.version
    earlier = [h.version for h in history if h.version != current]
    if to is not None:
        to = check_version(to)
        match = next((v for v in earlier if same_version(to, v)), None)
        if match is None:
            ran = ", ".join(dict.fromkeys(earlier)) or "no other version"
            raise NothingToRollback(
                f"`{pin.app}` never ran `{to}` in {pin.environment} before; it ran: {ran}.")
        return Plan("rollback", pin, match)
    if not earlier:
        raise NothingToRollback(
            f"`{pin.app}` has had only `{current}` in {pin.environment} as far as Git knows: "
            "nothing to roll back to.")
    return Plan("rollback", pin, earlier[0])


def registry_spelling(registry: RegistryClient, pin: Pin, version: str) -> str:
    """The version as the registry's tag spells it (`v1.15.0` for `1.15.0`), so that Ferry
    never writes a tag the registry lacks; as typed when the registry cannot say (the check
    before writing then answers)."""
    if pin.source is None or pin.is_image:
        return version  # an image tag is exactly what is typed: `v1.2` and `1.2` are two images
    try:
        tag = registry.require(pin.source, version, pin.chart)
    except SourceBusy:
        raise  # asking again before writing would wait for the same busy host a second time
    except FerryError:
        return version
    return version if tag == registry_tag(version) else tag.replace("_", "+")


def exact_version(pin: Pin) -> str:
    if pin.version is None or pin.is_range:
        what = f"the range `{pin.version}`" if pin.version else "no version"
        raise PromotionRefused(
            f"`{pin.app}` in {pin.environment} pins {what}, not one version: "
            f"deploy an exact version there first, or use `!deploy`.")
    return pin.version


def require_stage(app: str, version: str, before: EnvironmentSettings,
                  target: EnvironmentSettings, inventory: Inventory, part: str = CHART) -> None:
    """Promotion does not skip stages: the version must already run just before the target."""
    prior = next((p for p in inventory.parts(app, before.name) if p.part == part), None)
    if prior is not None and prior.version and not prior.is_range and same_version(prior.version, version):
        return
    raise PromotionRefused(
        f"`{app}` {version} is not in {before.name}, the stage before {target.name}: "
        f"promote it to {before.name} first.")


def require_chain(settings: Settings, plan: Plan, inventory: Inventory) -> None:
    """A promotion decided again (at approval): every part it moves must still run in the stage
    before its target, as when it was asked: a version rolled back from there since goes no further."""
    target = settings.environment(plan.environment)
    before = settings.previous(target)
    if before is None:
        raise PromotionRefused(f"`{target.name}` is the first environment now: nothing comes before it.")
    for pin, new in plan.edits:
        require_stage(plan.app, new, before, target, inventory, pin.part)


def require_editable(pin: Pin) -> None:
    """Refuse a pin Ferry cannot change by editing one line it alone feeds."""
    if pin.location is None and pin.version is None and not pin.refusal:
        if pin.is_image:
            raise NotEditable(f"`{pin.app}` has no {pin.part} tag pinned in {pin.environment}: "
                              f"write it in `{pin.release_file}` first.")
        raise NotEditable(
            f"`{pin.app}` has no chart version pinned in {pin.environment} (Flux takes the newest): "
            f"add `version:` under `spec.chart.spec` in `{pin.release_file}` first.")
    if pin.unknown:
        raise NotEditable(
            f"Ferry cannot know the version of `{pin.app}` in {pin.environment}: it comes from "
            f"{pin.refusal}. Change it by hand.")
    if pin.location is None or pin.refusal:
        why = pin.refusal or "a place Ferry cannot change one line of"
        raise NotEditable(
            f"`{pin.label}` in {pin.environment} gets `{pin.version or 'its tag'}` from {why}: Ferry cannot "
            f"change that with one line. Edit it by hand (the release is in `{pin.release_file}`).")
    if pin.shared:
        raise SharedPin(pin.location.file, pin.shared_with, f"`{pin.app}` in {pin.environment}",
                        pin.shared_by)


def _source_pin(app: str, source: EnvironmentSettings, inventory: Inventory, part: str) -> Pin:
    try:
        return find(inventory, app, source.name, part)
    except UnknownApp:
        raise PromotionRefused(
            f"`{app}` is not in {source.name}, so there is nothing to promote from there.") from None
