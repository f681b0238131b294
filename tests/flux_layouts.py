"""A Flux repository made of minimal copies of layouts real teams use (a plain helper module, no
fixtures), each a case of issue 18 that Ferry once answered silently wrong:

- ``tenants/team-a`` and ``team-b`` (dev): each folder sets its namespace and includes two kustomize
  Components: ``podinfo-source`` (an OCIRepository each namespace's release reads) and ``cache`` (an
  OCIRepository and its HelmRelease). kustomize makes one copy per namespace;
- ``apps/base/static`` sets image ``images/static`` to ``0.0.1`` with ``images:``; the overlay
  ``apps/<env>/static`` (a folder holding only its kustomization.yaml) sets it again: the overlay
  decides. ``apps/<env>/worker`` is the same with a manifest of its own in the overlay;
- ``apps/<env>/releases``: ``web`` (its image tag written with its digest in dev), ``api``
  (tracked by its image, ``apps.api.track: image``), ``runner`` (an OCI chart named with a path
  under its HelmRepository, as ``oci://ghcr.io/actions`` + ``actions-runner-controller-charts/…``)
  and ``mail`` (its chart version set by a kustomize replacement from a ConfigMap);
- ``clusters/<env>/queues.yaml``: two Flux Kustomizations of ``apps/queue`` whose
  ``targetNamespace`` kustomize ``replacements`` in ``clusters/<env>/kustomization.yaml`` set;
- ``clusters/<env>/artifacts.yaml``: Flux 2.7's ArtifactGenerator copying ``shop/base`` and
  ``shop/<env>`` into ExternalArtifact ``shop`` (as Flux's own example repository does), which
  Kustomization ``shop`` applies; and ExternalArtifact ``odd``, whose copy renames a file: refused.

Expected answers were written from kustomize's documentation and checked against kustomize v5.5's
own output (``kubectl kustomize``) when the layouts were written.
"""
from __future__ import annotations

import textwrap

ENVIRONMENTS = ("dev", "prod")
DIGEST = "sha256:" + "ab" * 32
STATIC = {"dev": "1.1.0", "prod": "1.0.0"}  # the overlay's newTag (the base says 0.0.1)
SHOP = {"dev": "6.5.2", "prod": "6.5.0"}  # a patch in shop/<env>, through the ExternalArtifact
MAIL = {"dev": "6.5.1", "prod": "6.5.0"}  # ConfigMap cluster-settings, by a replacement


def _doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _release(name: str, chart: str, version: str = "", source: str = "charts", values: str = "",
             namespace: str = "apps") -> str:
    text = _doc(f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          namespace: {namespace}
        spec:
          interval: 10m
          chart:
            spec:
              chart: {chart}
              sourceRef:
                kind: HelmRepository
                name: {source}
                namespace: flux-system
        """)
    if version:
        text = text.replace(f"      chart: {chart}\n", f"      chart: {chart}\n      version: \"{version}\"\n")
    return text + (f"  values:\n{textwrap.indent(_doc(values), '    ')}" if values else "")


def _flux_kustomization(name: str, path: str, source: str = "GitRepository flux-system",
                        extra: str = "") -> str:
    kind, source_name = source.split()
    return _doc(f"""
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 10m
          path: {path}
          prune: true
          sourceRef:
            kind: {kind}
            name: {source_name}
        """) + extra


def _cluster(env: str, host: str, url: str) -> dict:
    root = f"clusters/{env}"
    tenants = ["../../tenants/team-a", "../../tenants/team-b"] if env == "dev" else []
    resources = ["settings.yaml", "queues.yaml", "artifacts.yaml", *tenants,
                 f"../../apps/{env}/static", f"../../apps/{env}/worker", f"../../apps/{env}/releases"]
    listed = "".join(f"  - {r}\n" for r in resources)
    return {
        f"{root}/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n{listed}" + _doc("""
            replacements:
              - source:
                  kind: ConfigMap
                  name: cluster-settings
                  fieldPath: data.east
                targets:
                  - select:
                      kind: Kustomization
                      name: queue-east
                    fieldPaths:
                      - spec.targetNamespace
              - source:
                  kind: ConfigMap
                  name: cluster-settings
                  fieldPath: data.west
                targets:
                  - select:
                      kind: Kustomization
                      name: queue-west
                    fieldPaths:
                      - spec.targetNamespace
              - source:
                  kind: ConfigMap
                  name: cluster-settings
                  fieldPath: data.mail_version
                targets:
                  - select:
                      kind: HelmRelease
                      name: mail
                    fieldPaths:
                      - spec.chart.spec.version
            """),
        f"{root}/settings.yaml": _doc(f"""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: cluster-settings
              namespace: flux-system
            data:
              east: east
              west: west
              mail_version: {MAIL[env]}
            """),
        f"{root}/queues.yaml": _flux_kustomization("queue-east", "./apps/queue", extra="  targetNamespace: set-by-replacements\n")
        + "---\n" + _flux_kustomization("queue-west", "./apps/queue", extra="  targetNamespace: set-by-replacements\n"),
        f"{root}/artifacts.yaml": _doc(f"""
            apiVersion: source.extensions.fluxcd.io/v1beta1
            kind: ArtifactGenerator
            metadata:
              name: flux-system
              namespace: flux-system
            spec:
              sources:
                - alias: monorepo
                  kind: GitRepository
                  name: flux-system
              artifacts:
                - name: shop
                  originRevision: "@monorepo"
                  copy:
                    - from: "@monorepo/shop/base/**"
                      to: "@artifact/base/"
                    - from: "@monorepo/shop/{env}/**"
                      to: "@artifact/{env}/"
                - name: odd
                  copy:
                    - from: "@monorepo/odd/release.yaml"
                      to: "@artifact/deploy/app.yaml"
            ---
            """) + _flux_kustomization("shop", f"./{env}", "ExternalArtifact shop")
        + "---\n" + _flux_kustomization("odd", "./deploy", "ExternalArtifact odd"),
        f"apps/{env}/static/kustomization.yaml": _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../../base/static
            images:
              - name: {host}/images/static
                newTag: {STATIC[env]}
            """),
        f"apps/{env}/worker/kustomization.yaml": _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../../base/worker
              - config.yaml
            images:
              - name: {host}/images/worker
                newTag: {STATIC[env]}
            """),
        f"apps/{env}/worker/config.yaml": _doc(f"""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: worker
            data:
              ENVIRONMENT: {env}
            """),
        f"apps/{env}/releases/kustomization.yaml": _doc("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources: [repositories.yaml, web.yaml, api.yaml, runner.yaml, mail.yaml]
            """),
        f"apps/{env}/releases/repositories.yaml": _doc(f"""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata:
              name: charts
              namespace: flux-system
            spec:
              type: oci
              insecure: true
              url: {url}/charts
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata:
              name: root
              namespace: flux-system
            spec:
              type: oci
              insecure: true
              url: {url}
            """),
        f"apps/{env}/releases/web.yaml": _release("web", "podinfo", "6.5.1", values=f"""
            image:
              repository: {host}/images/web
              tag: "{'1.0.0@' + DIGEST if env == 'dev' else '1.0.0'}"
            """),
        f"apps/{env}/releases/api.yaml": _release("api", "podinfo", "6.5.0", values=f"""
            image:
              repository: {host}/images/api
              tag: {'1.1.0' if env == 'dev' else '1.0.0'}
            """),
        f"apps/{env}/releases/runner.yaml": _release("runner", "charts/redis", "18.0.0", source="root"),
        f"apps/{env}/releases/mail.yaml": _release("mail", "podinfo", "0.0.0-set-by-replacements"),
        f"shop/{env}/kustomization.yaml": _doc("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../base
            patches:
              - path: version.yaml
            """),
        f"shop/{env}/version.yaml": _doc(f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: shop
              namespace: shop
            spec:
              chart:
                spec:
                  version: {SHOP[env]}
            """),
    }


def _component(resources: list) -> str:
    return "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n" + \
        "".join(f"  - {r}\n" for r in resources)


def _oci_repository(name: str, url: str, tag: str) -> str:
    return _doc(f"""
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata:
          name: {name}
        spec:
          interval: 10m
          url: {url}
          insecure: true
          ref:
            tag: {tag}
        """)


def _chart_ref_release(name: str, source: str) -> str:
    return _doc(f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
        spec:
          interval: 10m
          chartRef:
            kind: OCIRepository
            name: {source}
        """)


def _base_image(name: str, host: str) -> dict:
    return {
        f"apps/base/{name}/kustomization.yaml": _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - deployment.yaml
            images:
              - name: {host}/images/{name}
                newTag: 0.0.1
            """),
        f"apps/base/{name}/deployment.yaml": _doc(f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {name}
            spec:
              template:
                spec:
                  containers:
                    - name: {name}
                      image: {host}/images/{name}
            """),
    }


def files(registry_host: str, registry_url: str) -> dict:
    out = {}
    for env in ENVIRONMENTS:
        out.update(_cluster(env, registry_host, registry_url))
    for team, release in (("team-a", "alpha"), ("team-b", "beta")):
        out[f"tenants/{team}/kustomization.yaml"] = _doc(f"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            namespace: {team}
            resources:
              - release.yaml
            components:
              - ../../components/podinfo-source
              - ../../components/cache
            """)
        out[f"tenants/{team}/release.yaml"] = _chart_ref_release(release, "podinfo")
    out["components/podinfo-source/kustomization.yaml"] = _component(["ocirepository.yaml"])
    out["components/podinfo-source/ocirepository.yaml"] = _oci_repository(
        "podinfo", f"{registry_url}/charts/podinfo", "6.5.0")
    out["components/cache/kustomization.yaml"] = _component(["cache.yaml"])
    out["components/cache/cache.yaml"] = _oci_repository("cache", f"{registry_url}/charts/redis", "18.0.0") \
        + "---\n" + _chart_ref_release("cache", "cache")
    out.update(_base_image("static", registry_host))
    out.update(_base_image("worker", registry_host))
    out["apps/queue/release.yaml"] = _release("queue", "redis", "18.0.0", namespace="placeholder")
    out["shop/base/kustomization.yaml"] = _doc("""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - release.yaml
        """)
    out["shop/base/release.yaml"] = _release("shop", "podinfo", namespace="shop")
    out["odd/release.yaml"] = _release("odd", "podinfo", "6.5.0", namespace="odd")
    return out


def settings(repo_url: str) -> dict:
    return {"repo": {"url": repo_url, "branch": "main"},
            "environments": [{"name": e, "path": f"clusters/{e}"} for e in ENVIRONMENTS],
            "apps": {"api": {"track": "image"}}}
