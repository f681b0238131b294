"""The charts the preview tests build and push: ``web`` in four versions whose differences are
the cases of issue 23 (changed defaults, a key removed that environments set, a schema their
values break, a CRD added, change notes in both of Artifact Hub's forms across three versions, an
image list), and the Flux files of a fleet running it."""
from __future__ import annotations

import json

WEB_VALUES_6 = (b"replicaCount: 1\ningress:\n  enabled: false\n  hosts:\n    - chart-example.local\n"
                b"service:\n  port: 80\n")
WEB_SCHEMA_7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "properties": {"replicaCount": {"type": "integer", "minimum": 1},
                               "service": {"type": "object", "required": ["port"]}}}
WIDGETS_CRD = b"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object}
"""
IMAGES_6 = "- name: web\n  image: ghcr.io/example/web:6.0.0\n"
IMAGES_7 = "- name: web\n  image: ghcr.io/example/web:7.0.0\n- name: metrics\n  image: ghcr.io/example/metrics:1.0.0\n"

# version -> (files besides Chart.yaml, Chart.yaml additions)
WEB = {
    "6.0.0": ({"values.yaml": WEB_VALUES_6},
              {"annotations": {"artifacthub.io/images": IMAGES_6}}),
    "6.1.0": ({"values.yaml": WEB_VALUES_6 + b"resources: {}\n"},
              {"annotations": {"artifacthub.io/images": IMAGES_6, "artifacthub.io/changes":
                               "- kind: added\n  description: A resources block\n"}}),
    "6.2.0": ({"values.yaml": WEB_VALUES_6.replace(b"port: 80", b"port: 8080") + b"resources: {}\n"},
              {"annotations": {"artifacthub.io/images": IMAGES_6, "artifacthub.io/changes":
                               "- The service listens on 8080 by default\n- Probes wait longer\n"}}),
    "7.0.0": ({"values.yaml": b"replicaCount: 2\ningress:\n  enabled: false\n  rules: []\n"
                              b"service:\n  port: 8080\nresources: {}\n",
               "values.schema.json": json.dumps(WEB_SCHEMA_7).encode(),
               "crds/widgets.yaml": WIDGETS_CRD},
              {"kubeVersion": ">=1.27.0-0", "home": "https://example.com/web",
               "sources": ["https://github.com/example/web"],
               "annotations": {"artifacthub.io/images": IMAGES_7, "artifacthub.io/changes":
                               "- kind: removed\n  description: ingress.hosts, use ingress.rules\n"
                               "- kind: security\n  description: Runs as non-root\n  links:\n"
                               "    - name: CVE-2026-0001\n      url: https://example.com/cve\n"}}),
}


def release_file(repository_url: str, version: str, secret: bool = False, oci: bool = True) -> str:
    """``web``'s HelmRepository and HelmRelease: values that set replicaCount as a string (the
    new schema wants an integer), ingress.hosts (gone in 7.0.0) and service.port."""
    kind = "  type: oci\n  insecure: true\n" if oci else ""
    values_from = "  valuesFrom:\n    - kind: Secret\n      name: web-secrets\n" if secret else ""
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: web
spec:
{kind}  interval: 1h
  url: {repository_url}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  interval: 30m
  chart:
    spec:
      chart: web
      version: {version}
      sourceRef:
        kind: HelmRepository
        name: charts
{values_from}  values:
    replicaCount: "3"
    ingress:
      hosts:
        - web.example.com
    service:
      port: 9090
"""
