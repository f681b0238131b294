"""kustomize and Flux as they build, as pure functions over files (no Git, no registry): kustomize
``replacements`` with their options, a file reached by two kustomizations, overlay ``images:``,
and Flux 2.7's ArtifactGenerator. The expected answers are written from kustomize's and Flux's
documentation and were checked against kustomize v5.5's own output (``kubectl kustomize``)."""
from __future__ import annotations

import textwrap

from gitops.flux.discovery import DirTree, discover
from gitops.settings import parse_settings

URL = "oci://registry.test:5000/charts"


def write(root, files: dict) -> DirTree:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    return DirTree(root)


def found(tmp_path, files: dict, images: bool = False):
    settings = parse_settings({"repo": {"url": "file:///srv/fleet.git", "branch": "main"},
                               "environments": [{"name": "dev", "path": "env"}]}, environ={})
    problems = []
    pins = discover(write(tmp_path, files), settings, warnings=problems, with_images=images)
    return {(p.app, p.part): p for p in pins}, [p.reason for p in problems]


def release(name: str, version: str = "", namespace: str = "apps") -> str:
    pinned = f"\n              version: {version}" if version else ""
    return f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          namespace: {namespace}
        spec:
          chart:
            spec:
              chart: podinfo{pinned}
              sourceRef:
                kind: HelmRepository
                name: charts
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: charts
          namespace: {namespace}
        spec:
          type: oci
          url: {URL}
        """


REPLACEMENTS = {
    "env/kustomization.yaml": """
        resources: [config.yaml, created.yaml, other.yaml, follower.yaml]
        replacements:
          - source:
              kind: ConfigMap
              name: versions
              fieldPath: data.image
              options: {delimiter: ":", index: 1}
            targets:
              - select: {kind: HelmRelease}
                reject: [{name: other}]
                fieldPaths: [spec.chart.spec.version]
                options: {create: true}
          - source:
              kind: HelmRelease
              name: other
              fieldPath: spec.chart.spec.version
            targets:
              - select: {kind: HelmRelease, name: follower}
                fieldPaths: [spec.chart.spec.version]
        """,
    "env/config.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: versions, namespace: apps}
        data: {image: "ghcr.io/acme/app:1.2.3"}
        """,
    "env/created.yaml": release("created"),
    "env/other.yaml": release("other", "6.5.0").replace("name: charts\n  namespace", "name: charts2\n  namespace")
    .replace("name: charts\n", "name: charts2\n"),
    "env/follower.yaml": release("follower", "0.0.0").replace("name: charts\n", "name: charts3\n")
    .replace("name: charts\n  namespace", "name: charts3\n  namespace"),
}


def test_replacements_apply_with_their_options_and_the_last_writer_decides(tmp_path):
    pins, problems = found(tmp_path, REPLACEMENTS)
    created, other, follower = (pins[(a, "chart")] for a in ("created", "other", "follower"))
    # kustomize: created gets 1.2.3 (delimiter ":" part 1, created); other is rejected; follower
    # gets 1.2.3 then other's 6.5.0 from the second replacement.
    assert (created.version, created.location) == ("1.2.3", None)
    assert "ConfigMap versions `data.image` (`env/config.yaml`)" in created.refusal
    assert (follower.version, follower.location) == ("6.5.0", None)
    assert "HelmRelease other `spec.chart.spec.version` (`env/other.yaml`)" in follower.refusal
    # other's own line is its pin, but it feeds follower: changing it would change follower too.
    assert other.version == "6.5.0" and other.location.file == "env/other.yaml"
    assert any("into HelmRelease follower `spec.chart.spec.version`" in s for s in other.shared_by)
    assert not problems


def test_a_replacement_selects_what_its_kustomizations_patches_made(tmp_path):
    """kustomize runs a kustomization's replacements after its patches (and those inside it): a
    label a patch gives makes the release a target and the ConfigMap the source, a value a patch
    gives is the source's."""
    files = {
        "env/kustomization.yaml": """
            resources: [config.yaml, web.yaml, api.yaml]
            patches:
              - target: {kind: HelmRelease, name: web}
                patch: |
                  - op: add
                    path: /metadata/labels
                    value: {tier: canary}
              - target: {kind: ConfigMap, name: versions}
                patch: |
                  - op: replace
                    path: /data/version
                    value: 7.7.7
                  - op: add
                    path: /metadata/labels
                    value: {role: versions}
            replacements:
              - source: {kind: ConfigMap, labelSelector: role=versions, fieldPath: data.version}
                targets:
                  - select: {kind: HelmRelease, labelSelector: tier=canary}
                    fieldPaths: [spec.chart.spec.version]
            """,
        "env/config.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: versions, namespace: apps}
            data: {version: 1.0.0}
            """,
        "env/web.yaml": release("web", "6.5.0"),
        "env/api.yaml": release("api", "6.5.0").replace("name: charts", "name: charts2"),
    }
    pins, problems = found(tmp_path, files)
    web, api = pins[("web", "chart")], pins[("api", "chart")]
    assert (web.version, web.location) == ("7.7.7", None)
    assert "from ConfigMap versions `data.version`" in web.refusal
    assert (api.version, api.refusal) == ("6.5.0", "") and not problems


def test_a_replacement_ferry_cannot_evaluate_refuses_what_it_touches(tmp_path):
    files = dict(REPLACEMENTS)
    files["env/config.yaml"] += """
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: versions, namespace: other}
        """
    files["env/flux.yaml"] = """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: queue, namespace: flux-system}
        spec:
          path: ./queue
          targetNamespace: placeholder
          sourceRef: {kind: GitRepository, name: flux-system}
        """
    files["queue/release.yaml"] = release("queue", "18.0.0")
    files["env/kustomization.yaml"] = files["env/kustomization.yaml"].replace(
        "resources: [", "resources: [flux.yaml, ") + """
          - source: {kind: ConfigMap, name: versions, fieldPath: data.image}
            targets:
              - select: {kind: Kustomization}
                fieldPaths: [spec.targetNamespace]
        """
    pins, problems = found(tmp_path, files)
    created = pins[("created", "chart")]
    assert created.location is None and created.unknown
    assert "a kustomize replacement in `env/kustomization.yaml` that Ferry cannot evaluate " \
           "(2 resources match its source, kustomize wants one)" in created.refusal
    assert ("queue", "chart") not in pins and ("placeholder/queue", "chart") not in pins
    assert any(p.startswith("Kustomization flux-system/queue is not followed: a kustomize replacement")
               for p in problems)


COMPONENT = {
    "env/kustomization.yaml": "resources: [../team-a, ../team-b]\n",
    "components/source/kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        resources: [oci.yaml]
        """,
    "components/source/oci.yaml": f"""
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata: {{name: podinfo}}
        spec:
          url: {URL}/podinfo
          ref: {{tag: 6.5.0}}
        """,
    "team-a/kustomization.yaml": "namespace: team-a\nresources: [release.yaml]\ncomponents: [../components/source]\n",
    "team-b/kustomization.yaml": "namespace: team-b\nresources: []\ncomponents: [../components/source]\n",
    "team-a/release.yaml": """
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata: {name: alpha}
        spec:
          chartRef: {kind: OCIRepository, name: podinfo}
        """,
}


def test_a_copy_read_by_one_release_only_is_that_releases_pin(tmp_path):
    pins, problems = found(tmp_path, COMPONENT)
    alpha = pins[("alpha", "chart")]
    assert (alpha.version, alpha.namespace, alpha.location.file) == ("6.5.0", "team-a", "components/source/oci.yaml")
    assert alpha.shared_by == () and not problems
    files = dict(COMPONENT)
    files["team-b/kustomization.yaml"] = files["team-b/kustomization.yaml"].replace("[]", "[release.yaml]")
    files["team-b/release.yaml"] = COMPONENT["team-a/release.yaml"].replace("alpha", "beta")
    pins, _ = found(tmp_path, files)
    assert pins[("beta", "chart")].version == "6.5.0"  # its own copy, in team-b
    assert pins[("alpha", "chart")].shared_by == ("dev/beta",)


def _image_overlay(folder: str, tag: str, resources: str) -> dict:
    return {f"{folder}/kustomization.yaml": f"""
        resources: [{resources}]
        images:
          - name: ghcr.io/acme/static
            newTag: {tag}
        """}


def test_the_outermost_images_entry_decides_and_two_branches_are_refused(tmp_path):
    deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: static}
        spec: {template: {spec: {containers: [{name: static, image: ghcr.io/acme/static}]}}}
        """
    files = {"base/deployment.yaml": deployment, **_image_overlay("base", "0.0.1", "deployment.yaml"),
             **_image_overlay("overlay", "1.1.0", "../base"),
             "env/kustomization.yaml": "resources: [../overlay]\n"}
    pins, _ = found(tmp_path, files, images=True)
    static = pins[("static", "image")]
    assert (static.version, static.location.file, static.refusal) == ("1.1.0", "overlay/kustomization.yaml", "")
    files.update({"other/deployment.yaml": deployment.replace("name: static}", "name: static2}"),
                  **_image_overlay("other", "1.2.0", "deployment.yaml"),
                  "env/kustomization.yaml": "resources: [../overlay, ../other]\n"})
    pins, _ = found(tmp_path / "two", files, images=True)
    static = pins[("static", "image")]
    assert static.refusal == ("image `ghcr.io/acme/static` set in 2 kustomizations none of which includes "
                              "the others (`overlay/kustomization.yaml`, `other/kustomization.yaml`)")


ARTIFACT = {
    "env/kustomization.yaml": "resources: [artifacts.yaml]\n",
    "env/artifacts.yaml": """
        apiVersion: source.extensions.fluxcd.io/v1beta1
        kind: ArtifactGenerator
        metadata: {name: gen, namespace: flux-system}
        spec:
          sources:
            - {alias: repo, kind: GitRepository, name: flux-system}
            - {alias: oci, kind: OCIRepository, name: manifests}
          artifacts:
            - name: app
              copy:
                - {from: "@repo/deploy/app/**", to: "@artifact/", exclude: ["*.md", "secret.yaml"]}
            - name: mixed
              copy:
                - {from: "@oci/**", to: "@artifact/"}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: app, namespace: flux-system}
        spec:
          path: ./
          sourceRef: {kind: ExternalArtifact, name: app}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: mixed, namespace: flux-system}
        spec:
          path: ./
          sourceRef: {kind: ExternalArtifact, name: mixed}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: nobody, namespace: flux-system}
        spec:
          path: ./
          sourceRef: {kind: ExternalArtifact, name: nobody}
        """,
    "deploy/app/kustomization.yaml": "resources: [release.yaml]\n",
    "deploy/app/release.yaml": release("app", "6.5.1"),
    "deploy/app/README.md": "not copied\n",
}


def test_an_external_artifact_is_followed_to_its_folder_and_refused_when_it_cannot_be(tmp_path):
    pins, problems = found(tmp_path, ARTIFACT)
    app = pins[("app", "chart")]
    assert (app.version, app.location.file) == ("6.5.1", "deploy/app/release.yaml")
    assert any("Kustomization flux-system/mixed is not followed: ExternalArtifact flux-system/mixed "
               "(ArtifactGenerator flux-system/gen, `env/artifacts.yaml`): ExternalArtifact "
               "flux-system/mixed copies from OCIRepository flux-system/manifests, not from Git." in p
               for p in problems)
    assert any("Kustomization flux-system/nobody is not followed: no ArtifactGenerator Flux applies "
               "here makes ExternalArtifact flux-system/nobody." in p for p in problems)
    files = dict(ARTIFACT)
    files["deploy/app/kustomization.yaml"] = "resources: [release.yaml, secret.yaml]\n"
    files["deploy/app/secret.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n"
    pins, problems = found(tmp_path / "excluded", files)
    assert ("app", "chart") not in pins
    assert any("it reads `deploy/app/secret.yaml`, which ExternalArtifact app does not copy" in p
               for p in problems)


def test_values_a_replacement_writes_are_not_replayed_from_the_file(tmp_path):
    files = dict(REPLACEMENTS)
    files["env/kustomization.yaml"] += """
          - source: {kind: ConfigMap, name: versions, fieldPath: data.image}
            targets:
              - select: {kind: HelmRelease, name: other}
                fieldPaths: [spec.values.image]
                options: {create: true}
        """
    pins, _ = found(tmp_path, files)
    assert pins[("other", "chart")].values_unknown == (
        "a kustomize replacement in `env/kustomization.yaml`, from ConfigMap versions `data.image` "
        "(`env/config.yaml`) sets them")
    assert pins[("follower", "chart")].values_unknown == ""


def test_malformed_replacements_and_copies_are_said_not_raised(tmp_path):
    malformed = [
        "replacements: [{source: {kind: ConfigMap, name: versions, fieldPath: data.image, "
        "options: {delimiter: ':', index: x}}, targets: [{select: {kind: HelmRelease}, fieldPaths: "
        "[spec.chart.spec.version]}]}]",
        "replacements: [{source: {kind: ConfigMap, name: versions, fieldPath: data.image}, targets: "
        "[{select: {kind: HelmRelease}, fieldPaths: spec.chart.spec.version, reject: nope}]}]",
        "replacements: [{source: {kind: ConfigMap, name: versions, fieldPath: 'data.*'}, targets: "
        "[{select: {kind: HelmRelease}, fieldPaths: ['spec.*.spec.version']}]}]",
        "replacements: [{path: missing.yaml}, {source: nothing}, 3, {targets: {}}]",
    ]
    for i, text in enumerate(malformed):
        files = {"env/kustomization.yaml": "resources: [config.yaml, created.yaml]\n" + text + "\n",
                 "env/config.yaml": REPLACEMENTS["env/config.yaml"], "env/created.yaml": release("created", "1.0.0")}
        pins, problems = found(tmp_path / str(i), files)
        created = pins[("created", "chart")]
        assert created.version == "1.0.0"
        assert i == 1 or created.refusal.startswith("a kustomize replacement in `env/kustomization.yaml` "
                                                    "that Ferry cannot evaluate")
    assert problems == ["replacements file `missing.yaml` cannot be read: the fields it sets are unknown."]
    files = dict(ARTIFACT)
    files["env/artifacts.yaml"] = files["env/artifacts.yaml"].replace(
        '{from: "@repo/deploy/app/**", to: "@artifact/", exclude: ["*.md", "secret.yaml"]}',
        '{from: "@repo/deploy/app/**", to: "@artifact/", exclude: "*.md"}')
    pins, _ = found(tmp_path / "copies", files)
    assert pins[("app", "chart")].version == "6.5.1"
