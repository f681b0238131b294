"""The benchmark fleet laid out the way `flux bootstrap` repositories are: each environment given by
its cluster entry (``clusters/<env>``), whose Flux Kustomization applies ``apps/<env>`` with
patches and postBuild variables. A third of the pins each: the HelmRelease's own version, a
``${VERSION_<app>}`` variable from the cluster's ConfigMap, a patch in the cluster Kustomization.
"""
from __future__ import annotations

from devtools.fluxrepo import ENVIRONMENTS


def _var(app: str) -> str:
    return "VERSION_" + app.replace("-", "_").upper()


def cluster_fleet_files(registry: str, apps: list, pins: dict, environments=ENVIRONMENTS) -> dict:
    """path -> text; ``apps`` as (name, layout, chart), ``pins`` (app, env) -> version."""
    files = {}
    for env in environments:
        root = f"clusters/{env}"
        variables, patches, resources = [], [], ["repository.yaml"]
        for i, (app, _, chart) in enumerate(apps):
            version = pins[(app, env)]
            written = version
            if i % 3 == 1:
                written = "${%s}" % _var(app)
                variables.append(f"  {_var(app)}: \"{version}\"\n")
            elif i % 3 == 2:
                written = "0.0.0"
                patches.append(f"    - target:\n        kind: HelmRelease\n        name: {app}\n"
                               f"      patch: |\n        - op: replace\n"
                               f"          path: /spec/chart/spec/version\n          value: {version}\n")
            resources.append(f"{app}.yaml")
            files[f"apps/{env}/{app}.yaml"] = (
                f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {app}\n"
                f"spec:\n  interval: 10m\n  chart:\n    spec:\n      chart: {chart}\n"
                f"      version: \"{written}\"\n      sourceRef:\n        kind: HelmRepository\n"
                f"        name: charts\n  values:\n    replicaCount: 2\n")
        files[f"apps/{env}/repository.yaml"] = (
            f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n"
            f"spec:\n  type: oci\n  insecure: true\n  interval: 10m\n  url: {registry}\n")
        files[f"apps/{env}/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            + "".join(f"  - {r}\n" for r in resources))
        files[f"{root}/flux-system/gotk-sync.yaml"] = (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n"
            "  namespace: flux-system\nspec:\n  interval: 1m\n  ref:\n    branch: main\n"
            "  url: ssh://git@example.com/fleet\n---\n"
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./{root}\n  prune: true\n"
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n")
        files[f"{root}/flux-system/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - gotk-sync.yaml\n")
        files[f"{root}/cluster-vars.yaml"] = (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\n"
            "data:\n" + "".join(variables))
        files[f"{root}/apps.yaml"] = (
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./apps/{env}\n  prune: true\n"
            f"  targetNamespace: apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
            "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-vars\n"
            "  patches:\n" + "".join(patches))
    return files


def cluster_fleet_settings(repo_url: str, environments=ENVIRONMENTS) -> dict:
    return {"repo": {"url": repo_url, "branch": "main"},
            "environments": [{"name": e, "path": f"clusters/{e}"} for e in environments]}
