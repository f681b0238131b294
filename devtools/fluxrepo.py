"""Flux repositories for the demo, the tests and the benchmark: plain files, seeded into Git.

The demo and the benchmark share the three places Flux users pin a chart version: a kustomize
overlay patch over a base, a HelmRelease next to an OCI HelmRepository, an OCIRepository ``ref.tag``.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

ENVIRONMENTS = ("dev", "qa", "stag", "prod")

# app -> version pinned in each environment (dev is ahead, prod behind)
DEMO_PINS = {
    "podinfo": {"dev": "6.5.3", "qa": "6.5.2", "stag": "6.5.1", "prod": "6.5.0"},
    "redis": {"dev": "19.0.0", "qa": "18.1.0", "stag": "18.0.0", "prod": "18.0.0"},
    "cert-manager": {"dev": "v1.15.0", "qa": "v1.15.0", "stag": "v1.14.0", "prod": "v1.14.0"},
}
DEMO_CHARTS = {
    "podinfo": ["6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.6.0", "6.7.0-rc.1"],
    "redis": ["18.0.0", "18.1.0", "19.0.0", "19.1.0"],
    "cert-manager": ["v1.14.0", "v1.15.0", "v1.16.0"],
}


DEMO_APPS = [("podinfo", "patch", "podinfo"), ("redis", "helmrelease", "redis"),
             ("cert-manager", "ocirepository", "cert-manager")]


def demo_files(registry: str, pins: dict = DEMO_PINS, environments=ENVIRONMENTS) -> dict:
    """The whole demo repository: path -> text. ``registry`` is ``oci://host:port/charts``.

    podinfo is pinned by a kustomize overlay patch over a base, redis by a HelmRelease next to an
    OCI HelmRepository, cert-manager by an OCIRepository tag: the three layouts Flux users have."""
    return fleet_files(registry, DEMO_APPS, {(app, env): pins[app][env] for app in pins
                                              for env in environments}, environments)


def demo_settings(repo_url: str, environments=ENVIRONMENTS, registry: str = "", insecure=True) -> dict:
    """Settings (plain data, the shape of the settings file) for a repository made by ``demo_files``."""
    aliases = {"stag": ["stage", "staging"], "prod": ["production"]}
    settings = {
        "repo": {"url": repo_url, "branch": "main"},
        "environments": [{"name": e, "path": f"apps/{e}", "aliases": aliases.get(e, [])}
                         for e in environments],
    }
    if registry:
        settings["registry"] = {"url": registry, "insecure": insecure}
    return settings


def write_files(root: Path, files: dict) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Fleet Admin", "GIT_AUTHOR_EMAIL": "admin@example.com",
           "GIT_COMMITTER_NAME": "Fleet Admin", "GIT_COMMITTER_EMAIL": "admin@example.com",
           "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def seed_remote(directory: Path, files: dict, branch: str = "main") -> str:
    """A bare repository at ``directory`` whose ``branch`` holds ``files`` in one commit; its URL."""
    directory = Path(directory)
    bare = directory / "remote.git"
    work = directory / "seed"
    work.mkdir(parents=True)
    git(directory, "init", "-q", "--bare", "-b", branch, str(bare))
    git(work, "init", "-q", "-b", branch)
    write_files(work, files)
    git(work, "add", "-A")
    git(work, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "Initial fleet")
    git(work, "push", "-q", str(bare), f"HEAD:{branch}")
    return bare.as_uri()


# ---- a large fleet (the benchmark) -----------------------------------------------------------
# The demo's three layouts, repeated over many apps: app i uses FLEET_LAYOUTS[i % 3].

FLEET_LAYOUTS = ("patch", "helmrelease", "ocirepository")


def fleet_apps(count: int, charts) -> list[tuple[str, str, str]]:
    """``count`` apps as (name, layout, chart); layouts and ``charts`` are dealt round-robin."""
    charts = list(charts)
    return [(f"app-{i:04d}", FLEET_LAYOUTS[i % len(FLEET_LAYOUTS)], charts[i % len(charts)])
            for i in range(count)]


def fleet_pin_file(app: tuple, env: str, registry: str, version: str) -> tuple[str, str]:
    """(path, text) of the one file that pins ``app``'s version in ``env``.

    ``registry`` is ``oci://host:port/charts``; the chart is ``<registry>/<chart>``."""
    name, layout, chart = app
    if layout == "patch":
        return f"apps/{env}/{name}-values.yaml", f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {name}
spec:
  chart:
    spec:
      version: "{version}" # pinned by Ferry
  values:
    replicaCount: {1 if env in ('dev', 'qa') else 3}
    ui:
      message: "{name} on {env}"
"""
    if layout == "helmrelease":
        return f"apps/{env}/{name}.yaml", f"""\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: {name}
spec:
  type: oci
  insecure: true
  interval: 10m
  url: {registry}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 30m
  chart:
    spec:
      chart: {chart}
      version: {version}
      sourceRef:
        kind: HelmRepository
        name: charts
  values:
    image:
      tag: 7.2.4 # not a chart version
    architecture: {'standalone' if env == 'dev' else 'replication'}
"""
    if layout == "ocirepository":
        return f"apps/{env}/{name}.yaml", f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 24h
  insecure: true
  url: {registry}/{chart}
  ref:
    tag: {version}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 12h
  chartRef:
    kind: OCIRepository
    name: {name}
  values:
    crds:
      enabled: true
"""
    raise ValueError(f"unknown layout {layout!r}")


def _fleet_base_files(app: tuple, registry: str) -> dict:
    name, _, chart = app
    return {
        f"apps/base/{name}/kustomization.yaml": f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {name}
resources:
  - namespace.yaml
  - repository.yaml
  - release.yaml
""",
        f"apps/base/{name}/namespace.yaml": f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
""",
        f"apps/base/{name}/repository.yaml": f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: {name}
  namespace: {name}
spec:
  type: oci
  insecure: true
  interval: 5m
  url: {registry}
""",
        f"apps/base/{name}/release.yaml": f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 50m
  releaseName: {name}
  chart:
    spec:
      chart: {chart}
      sourceRef:
        kind: HelmRepository
        name: {name}
  # Default values
  values:
    redis:
      enabled: true
      tag: 7.2.4
""",
    }


def fleet_files(registry: str, apps: list, pins: dict, environments=ENVIRONMENTS) -> dict:
    """A repository of ``apps`` (from ``fleet_apps``) in every environment: path -> text.

    ``pins`` maps (app name, environment) to the version pinned there. Each environment is one
    kustomization listing every app, the way ``demo_files`` lays out its three apps."""
    files = {"README.md": "# Flux fleet\n\nManaged with Ferry.\n"}
    for app in apps:
        if app[1] == "patch":
            files.update(_fleet_base_files(app, registry))
    for env in environments:
        resources, patches = [], []
        for app in apps:
            path, text = fleet_pin_file(app, env, registry, pins[(app[0], env)])
            files[path] = text
            if app[1] == "patch":
                resources.append(f"../base/{app[0]}")
                patches.append(f"  - path: {path.rsplit('/', 1)[-1]}\n    target:\n"
                               f"      kind: HelmRelease\n      name: {app[0]}\n")
            else:
                resources.append(path.rsplit("/", 1)[-1])
        files[f"apps/{env}/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            + "".join(f"  - {r}\n" for r in resources)
            + ("patches:\n" + "".join(patches) if patches else ""))
    return files
