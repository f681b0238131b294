"""A real OCI registry for the tests: Debian's ``docker-registry``, no mocks (a pytest plugin module).

Fixtures (all session-scoped; they FAIL, never skip, when the registry cannot start)
- ``registry``: a started ``devtools.registry.LocalRegistry`` without auth. ``.host`` is
  ``127.0.0.1:PORT``, ``.url`` is ``oci://127.0.0.1:PORT``; plain HTTP, so locations are insecure.
- ``registry_auth``: the same behind htpasswd (basic) auth; ``.username`` / ``.password``.
- ``charts``: charts pushed into ``registry``, as ``{repository: (tag, …)}`` in push order:
  ``charts/podinfo``      6.5.0 6.5.1 6.5.2 6.5.3 6.6.0 6.7.0-rc.1 latest
  ``charts/redis``        18.0.0 18.1.0 19.0.0
  ``charts/cert-manager`` v1.14.0 v1.15.0
  Each version's appVersion is ``app-<version>`` and its description ``<chart> <version>``;
  ``CHARTS_CREATED`` is the creation annotation they all carry.
- ``chart_location``: ``chart_location("podinfo") -> ChartLocation`` in ``registry`` under
  ``charts/``, insecure.

In a settings file the same charts are ``registry: {url: f"{registry.url}/charts", insecure: true}``.

- ``images``: container images pushed into ``registry`` (an OCI image manifest, a config blob
  and a layer each): ``images/<name>`` for web, api, sidecar, worker and static, tagged
  ``IMAGE_TAGS``.

Tests that change what a repository holds push to a repository of their own (``push_chart``), so
the shared ``charts`` stay as listed above.
"""
from __future__ import annotations

import pytest

from devtools.artifacts import push_chart, push_image
from devtools.registry import LocalRegistry, RegistryStartError
from gitops.model import ChartLocation

CHARTS = {
    "charts/podinfo": ("6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.6.0", "6.7.0-rc.1", "latest"),
    "charts/redis": ("18.0.0", "18.1.0", "19.0.0"),
    "charts/cert-manager": ("v1.14.0", "v1.15.0"),
}
CHARTS_CREATED = "2024-05-01T12:00:00Z"
IMAGES = ("web", "api", "sidecar", "worker", "static")
IMAGE_TAGS = ("1.0.0", "1.1.0", "1.2.0", "main-3f2a9c1")


def _started(directory, auth: bool) -> LocalRegistry:
    registry = LocalRegistry(directory, auth=auth)
    try:
        return registry.start()
    except (RegistryStartError, OSError) as e:
        pytest.fail(f"docker-registry did not start: {e}", pytrace=False)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    reg = _started(tmp_path_factory.mktemp("registry"), auth=False)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_auth(tmp_path_factory):
    reg = _started(tmp_path_factory.mktemp("registry-auth"), auth=True)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def charts(registry) -> dict:
    for repository, versions in CHARTS.items():
        name = repository.rsplit("/", 1)[-1]
        for version in versions:
            push_chart(registry.host, repository, version, app_version=f"app-{version}",
                       description=f"{name} {version}", created=CHARTS_CREATED)
    return dict(CHARTS)


@pytest.fixture(scope="session")
def chart_location(registry):
    def location(chart: str) -> ChartLocation:
        return ChartLocation(registry.host, f"charts/{chart}", insecure=True)
    return location


@pytest.fixture(scope="session")
def images(registry) -> dict:
    return {f"images/{name}": push_image(registry.host, f"images/{name}", IMAGE_TAGS) for name in IMAGES}
