"""Flux sources, and the chart locations they name: a HelmRepository (OCI or an HTTPS index) plus
a chart name, or an OCIRepository URL. Pure functions over the built resources."""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from . import kustomizations
from .kustomize import Build, Resource
from .manifests import dig
from .units import NeedEnvironment
from ..model import ChartLocation

SOURCE_KINDS = ("HelmRepository", "OCIRepository", "GitRepository", "Bucket", "HelmChart")
# The sources a chart is found in by a registry; no Flux Kustomization Ferry follows reads them.
CHART_SOURCE_KINDS = ("HelmRepository", "OCIRepository")


class Sources:
    """Flux sources by (kind, namespace, name): the environment's own builds first, then the
    others discovered with it, then anywhere in the repository (a shared `flux-system` source).

    ``held``: the source keys of environments discovered with it whose builds are not at hand
    (``units``: not built again after a commit); a source found there is ``NeedEnvironment``.
    ``order``: every environment's name, in settings order. What each environment looked for
    outside its own builds is noted with what it found (``asked``, ``answers``), and whether the
    repository answered (``searched``).
    """

    def __init__(self, finder: kustomizations.Finder, built: list, held: Optional[dict] = None,
                 order: Optional[list] = None):
        self._finder = finder
        held = held or {}
        tables: dict = {}
        self._repeated: dict = {}  # environment -> the keys more than one of its sources has
        for env, units in built:
            table = tables.setdefault(env.name, {})
            for unit in units:
                for res in unit.build.resources:
                    key = source_key(res)
                    if key is not None and key not in table:
                        table[key] = (res, unit)
                    elif key is not None:
                        self._repeated.setdefault(env.name, set()).add(key)
        names = order if order is not None else [env.name for env, _ in built]
        self._by_env = {name: tables[name] if name in tables else held[name]
                        for name in names if name in tables or name in held}
        self._held = set(held)
        self.searched: set = set()  # environments the repository-wide table answered
        self._answered: dict = {}  # environment -> {key looked for outside its builds: what it found}
        self.calls: list = []  # every key looked for outside the environment's own builds, in turn
        self.used: list = []  # every key found in the environment's own builds, in turn

    def asked(self, environment: str) -> set:
        """The keys ``environment`` looked for outside its own builds."""
        return set(self._answered.get(environment, ()))

    def answers(self, environment: str) -> dict:
        """{(kind, namespace, name): (resource, unit) or None}: every source ``environment``'s
        releases may find without another build, as they found it: its own builds' sources, and
        what it looked for elsewhere (the answer stands while the part stands: ``units``)."""
        return {**self._answered.get(environment, {}), **self._by_env.get(environment, {})}

    def repeated(self, environment: str) -> frozenset:
        """The keys more than one source of ``environment``'s own builds has (the first is found)."""
        return frozenset(self._repeated.get(environment, ()))

    def own(self, environment: str) -> frozenset:
        """The keys of the sources ``environment``'s own builds hold (every ``source_key`` of
        their resources)."""
        return frozenset(self._by_env.get(environment, ()))

    def find(self, environment: str, kind: str, namespace: str, name: str):
        """The source resource and the unit that builds it, or None."""
        key = (kind, namespace, name)
        found = self._by_env.get(environment, {}).get(key)
        if found is not None:
            self.used.append(key)
            return found
        self.calls.append(key)
        found = self._elsewhere(environment, key)
        self._answered.setdefault(environment, {})[key] = found
        return found

    def _elsewhere(self, environment: str, key: tuple):
        for env, table in self._by_env.items():
            if key in table:
                if env in self._held:
                    raise NeedEnvironment(env)
                return table[key]
        if key[0] not in CHART_SOURCE_KINDS:
            return None  # a chart in Git or a bucket has no registry to find: not worth a scan
        self.searched.add(environment)
        res = self._finder.find(*key)
        return (res, kustomizations.Unit(Build(), "")) if res is not None else None


def source_key(res: Resource):
    if res.kind in SOURCE_KINDS and res.api_version.startswith(kustomizations.SOURCE_API) and res.name:
        return res.kind, res.namespace, res.name
    return None


def helm_repository_location(url: str, chart: str, insecure: bool) -> Optional[ChartLocation]:
    """``oci://host/path`` + chart: an OCI repository; ``https://host/path`` + chart: that chart
    in the repository's ``index.yaml`` (``http://`` is plain HTTP whatever ``insecure`` says)."""
    parts = urlsplit(url)
    if parts.scheme not in ("oci", "https", "http") or not parts.netloc or not chart:
        return None
    chart = chart.strip("/")
    # An OCI chart is a repository path under the URL (Flux joins them: `actions/…` is fine); an
    # index names charts by key, where a slash names nothing.
    if parts.scheme != "oci" and "/" in chart or not chart or ".." in chart.split("/"):
        return None
    prefix = parts.path.strip("/")
    return ChartLocation(parts.netloc, f"{prefix}/{chart}" if prefix else chart,
                         insecure or parts.scheme == "http", parts.scheme)


def oci_repository_location(url: str, insecure: bool):
    """(chart name, location) of an OCIRepository URL ``oci://host/path/chart``."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme != "oci" or not parts.netloc or not path:
        return "", None
    return path.rsplit("/", 1)[-1], ChartLocation(parts.netloc, path, insecure)


def insecure(source_doc: dict) -> bool:
    value = dig(source_doc, "spec", "insecure")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def chart_source_key(res) -> Optional[tuple]:
    """The key of a HelmRepository or OCIRepository (what releases find their charts in, and what
    no Flux Kustomization ``units`` follows reads from this repository); else None."""
    return source_key(res) if res.kind in CHART_SOURCE_KINDS else None
