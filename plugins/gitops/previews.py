"""`!preview` and the short preview next to every change, as a part of ``GitOps``. A chart: the
two chart archives (``sources.archives``, on disk by digest), the change notes of every version in
between (their manifests or index entries), the values the environment sets (``flux.helmvalues``,
as `!diff` reads them) and the pure comparison (``preview.compare``). An image tag: both images'
config labels (``RegistryClient.image_labels``) and their comparison (``preview.images``).

A mixin, as ``Reports`` is: it reads the core's settings, registry, pins and workspaces through
``self``. A preview never blocks a change: ``preview_of`` returns its problem as text instead,
except where the environment's policy says ``preview: require_clean``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Optional

from .changes.pins import app_name
from .errors import FerryError, PreviewUnavailable, UnreadableValues
from .flux.helmvalues import release_values, values_from
from .model import Blocker, Change, Pin, Plan
from .preview.charts import read_chart
from .preview.compare import Preview, preview
from .preview.images import ImagePreview, image_change
from .preview.notes import CHANGES
from .sources.archives import ChartArchives
from .versions import between, same_version

MAX_BETWEEN = 50  # versions whose notes are read between old and new: a manifest each
KEPT = 64  # previews remembered (by release, versions and commit): a change asks twice


class Previews:
    """Previews of chart upgrades; ``archives`` is set up by the core."""

    archives: ChartArchives

    def preview_archives(self) -> ChartArchives:
        conf = self.settings.preview
        return ChartArchives(self.registry, Path(self.settings.data_dir) / "charts",
                             max_bytes=int(conf.max_mb * 1024 * 1024), seconds=conf.timeout,
                             cache_bytes=int(conf.cache_mb * 1024 * 1024))

    def preview_request(self, app: str, environment: Optional[str], version: Optional[str]) -> Preview:
        """`!preview <app> <version> [in <env>]` (the first environment running it when none is
        named) or `!preview <app> to <env>` (``version`` None: the promotion's version)."""
        if version is None:
            plan = self.plan_promotion(app, environment)
            return self.preview_pin(plan.pin, plan.new)
        inventory = self.inventory()
        if environment is None:  # the first environment the version would change, else the first running it
            name = app_name(app, inventory)
            running = [p for p in (inventory.find(name, e) for e in self.settings.environment_names)
                       if p is not None]
            changing = [p for p in running if not same_version(p.version or "", version)]
            environment = (changing or running)[0].environment if running else self.settings.environment_names[0]
        pin = self.pin(app, environment, inventory)
        same = pin.version == version if pin.is_image else same_version(pin.version or "", version)
        if pin.version and same:  # an image tag is exact: v1.2 and 1.2 are two images
            raise PreviewUnavailable(f"`{pin.app}` is already at {pin.version} in {pin.environment}: "
                                     "there is nothing to preview.")
        return self.preview_pin(pin, version)

    def preview_of(self, plan: Plan) -> tuple:
        """(Preview, ImagePreview or None, problem text or ""): what a change's reply shows. None
        and "" when there is nothing to preview (nothing changing, a rollback, a range)."""
        if plan.noop or plan.action == "rollback" or plan.pin.is_range or not plan.pin.version:
            return None, ""
        try:
            return self.preview_pin(plan.pin, plan.new), ""
        except FerryError as e:
            return None, str(e)

    def preview_of_change(self, change: Change) -> tuple:
        """``preview_of`` for a change already pushed (an approved one): its pin as it was."""
        if change.commit is None or change.noop or change.action == "rollback" or change.replaced_range \
                or not change.old:
            return None, ""
        try:
            pin = self.pin(change.app, change.environment, part=change.part)
            return self.preview_pin(replace(pin, version=change.old), change.new), ""
        except FerryError as e:
            return None, str(e)

    def preview_blockers(self, plan: Plan) -> tuple:
        """The blocker a change whose preview is not clean meets where the environment's policy
        says ``preview: require_clean``; a preview that cannot be made blocks nothing."""
        env = self.settings.environment(plan.environment)
        if env.policy.preview != "require_clean" or plan.action == "rollback" or plan.pin.is_image:
            return ()  # an image's labels hold nothing that fails
        found, _ = self.preview_of(plan)
        if found is None or found.clean:
            return ()
        what = "; ".join(p for p in (
            f"{len(found.schema_errors)} schema error(s) (`{found.schema_errors[0][0]}` "
            f"{found.schema_errors[0][1]})" if found.schema_errors else "",
            "keys it sets are not in the new chart: " + ", ".join(f"`{f.key}`" for f in found.removed_keys[:5])
            if found.removed_keys else "") if p)
        return (Blocker("preview", f"preview {env.name}/{plan.app} {plan.new}",
                        f"the preview of `{plan.app}` {plan.old} → {plan.new} in {env.name} is not "
                        f"clean ({what}): `!preview {plan.app} {plan.new} in {env.name}` shows it",
                        admin_only=False),)

    def preview_pin(self, pin: Pin, version: str):
        """The ``Preview`` of a chart pin, the ``ImagePreview`` of an image tag's, from ``pin``'s
        version to ``version``; remembered by pin, version and commit."""
        if pin.is_image:
            return self._image_preview(pin, version)
        if not pin.version or pin.is_range:
            raise PreviewUnavailable(f"`{pin.app}` in {pin.environment} pins no one chart version "
                                     f"(`{pin.version or 'none'}`): there is nothing to compare from.")
        ws = self._workspace(pin.environment)
        head = ws.head(refresh=False)
        key = (pin, version, head)
        with self._preview_lock:
            if key in self._previews:
                self._previews.move_to_end(key)
                return self._previews[key]
        location = self.location(pin)
        old = read_chart(self.archives.archive(location, pin.version, f"{pin.chart} {pin.version}"),
                         f"{pin.chart} {pin.version}")
        new = read_chart(self.archives.archive(location, version, f"{pin.chart} {version}"),
                         f"{pin.chart} {version}")
        tree = ws.tree(head)
        values, unknown, problems = None, list(values_from(tree, pin)), []
        if pin.values_unknown:
            unknown.insert(0, f"the values in Git ({pin.values_unknown})")
        else:
            try:
                values = release_values(tree, pin)
            except UnreadableValues as e:
                problems.append(str(e))
        notes, unread = self._notes_between(location, pin.version, version)
        if unread:
            problems.append(f"the change notes of the {unread} oldest versions between (Ferry reads "
                            f"the newest {MAX_BETWEEN}).")
        found = preview(pin.app, pin.environment, old, new, notes, values, unknown)
        if problems:
            found = replace(found, problems=found.problems + tuple(problems))
        self._remember(key, found)
        return found

    def _image_preview(self, pin: Pin, tag: str) -> ImagePreview:
        """Both tags' labels from the image's registry (``RegistryClient.image_labels``)."""
        if not pin.version or pin.unknown or pin.refusal:  # what runs may not be the tag's image
            why = pin.refusal or f"`{pin.version or 'none'}`"
            raise PreviewUnavailable(f"`{pin.label}` in {pin.environment} has no one image tag Ferry "
                                     f"can read ({why}): there is nothing to compare from.")
        location = self.location(pin)
        key = (pin, tag, self._workspace(pin.environment).head(refresh=False))
        with self._preview_lock:
            if key in self._previews:
                self._previews.move_to_end(key)
                return self._previews[key]
        change = image_change(self.registry.image_labels(location, pin.version),
                              self.registry.image_labels(location, tag))
        found = ImagePreview(pin.app, pin.environment, pin.part, change)
        self._remember(key, found)
        return found

    def _remember(self, key, found) -> None:
        with self._preview_lock:
            self._previews[key] = found
            while len(self._previews) > KEPT:
                self._previews.popitem(last=False)

    def _notes_between(self, location, old: str, new: str) -> list:
        """The change notes of the released versions after ``old`` and before ``new``, newest first
        (at most ``MAX_BETWEEN``: a manifest or an index entry each)."""
        versions = [v for v in between(old, new, self.registry.versions(location)) if v != new]
        return [(v, self.registry.annotations(location, v).get(CHANGES, ""))
                for v in versions[:MAX_BETWEEN]], len(versions[MAX_BETWEEN:])


def preview_state() -> tuple:
    """(lock, remembered previews) for a core to hold."""
    return threading.Lock(), OrderedDict()
