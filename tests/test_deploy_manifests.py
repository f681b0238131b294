"""What ships: deploy/ (Ferry's Kubernetes manifests, a kustomize base, and the Flux example), the
Dockerfile and the Slack app manifest, checked against the real schemas.

Kubernetes objects are validated with ``kubernetes-validate`` (strict: unknown fields fail) against
the Kubernetes API schemas it ships (no network). Flux objects are validated with ``jsonschema``
against the ``openAPIV3Schema`` of their real CRD (``tests/data/flux-crds``): the example that runs
Ferry, the Provider and Alert docs/flux.md tells users to apply, and the demo repository; kustomize
itself is not installed, so the kustomization's references are checked one by one."""
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from devtools.fluxrepo import demo_files
from tests.refs import FLUX_CRDS

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "base"
FLUX = ROOT / "deploy" / "flux" / "ferry.yaml"
EXAMPLES = ROOT / "deploy" / "examples"
K8S_VERSIONS = ("1.28", "1.30", kubernetes_validate.latest_version())

def documents(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base_objects() -> list:
    kustomization = documents(BASE / "kustomization.yaml")[0]
    return [(name, doc) for name in kustomization["resources"] for doc in documents(BASE / name)]


def crd_schema(group: str, kind: str, version: str) -> dict:
    """The openAPIV3Schema of ``group``/``kind`` ``version`` from the newest CRD in tests/data."""
    found = None
    for path in sorted(FLUX_CRDS.glob("*/*.yaml")):
        for crd in documents(path):
            spec = crd.get("spec", {})
            if spec.get("group") == group and spec.get("names", {}).get("kind") == kind:
                for v in spec.get("versions", []):
                    if v["name"] == version:
                        found = v["schema"]["openAPIV3Schema"]
    assert found is not None, f"no CRD for {group}/{version} {kind} in {FLUX_CRDS}"
    return found


def validate_flux_object(doc: dict) -> None:
    group, version = doc["apiVersion"].split("/")
    jsonschema.validate(doc, crd_schema(group, doc["kind"], version))


def test_the_kustomization_lists_every_file_and_only_files_that_exist():
    kustomization = documents(BASE / "kustomization.yaml")[0]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(set(listed)) == len(listed)
    for name in listed:
        assert (BASE / name).is_file(), f"{name} is listed but missing"
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(listed), f"not listed: {on_disk - set(listed)}"
    assert {i["name"] for i in kustomization["images"]} == {
        d["spec"]["template"]["spec"]["containers"][0]["image"] for _, d in base_objects()
        if d["kind"] == "Deployment"}


def example_objects() -> list:
    return [(p.name, doc) for p in sorted(EXAMPLES.glob("*.yaml")) for doc in documents(p)]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_object_is_valid(version):
    objects = base_objects() + example_objects()
    assert {d["kind"] for _, d in objects} >= {"Deployment", "Service", "PersistentVolumeClaim",
                                               "ConfigMap", "ServiceAccount", "Namespace",
                                               "NetworkPolicy", "Ingress"}
    for name, doc in objects:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {doc['kind']} is not valid for Kubernetes {version}: {e.message} "
                        f"at {'.'.join(map(str, e.path))}")


def test_the_validator_does_catch_mistakes():
    """The check above has teeth: an unknown field and a wrong type are refused."""
    deployment = next(d for _, d in base_objects() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_the_deployment_runs_ferry_as_designed():
    objects = {d["kind"]: d for _, d in base_objects()}
    deployment, service = objects["Deployment"], objects["Service"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    for var, key in (("SLACK_BOT_TOKEN", "bot-token"), ("SLACK_APP_TOKEN", "app-token")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "ferry-slack", "key": key}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["git-key"]["secret"]["secretName"] == "ferry-git"
    assert env["GITOPS_GIT_SSH_KEY_FILE"]["value"].startswith(mounts["git-key"] + "/")
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == objects["PersistentVolumeClaim"]["metadata"]["name"]
    assert mounts["data"] == "/data"  # the Dockerfile's VOLUME and FERRY_DATA_DIR
    settings = objects["ConfigMap"]
    assert env["GITOPS_CONFIG"]["value"] == mounts["settings"] + "/ferry.yaml"
    assert volumes["settings"]["configMap"]["name"] == settings["metadata"]["name"]
    assert "ferry.yaml" in settings["data"]
    # the Service reaches the container's webserver port, which FERRY_WEBSERVER_PORT opens
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert env["FERRY_WEBSERVER_PORT"]["value"] == str(port)
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert container["livenessProbe"]["httpGet"]["path"] == "/ferry/health"
    assert container["readinessProbe"]["httpGet"] == {"path": "/ferry/ready", "port": "http"}
    scrape = spec["template"]["metadata"]["annotations"]
    assert scrape["prometheus.io/scrape"] == "true" and scrape["prometheus.io/path"] == "/metrics"
    assert scrape["prometheus.io/port"] == str(port)


def test_ferry_check_runs_first_with_what_the_bot_uses():
    """The init container checks the set-up the bot will run with: the same image, settings,
    secrets and mounts, `ferry check` as its command, as locked down as the bot."""
    pod = next(d for _, d in base_objects() if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (check,) = pod["initContainers"]
    (bot,) = pod["containers"]
    assert check["command"] == ["ferry", "check"] and check["image"] == bot["image"]
    for key in ("env", "envFrom", "volumeMounts", "securityContext"):
        assert check[key] == bot[key], key
    assert "limits" in check["resources"]


def test_only_the_webhook_paths_are_exposed():
    """The Ingress routes /flux/, /slack/events and /slack/interactive to the Service and nothing
    else (not /metrics, not the probes); the NetworkPolicy lets only the ingress controller, Flux's
    notification-controller and Prometheus in, on the webserver port."""
    objects = {d["kind"]: d for _, d in base_objects()}
    service, pod = objects["Service"], objects["Deployment"]["spec"]["template"]
    (ingress,) = [d for _, d in example_objects() if d["kind"] == "Ingress"]
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {(p["path"], p["pathType"]) for p in paths} == {("/flux/", "Prefix"), ("/slack/events", "Exact"),
                                                              ("/slack/interactive", "Exact")}
    assert "defaultBackend" not in ingress["spec"] and ingress["spec"]["tls"]
    for p in paths:
        assert p["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    import ferryweb
    assert {p["path"] for p in paths} <= set(ferryweb.PATHS)  # the server serves these, and /ferry/health
    policy = objects["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert "Ingress" in policy["policyTypes"]
    assert not {"/metrics", "/ferry/ready", "/ferry/health"} & {p["path"] for p in paths}
    assert {"/metrics", "/ferry/ready"} <= set(ferryweb.PATHS)
    webhooks, scrapes = policy["ingress"]
    for rule in (webhooks, scrapes):
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    sources = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in webhooks["from"]]
    assert sources == ["ingress-nginx", "flux-system"]
    (prometheus,) = scrapes["from"]
    assert prometheus["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}


def test_resources_are_limited_and_writable_volumes_bounded():
    deployment = next(d for _, d in base_objects() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    limits = container["resources"]["limits"]
    assert {"cpu", "memory", "ephemeral-storage"} <= limits.keys()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        if mount.get("readOnly"):
            continue
        volume = volumes[mount["name"]]
        # writable: the claimed volume (its size is the claim's), or an emptyDir with a size limit
        assert "persistentVolumeClaim" in volume or volume["emptyDir"].get("sizeLimit"), mount["name"]
    assert volumes["tmp"]["emptyDir"]["sizeLimit"]


def test_the_settings_in_the_config_map_load():
    from gitops.settings import parse_settings
    text = next(d for _, d in base_objects() if d["kind"] == "ConfigMap")["data"]["ferry.yaml"]
    settings = parse_settings(yaml.safe_load(text))
    assert settings.environment_names == ["dev", "qa", "stag", "prod"]


def test_the_shipped_settings_are_closed_until_filled_in():
    """Issue 19: deploy/base let any member of any channel named #deploys change prod (a name
    anyone can take), and dev to stag from anywhere. Now: channels by ID everywhere, prod's
    deployers and approvers named, placeholders that match nobody."""
    from gitops.errors import NotAllowed
    from gitops.guard.policy import ACTIONS, authorise
    from gitops.settings import parse_settings
    text = next(d for _, d in base_objects() if d["kind"] == "ConfigMap")["data"]["ferry.yaml"]
    settings = parse_settings(yaml.safe_load(text), environ={})
    for env in settings.environments:
        assert env.policy.channels, f"{env.name} takes changes from any channel"
        assert not [c for c in env.policy.channels if c.startswith("#")], f"{env.name}: channels by name"
        for action in ACTIONS:
            with pytest.raises(NotAllowed):  # anyone, in a channel named #deploys
                authorise(env.policy, env.name, action, "U0ANYONE", ("C0SOMECHANNEL", "#deploys"))
    prod = settings.environment("prod")
    assert prod.policy.approval and prod.policy.approvers
    for action in ACTIONS:
        assert prod.policy.who_may(action), f"prod: anyone may {action}"
        # even in prod's own channel, only the people named (none until filled in)
        with pytest.raises(NotAllowed):
            authorise(prod.policy, "prod", action, "U0ANYONE", prod.policy.channels)
    assert not prod.shows_values_in(("C0GUESTS", "#deploys"))
    placeholders = {*prod.policy.approvers, *(i for e in settings.environments for i in e.policy.channels),
                    *(i for a in ACTIONS for i in prod.policy.who_may(a))}
    assert all(p.startswith("CHANGEME-") for p in placeholders), placeholders


def test_the_flux_example_is_valid_against_the_flux_schemas():
    docs = documents(FLUX)
    assert {d["kind"] for d in docs} == {"GitRepository", "Kustomization"}
    for doc in docs:
        validate_flux_object(doc)
        assert doc["metadata"]["namespace"] == "flux-system"
    source = next(d for d in docs if d["kind"] == "GitRepository")
    kustomization = next(d for d in docs if d["kind"] == "Kustomization")
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert (ROOT / kustomization["spec"]["path"] / "kustomization.yaml").is_file()


def test_the_flux_crds_catch_mistakes():
    """The CRD route has teeth: a HelmRelease like the ones Ferry edits is valid, one with a
    malformed interval, or a GitRepository without its url, is not."""
    release = crd_schema("helm.toolkit.fluxcd.io", "HelmRelease", "v2")
    good = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "podinfo"},
            "spec": {"interval": "10m", "chart": {"spec": {"chart": "podinfo", "version": "6.5.3",
                                                           "sourceRef": {"kind": "HelmRepository",
                                                                         "name": "podinfo"}}}}}
    jsonschema.validate(good, release)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "spec": {"interval": "soon"}}, release)
    source = next(d for d in documents(FLUX) if d["kind"] == "GitRepository")
    with pytest.raises(jsonschema.ValidationError, match="'url' is a required property"):
        validate_flux_object({**source, "spec": {"interval": "10m"}})


def readme_yaml_documents() -> list:
    text = (ROOT / "docs" / "flux.md").read_text(encoding="utf-8")
    return [d for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
            for d in yaml.safe_load_all(block) if isinstance(d, dict) and "kind" in d]


def test_the_readme_provider_and_alert_are_valid_against_the_flux_schemas():
    """What docs/flux.md tells users to apply for Flux's events is what notification-controller
    accepts: a generic-hmac Provider at Ferry's address and an Alert on HelmReleases."""
    docs = {d["kind"]: d for d in readme_yaml_documents()
            if d.get("apiVersion", "").startswith("notification.toolkit.fluxcd.io/")}
    assert set(docs) == {"Provider", "Alert"}
    for doc in docs.values():
        validate_flux_object(doc)
    assert docs["Provider"]["spec"]["type"] == "generic-hmac"
    assert docs["Alert"]["spec"]["providerRef"]["name"] == docs["Provider"]["metadata"]["name"]
    assert {s["kind"] for s in docs["Alert"]["spec"]["eventSources"]} == {"HelmRelease"}


def test_the_demo_repository_is_valid_against_the_flux_schemas():
    """Every whole Flux object of the demo repository (the one `make demo` and most tests pin
    versions in) is one Flux accepts; the overlay patches are partial by design and left out."""
    files = demo_files("oci://registry.example:5000/charts")
    patches = {str(Path(name).parent / p["path"]) for name, text in files.items()
               if name.endswith("kustomization.yaml")
               for p in (yaml.safe_load(text) or {}).get("patches", [])}
    assert patches, "the demo has overlay patches"
    checked = set()
    for name, text in files.items():
        if not name.endswith(".yaml") or name in patches:
            continue
        for doc in yaml.safe_load_all(text):
            if doc and ".fluxcd.io/" in doc.get("apiVersion", ""):
                validate_flux_object(doc)
                checked.add(doc["kind"])
    assert checked == {"HelmRelease", "HelmRepository", "OCIRepository"}


def test_the_dockerfile_is_pinned_non_root_with_a_health_check_and_a_volume():
    text = (ROOT / "Dockerfile").read_text()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    base = next(l for l in lines if l.startswith("FROM "))
    assert re.fullmatch(r"FROM python:\d+\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base
    user = [l for l in lines if l.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in ("root", "0")
    assert 'VOLUME ["/data"]' in lines
    assert any(l.startswith("HEALTHCHECK ") for l in lines) and "/ferry/health" in text
    for part in ("config.py", "backends/", "plugins/", "requirements.txt"):
        assert re.search(rf"^COPY {re.escape(part)}", text, re.M), part
    assert "requirements-dev" not in text and "tests/" not in text


def test_the_slack_app_manifest_asks_for_what_ferry_uses_and_no_more():
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text())
    assert manifest["settings"]["socket_mode_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == {"channels:history", "channels:read", "chat:write",
                      "groups:history", "groups:read", "im:history", "im:read", "im:write",
                      "reactions:write", "users:read", "users:read.email", "team:read",
                      "files:write"}  # a table too long for a message, as a file in the thread
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"message.channels", "message.groups", "message.im"}
    # every event needs its scope (the end-to-end test checks the Web API methods' scopes)
    needs = {"message.channels": "channels:history", "message.groups": "groups:history",
             "message.im": "im:history"}
    assert {needs[e] for e in events} <= scopes
    assert manifest["features"]["bot_user"]["always_online"] is True
