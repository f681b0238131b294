"""One Flux repository with each kind of file discovery reads under any name, and the commits
colleagues push to it, for the carry tests and the chat tests.

``fleet(host)``: dev reads the base release (listed as `helm-release` by a file named
`Kustomization`); prod's version comes from a JSON 6902 patch in `version.json`; stag runs its own
release from `podinfo.hr`. ``NOT_VERSIONS``: commits that change what Flux applies beyond a version
(each kind by name); ``VERSIONS_ONLY``: commits that only rewrite versions. Written for Ferry's
tests (no outside source).
"""
from __future__ import annotations


def fleet(host: str) -> dict:
    """dev reads the base line; prod's version comes from a JSON 6902 patch in `version.json`
    listed by a kustomization file named `Kustomization`; stag runs its own release from a file
    listed as `podinfo.hr`. ``host``: the registry's ``host:port`` (charts/podinfo,
    images/sidecar)."""
    release_text = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: "{version}"
      sourceRef:
        kind: HelmRepository
        name: charts
  values:
    replicaCount: 1
    sidecar:
      repository: {host}/images/sidecar
      tag: 1.0.0
"""
    repository_text = f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: podinfo
spec:
  type: oci
  insecure: true
  url: oci://{host}/charts
"""
    return {
        "apps/base/podinfo/Kustomization": "resources:\n  - helm-release\n  - repository.yaml\n",
        "apps/base/podinfo/helm-release": release_text.format(version="6.5.0", host=host),
        "apps/base/podinfo/repository.yaml": repository_text,
        "apps/dev/kustomization.yml": "resources:\n  - ../base/podinfo\n",
        "apps/prod/Kustomization": "resources:\n  - ../base/podinfo\npatches:\n  - path: version.json\n"
                                   "    target:\n      kind: HelmRelease\n      name: podinfo\n",
        "apps/prod/version.json": '[{"op": "replace", "path": "/spec/chart/spec/version", "value": "6.5.1"}]\n',
        "apps/stag/kustomization.yaml": "resources:\n  - podinfo.hr\n  - repository.yaml\n",
        "apps/stag/podinfo.hr": release_text.format(version="6.5.2", host=host),
        "apps/stag/repository.yaml": repository_text,
        "README.md": "# The fleet\n",
    }


FLEET_SETTINGS = {"repo": {"url": "file:///fleet.git", "branch": "main"},
                  "environments": [{"name": e, "path": f"apps/{e}"} for e in ("dev", "stag", "prod")]}
MARKER = '# {"$imagepolicy": "flux-system:podinfo:tag"}'

# A colleague's commit by what it changes: files -> the files it writes.
NOT_VERSIONS = {
    # prod's patch sets something else now: prod reads the base line, with dev.
    "json patch": lambda f: {"apps/prod/version.json": f["apps/prod/version.json"].replace(
        "/spec/chart/spec/version", "/spec/values/replicaCount").replace('"6.5.1"', "2")},
    # prod's patch is no longer listed (in a kustomization file named `Kustomization`).
    "Kustomization": lambda f: {"apps/prod/Kustomization": f["apps/prod/Kustomization"].split("patches:")[0]},
    # stag's release (listed as `podinfo.hr`) renamed: `podinfo` is not in stag any more.
    "resource under any name": lambda f: {"apps/stag/podinfo.hr": f["apps/stag/podinfo.hr"].replace(
        "  name: podinfo\n", "  name: podinfo-v2\n", 1)},
    # a comment only: Flux's setter marker makes the line an image tag Ferry tracks.
    "marker added": lambda f: {"apps/base/podinfo/helm-release": f["apps/base/podinfo/helm-release"].replace(
        "tag: 1.0.0", f"tag: 1.0.0 {MARKER}")},
}
VERSIONS_ONLY = {
    "json patch": lambda f: {"apps/prod/version.json": f["apps/prod/version.json"].replace("6.5.1", "6.5.3")},
    "resource under any name": lambda f: {"apps/stag/podinfo.hr": f["apps/stag/podinfo.hr"].replace(
        'version: "6.5.2"', 'version: "6.5.3"')},
    "marked tag": lambda f: {"apps/base/podinfo/helm-release": f["apps/base/podinfo/helm-release"].replace(
        "tag: 1.0.0", "tag: 1.1.0")},
}
