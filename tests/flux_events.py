"""Flux events for the tests, built from Flux's documented payloads and signed the way
notification-controller signs them (a plain helper module, no fixtures).

``flux_event(...)`` starts from helm-controller's documented event (``tests/data/flux-status/
helmrelease-v2-event-example.yaml``: its annotations become the event's ``metadata``, as
notification-controller forwards them) in the JSON shape of the generic provider
(notification-controller's ``docs/spec/v1beta3/providers.md``), then sets the release, reason,
revision and time asked for.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Optional

from ruamel.yaml import YAML

from gitops.feedback.events import sign
from tests.refs import EVENT_EXAMPLE

_documented = YAML(typ="safe").load(EVENT_EXAMPLE.read_text())

# The documented example, as notification-controller posts it to a generic(-hmac) provider.
DOCUMENTED = {
    "involvedObject": dict(_documented["involvedObject"], uid="7d0cdc51-ddcf-4743-b223-83ca5c699632"),
    "metadata": dict(_documented["metadata"]["annotations"]),
    "severity": "info",
    "reason": _documented["reason"],
    "message": _documented["message"],
    "reportingController": _documented["source"]["component"],
    "reportingInstance": "helm-controller-5f7457c9dd-s4kx9",
    "timestamp": _documented["lastTimestamp"],
}

MESSAGES = {
    "InstallSucceeded": "Helm install succeeded for release {ns}/{name}.v1 with chart {name}@{rev}",
    "UpgradeSucceeded": "Helm upgrade succeeded for release {ns}/{name}.v2 with chart {name}@{rev}",
    "TestSucceeded": "Helm test succeeded for release {ns}/{name}.v2 with chart {name}@{rev}: "
                     "3 test hooks completed successfully",
    "UpgradeFailed": "Helm upgrade failed for release {ns}/{name} with chart {name}@{rev}: "
                     "context deadline exceeded",
    "TestFailed": "Helm test failed for release {ns}/{name}.v2 with chart {name}@{rev}: 1 error occurred:\n"
                  "\t* pod {name}-fault-test-a0tew failed",
    "RollbackSucceeded": "Helm rollback to previous release {ns}/{name}.v1 with chart {name}@{rev} succeeded",
    "Progressing": "Running 'upgrade' action with timeout of 5m0s",
}
ERRORS = {"UpgradeFailed", "TestFailed", "InstallFailed", "RollbackFailed"}


def now_rfc3339(when: Optional[datetime] = None) -> str:
    return (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def flux_event(name: str = "podinfo", namespace: str = "podinfo", reason: str = "UpgradeSucceeded",
               version: str = "6.5.3", digest: str = "0cc9a8446c95", timestamp: Optional[str] = None,
               message: Optional[str] = None, kind: str = "HelmRelease") -> dict:
    event = copy.deepcopy(DOCUMENTED)
    revision = f"{version}+{digest}" if digest else version
    event["involvedObject"].update(kind=kind, name=name, namespace=namespace)
    event["metadata"]["helm.toolkit.fluxcd.io/revision"] = revision
    event["metadata"]["helm.toolkit.fluxcd.io/app-version"] = f"app-{version}"
    event["reason"] = reason
    event["severity"] = "error" if reason in ERRORS else "info"
    event["message"] = message if message is not None else MESSAGES.get(reason, reason).format(
        ns=namespace, name=name, rev=revision)
    event["timestamp"] = timestamp or now_rfc3339()
    return event


def encode(event: dict) -> bytes:
    """The body as Go's encoding/json writes it: compact."""
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def signed(body: bytes, token: str) -> dict:
    return {"Content-Type": "application/json", "Gotk-Component": "helm-controller",
            "User-Agent": "Go-http-client/1.1", "X-Signature": sign(body, token)}


class Clock:
    """Feedback's clock, in epoch seconds: now, until a test moves it."""

    def __init__(self):
        self.now = datetime.now(timezone.utc).timestamp()

    def __call__(self):
        return self.now
