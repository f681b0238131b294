"""A Flux repository whose apps are tracked by image tags (a plain helper module, no fixtures).

Two environments, dev and qa, each an `apps/<env>` folder:
- ``web``: its own chart (podinfo) and ``image: {repository, tag}`` in its values: tracked by its
  chart version, its image shown beside it;
- ``api`` and ``worker``: one generic chart (podinfo standing in for app-template) whose version a
  kustomize patch sets for every release labelled ``chart: app-template`` (one line, shared):
  tracked by their image tags. ``api`` has two containers (``app``, ``sidecar``) under
  ``controllers.main.containers``; ``worker``'s whole image is marked for Flux's image
  automation (``# {"$imagepolicy": "flux-system:worker"}``) and written ``repo:tag`` in one string;
- ``cron``: its tag marked ``…:tag`` in a shape no chart convention names (``job.img.version``),
  its repository marked ``…:name`` beside it;
- ``static``: no chart, a Deployment whose tag kustomize's ``images: newTag`` sets.
"""
from __future__ import annotations

import textwrap

ENVIRONMENTS = ("dev", "qa")
TAGS = {"dev": "1.1.0", "qa": "1.0.0"}


def _doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def files(registry_host: str, registry_url: str) -> dict:
    out = {}
    for env in ENVIRONMENTS:
        tag = TAGS[env]
        images = f"{registry_host}/images"
        out[f"apps/{env}/kustomization.yaml"] = _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - repository.yaml
              - web.yaml
              - api.yaml
              - worker.yaml
              - cron.yaml
              - static
            patches:
              - path: app-template.yaml
                target:
                  kind: HelmRelease
                  labelSelector: chart=app-template
            """)
        out[f"apps/{env}/app-template.yaml"] = _doc("""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: app-template
            spec:
              chart:
                spec:
                  version: 6.5.0
            """)
        out[f"apps/{env}/repository.yaml"] = _doc(f"""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata:
              name: charts
              namespace: flux-system
            spec:
              type: oci
              insecure: true
              url: {registry_url}/charts
            """)
        out[f"apps/{env}/web.yaml"] = _doc(f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: web
              namespace: web
            spec:
              chart:
                spec:
                  chart: podinfo
                  version: {"6.5.1" if env == "dev" else "6.5.0"}
                  sourceRef:
                    kind: HelmRepository
                    name: charts
                    namespace: flux-system
              values:
                replicaCount: 2
                image:
                  repository: {images}/web
                  tag: {tag}
            """)
        out[f"apps/{env}/api.yaml"] = _doc(f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: api
              namespace: api
              labels:
                chart: app-template
            spec:
              chart:
                spec:
                  chart: podinfo
                  sourceRef:
                    kind: HelmRepository
                    name: charts
                    namespace: flux-system
              values:
                controllers:
                  main:
                    containers:
                      app:
                        image:
                          repository: {images}/api
                          tag: {tag}
                      sidecar:
                        image:
                          repository: {images}/sidecar
                          tag: 1.0.0
            """)
        out[f"apps/{env}/worker.yaml"] = _doc(f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: worker
              namespace: worker
              labels:
                chart: app-template
            spec:
              chart:
                spec:
                  chart: podinfo
                  sourceRef:
                    kind: HelmRepository
                    name: charts
                    namespace: flux-system
              values:
                controllers:
                  main:
                    containers:
                      worker:
                        image: {images}/worker:{tag} # {{"$imagepolicy": "flux-system:worker"}}
            """)
        out[f"apps/{env}/cron.yaml"] = _doc(f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: cron
              namespace: cron
              labels:
                chart: app-template
            spec:
              chart:
                spec:
                  chart: podinfo
                  sourceRef:
                    kind: HelmRepository
                    name: charts
                    namespace: flux-system
              values:
                job:
                  img:
                    repo: {images}/web # {{"$imagepolicy": "flux-system:cron:name"}}
                    version: {tag} # {{"$imagepolicy": "flux-system:cron:tag"}}
            """)
        out[f"apps/{env}/static/kustomization.yaml"] = _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - deployment.yaml
            images:
              - name: {images}/static
                newTag: {tag}
            """)
        out[f"apps/{env}/static/deployment.yaml"] = _doc(f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: static
            spec:
              template:
                spec:
                  containers:
                    - name: static
                      image: {images}/static:0.0.1
            """)
    return out


def settings(repo_url: str, **apps) -> dict:
    out = {"repo": {"url": repo_url, "branch": "main"},
           "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}
    if apps:
        out["apps"] = apps
    return out
