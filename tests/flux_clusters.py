"""A Flux repository whose environments are given by their cluster entry (``clusters/<env>``),
the way ``flux bootstrap`` lays one out: Flux Kustomizations with patches, postBuild variables
(inline and from a ConfigMap), target namespaces, one Kustomization of another source, and a
chart shared through one OCIRepository. Written for Ferry's tests (no outside source).

``cluster_files(registry_url)`` returns {path: text}; ``cluster_settings(repo_url)`` the settings.
"""
from __future__ import annotations

import textwrap

ENVIRONMENTS = ("staging", "production")
# What each environment runs, and where Flux gets it from.
PODINFO = {"staging": "6.5.1", "production": "6.5.0"}  # a patch in clusters/<env>/apps.yaml
REDIS = {"staging": "18.0.0", "production": "18.0.0"}  # `${REDIS_VERSION}` substituted inline
CERT_MANAGER = {"staging": "v1.14.0", "production": "v1.14.0"}  # from ConfigMap cluster-vars


def _doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _cluster(env: str, registry_url: str) -> dict:
    root = f"clusters/{env}"
    return {
        f"{root}/flux-system/gotk-sync.yaml": _doc(f"""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: flux-system
              namespace: flux-system
            spec:
              interval: 1m0s
              ref:
                branch: main
              url: ssh://git@github.com/acme/fleet
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: flux-system
              namespace: flux-system
            spec:
              interval: 10m0s
              path: ./{root}
              prune: true
              sourceRef:
                kind: GitRepository
                name: flux-system
            """),
        f"{root}/flux-system/kustomization.yaml": _doc("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - gotk-sync.yaml
            """),
        f"{root}/cluster-vars.yaml": _doc(f"""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: cluster-vars
              namespace: flux-system
            data:
              CLUSTER: {env}
              CERT_MANAGER_VERSION: {CERT_MANAGER[env]}
            """),
        f"{root}/infrastructure.yaml": _doc("""
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: infrastructure
              namespace: flux-system
            spec:
              interval: 1h
              path: ./infrastructure/controllers
              prune: true
              sourceRef:
                kind: GitRepository
                name: flux-system
              postBuild:
                substituteFrom:
                  - kind: Secret
                    name: cluster-secrets
                    optional: true
                  - kind: ConfigMap
                    name: cluster-vars
            """),
        f"{root}/apps.yaml": _doc(f"""
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: apps
              namespace: flux-system
            spec:
              interval: 10m
              path: ./apps/{env}
              prune: true
              targetNamespace: apps
              sourceRef:
                kind: GitRepository
                name: flux-system
              postBuild:
                substitute:
                  REDIS_VERSION: "{REDIS[env]}"
                  METRICS_VERSION: "6.5.0"
              patches:
                - target:
                    kind: HelmRelease
                    name: podinfo
                  patch: |
                    - op: replace
                      path: /spec/chart/spec/version
                      value: {PODINFO[env]}
            """),
        f"{root}/dragonfly.yaml": _doc("""
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: dragonfly-auth
              namespace: flux-system
            spec:
              interval: 10m
              path: ./apps/base/dragonfly
              targetNamespace: auth
              sourceRef:
                kind: GitRepository
                name: flux-system
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: dragonfly-cache
              namespace: flux-system
            spec:
              interval: 10m
              path: ./apps/base/dragonfly
              targetNamespace: cache
              sourceRef:
                kind: GitRepository
                name: flux-system
            """),
        f"{root}/tenants.yaml": _doc("""
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: tenants
              namespace: flux-system
            spec:
              interval: 10m
              path: ./
              sourceRef:
                kind: OCIRepository
                name: tenants
            """),
        f"apps/{env}/kustomization.yaml": _doc("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../base/podinfo
              - ../base/redis
              - ../base/metrics
            """),
    }


def _release(name: str, version: str, chart: str = "", values: str = "") -> str:
    text = _doc(f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
        spec:
          interval: 10m
          chart:
            spec:
              chart: {chart or name}
              version: "{version}"
              sourceRef:
                kind: HelmRepository
                name: charts
        """)
    return text + (f"  values:\n{textwrap.indent(_doc(values), '    ')}" if values else "")


def _charts(registry_url: str) -> str:
    return _doc(f"""
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: charts
        spec:
          type: oci
          insecure: true
          interval: 10m
          url: {registry_url}/charts
        """)


def cluster_files(registry_url: str) -> dict:
    files = {}
    for env in ENVIRONMENTS:
        files.update(_cluster(env, registry_url))
    files.update({
        "apps/base/podinfo/kustomization.yaml": _doc("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - release.yaml
              - repository.yaml
            """),
        "apps/base/podinfo/release.yaml": _release("podinfo", "6.5.0"),
        "apps/base/podinfo/repository.yaml": _charts(registry_url),
        "apps/base/redis/release.yaml": _release("redis", "${REDIS_VERSION}") + "---\n" + _charts(registry_url)
        .replace("name: charts", "name: charts", 1),
        # The variable is the chart version and the image tag at once: not one pin.
        "apps/base/metrics/release.yaml": _release("metrics", "${METRICS_VERSION}", chart="podinfo",
                                                   values="image:\n  tag: ${METRICS_VERSION}\n"),
        "apps/base/dragonfly/release.yaml": _doc("""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata:
              name: dragonfly
            spec:
              interval: 10m
              url: oci://REGISTRY/charts/redis
              insecure: true
              ref:
                tag: 18.1.0
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: dragonfly
            spec:
              interval: 10m
              chartRef:
                kind: OCIRepository
                name: dragonfly
            """).replace("oci://REGISTRY", registry_url),
        "infrastructure/controllers/cert-manager.yaml": _charts(registry_url).replace(
            "metadata:\n  name: charts", "metadata:\n  name: charts\n  namespace: cert-manager")
        + "---\n" + _release("cert-manager", "${CERT_MANAGER_VERSION:=v1.14.0}").replace(
            "metadata:\n  name: cert-manager", "metadata:\n  name: cert-manager\n  namespace: cert-manager"),
    })
    return files


def cluster_settings(repo_url: str) -> dict:
    return {"repo": {"url": repo_url, "branch": "main"},
            "environments": [{"name": e, "path": f"clusters/{e}"} for e in ENVIRONMENTS]}
