"""Generated Flux repositories and the commits colleagues push to them, for the carry tests.

``layouts`` draws a repository (path -> text) and its settings: plain kustomize overlays over a
base, or environments given by a Flux Kustomization (inline patches, postBuild variables inline or
from a ConfigMap); kustomization files named ``kustomization.yaml``, ``kustomization.yml`` or
``Kustomization``; resources and patch files under any name (a JSON 6902 patch in ``version.json``,
``ops.yaml`` or ``version.patch``); image tags as ``repo:tag`` or ``{repository, tag}``, with or
without Flux's ``$imagepolicy`` setter marker; kustomize ``images:``; a patch selecting releases
by label (their values or their version); each app's HelmRepository in
its base, in the first environment's folder only (the others find it there), or in a folder no
build reads (found anywhere in the repository).

``commit(files, pins, draw)`` makes one foreign commit of any kind: a version bump as Ferry's
editor writes it, a hand edit of a version, a comment, a marker added or removed, a patch file
changed, a file renamed, a resource list changed, a file added or removed, a file nothing reads,
a source's URL or name changed, a postBuild variable's value changed, a release's label (which a
patch of the layout may select it by) or another field than its version, an app added
(perhaps under a name another namespace has), a variable named once more or once less, a file of
a HelmRelease listed in an environment's kustomization or taken out of it.
Written for Ferry's tests (no outside source).
"""
from __future__ import annotations

import json
import posixpath
import re

from hypothesis import strategies as st

from gitops.changes import editing
from gitops.flux import images
from gitops.flux.manifests import git_blob_id

ENVIRONMENTS = ("dev", "stag", "prod")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RELEASE_FILES = ("release.yaml", "release.yml", "helm-release")
JSON_PATCH_FILES = ("version.json", "ops.yaml", "version.patch")
MERGE_PATCH_FILES = ("version-patch.yaml", "pin.yml", "version")
MODES = ("base", "merge", "json", "inline", "flux-patch", "kustomize-image")
VERSIONS = ("6.5.1", "6.6.0", ">=6.0.0", "1.10", "7.0.0-rc.1", "v2.0.0")
TAGS = ("1.0.1", "2.0.0", "latest", "1.0.0-rc.1")
REGISTRY = "oci://127.0.0.1:5000/charts"
SOURCE_PLACES = ("base", "first", "outside")  # where an app's HelmRepository is


class MemTree:
    """A ``FileTree`` over a dict (path -> text): one revision, in memory."""

    def __init__(self, files: dict):
        self._files = dict(files)
        self._ids = {path: git_blob_id(text.encode()) for path, text in self._files.items()}

    def files(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> str:
        return self._files[path]

    def blob_id(self, path: str) -> str:
        return self._ids[path]


def marker(app: str, kind: str = "") -> str:
    return images.marker_json(f"flux-system:{app}" + (f":{kind}" if kind else ""))


def release(app: str, version: str, image: str, marked: bool) -> str:
    text = f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app}
  namespace: {app}
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
"""
    if image == "string":
        text += f"    image: ghcr.io/acme/{app}:1.0.0" + (f" {marker(app)}" if marked else "") + "\n"
    elif image == "dict":
        text += (f"    image:\n      repository: ghcr.io/acme/{app}\n      tag: 1.0.0"
                 + (f" {marker(app, 'tag')}" if marked else "") + "\n")
    return text


def repository(app: str) -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: {app}
spec:
  type: oci
  url: {REGISTRY}
"""


def json_ops(version: str) -> list:
    return [{"op": "replace", "path": "/spec/chart/spec/version", "value": version}]


def target(app: str, indent: str = "") -> str:
    return f"{indent}    target:\n{indent}      kind: HelmRelease\n{indent}      name: {app}\n"


def inline_ops(version: str, indent: str) -> str:
    """An inline JSON 6902 patch (`patch: |`) setting the chart version, as a list entry's key."""
    return (f"{indent}patch: |\n{indent}  - op: replace\n{indent}    path: /spec/chart/spec/version\n"
            f"{indent}    value: {version}\n")


def kustomization(resources: list, patches: str = "", extra: str = "") -> str:
    text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
    text += "".join(f"  - {r}\n" for r in resources)
    return text + (f"patches:\n{patches}" if patches else "") + extra


def flux_entry(env: str, variables: dict, patches: str, from_configmap: bool) -> dict:
    files = {f"clusters/{env}/flux-system/gotk-sync.yaml": f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  ref:
    branch: main
  url: ssh://git@example.test/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: ./clusters/{env}
  sourceRef:
    kind: GitRepository
    name: flux-system
"""}
    post = ""
    if variables and from_configmap:
        post = "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: versions\n"
        files[f"clusters/{env}/versions.yaml"] = (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\n  namespace: flux-system\n"
            "data:\n" + "".join(f"  {k}: {v}\n" for k, v in variables.items()))
    elif variables:
        post = "  postBuild:\n    substitute:\n" + "".join(f'      {k}: "{v}"\n' for k, v in variables.items())
    files[f"clusters/{env}/apps.yaml"] = f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/{env}
  sourceRef:
    kind: GitRepository
    name: flux-system
""" + post + (f"  patches:\n{patches}" if patches else "")
    return files


def variable(app: str) -> str:
    return app.upper() + "_VERSION"


@st.composite
def layouts(draw) -> tuple:
    """(files, settings) of a generated repository."""
    flux = draw(st.booleans())
    apps = draw(st.lists(st.sampled_from(("podinfo", "web")), min_size=1, max_size=2, unique=True))
    files: dict = {}
    variables: dict = {env: {} for env in ENVIRONMENTS}
    for app in apps:
        name = draw(st.sampled_from(RELEASE_FILES))
        through_variable = flux and draw(st.booleans())
        version = f"${{{variable(app)}}}" if through_variable else "6.5.0"
        image = draw(st.sampled_from((None, "string", "dict")))
        where = draw(st.sampled_from(SOURCE_PLACES))
        files[f"apps/base/{app}/{draw(st.sampled_from(KUSTOMIZATION_FILES))}"] = kustomization(
            [name] + (["repository.yaml"] if where == "base" else []))
        files[f"apps/base/{app}/{name}"] = release(app, version, image, draw(st.booleans()))
        if flux and draw(st.booleans()):  # a variable no pin reads (``retune`` commits change it)
            files[f"apps/base/{app}/{name}"] = files[f"apps/base/{app}/{name}"].replace(
                "replicaCount: 1", "replicaCount: ${REPLICAS}")
            for env in ENVIRONMENTS:
                variables[env]["REPLICAS"] = "1"
        files[{"base": f"apps/base/{app}/repository.yaml", "first": f"apps/{ENVIRONMENTS[0]}/{app}-repository.yaml",
               "outside": f"infra/{app}/repository.yaml"}[where]] = repository(app)
        if through_variable:
            for env in ENVIRONMENTS:
                if draw(st.booleans()) or env == "prod":
                    variables[env][variable(app)] = f"6.{ENVIRONMENTS.index(env)}.0"
    for i, env in enumerate(ENVIRONMENTS):
        patches, flux_patches, extra = "", "", ""
        for app in apps:
            mode = draw(st.sampled_from(MODES if flux else MODES[:4] + MODES[5:]))
            version = f"6.{i}.{len(patches)}"
            if mode == "merge":
                name = f"{app}-{draw(st.sampled_from(MERGE_PATCH_FILES))}"
                files[f"apps/{env}/{name}"] = (
                    f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {app}\n"
                    f"  namespace: {app}\nspec:\n  chart:\n    spec:\n      version: {version}\n")
                patches += f"  - path: {name}\n"
            elif mode == "json":
                name = f"{app}-{draw(st.sampled_from(JSON_PATCH_FILES))}"
                ops = json_ops(version)
                files[f"apps/{env}/{name}"] = (json.dumps(ops) + "\n" if name.endswith(".json") else
                                               f"- op: replace\n  path: /spec/chart/spec/version\n  value: {version}\n")
                patches += f"  - path: {name}\n" + target(app)
            elif mode == "inline":
                patches += "  - " + target(app).lstrip() + inline_ops(version, "    ")
            elif mode == "flux-patch":
                flux_patches += "    - " + target(app, "  ").lstrip() + inline_ops(version, "      ")
            elif mode == "kustomize-image":
                extra += f"  - name: ghcr.io/acme/{app}\n    newTag: 3.{i}.0\n"
        # A patch of every release labelled `tier: canary` (``label`` commits add and take it away).
        # Its version may be a variable the releases read too: the label moves where it is read.
        by_label = draw(st.sampled_from((None, "/spec/values/replicaCount", "/spec/chart/spec/version")))
        if by_label:
            value = draw(st.sampled_from(("9.9.9", f"${{{variable(apps[0])}}}")))
            selector = "    target:\n      kind: HelmRelease\n      labelSelector: tier=canary\n"
            if draw(st.booleans()):  # in a file of its own: one line Ferry may edit
                files[f"apps/{env}/canary.yaml"] = f"- op: replace\n  path: {by_label}\n  value: {value}\n"
                patches += "  - path: canary.yaml\n" + selector
            else:
                patches += ("  - " + selector.lstrip() + "    patch: |\n      - op: replace\n"
                            f"        path: {by_label}\n        value: {value}\n")
        name = draw(st.sampled_from(KUSTOMIZATION_FILES))
        broken = ["missing.yaml"] if draw(st.booleans()) else []  # what discovery cannot follow
        own = sorted(p.rsplit("/", 1)[1] for p in files if p.startswith(f"apps/{env}/") and p.endswith("-repository.yaml"))
        # Not every app in every environment at first (``list_base`` promotes one later).
        here = apps if i == 0 or draw(st.booleans()) else [a for a in apps if draw(st.booleans())] or apps[:1]
        # At times a kustomize replacement: a ConfigMap's value copied into one app's release, or
        # into those labelled `tier: canary` (``label`` commits add and take the label away).
        replaced = draw(st.sampled_from((None, None, f"name: {apps[0]}", "labelSelector: tier=canary")))
        if replaced:
            files[f"apps/{env}/tiers.yaml"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tiers\n"
                                               "data:\n  tier: \"7.7.7\"\n")
            own = own + ["tiers.yaml"]
            field = draw(st.sampled_from(("spec.values.replicaCount", "spec.chart.spec.version")))
            extra_replacements = ("replacements:\n  - source:\n      kind: ConfigMap\n      name: tiers\n"
                                  "      fieldPath: data.tier\n    targets:\n      - select:\n"
                                  f"          kind: HelmRelease\n          {replaced}\n        fieldPaths:\n"
                                  f"          - {field}\n")
        files[f"apps/{env}/{name}"] = kustomization([f"../base/{app}" for app in here] + own + broken, patches,
                                                    (f"images:\n{extra}" if extra else "") +
                                                    (extra_replacements if replaced else ""))
        if flux:
            files.update(flux_entry(env, variables[env], flux_patches, draw(st.booleans())))
            if draw(st.booleans()):  # the cluster folder built by its own kustomization
                listed = ["flux-system/gotk-sync.yaml", "apps.yaml"] + \
                    (["versions.yaml"] if f"clusters/{env}/versions.yaml" in files else [])
                files[f"clusters/{env}/kustomization.yaml"] = kustomization(listed)
    files["README.md"] = "# The fleet\n"
    if flux and draw(st.integers(0, 3)) == 0:  # a team's Kustomization from the start (``move_team`` moves it)
        env = draw(st.sampled_from(ENVIRONMENTS))
        files[f"clusters/{env}/team.yaml"] = (
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: team\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./teams/{env}/x\n"
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n")
        files[f"teams/{env}/x/api.yaml"] = release("api", "6.8.0", None, False) + "---\n" + repository("api")
    root = "clusters" if flux else "apps"
    settings = {"repo": {"url": "file:///fleet.git", "branch": "main"},
                "environments": [{"name": e, "path": f"{root}/{e}"} for e in ENVIRONMENTS]}
    return files, settings


# ---- commits ----------------------------------------------------------------------------------

def bump(files: dict, pins: tuple, draw) -> dict:
    """A version or tag changed the way Ferry's editor writes it (anyone's commit, or Ferry's)."""
    movable = [p for p in pins if p.location is not None and not p.refusal and not p.unknown]
    if not movable:
        return files
    pin = draw(st.sampled_from(movable))
    new = draw(st.sampled_from(TAGS if pin.is_image else VERSIONS))
    path = pin.location.file
    try:
        text = editing.set_version(files[path], pin.location, images.written(pin, new))
    except Exception:  # a line Ferry's editor refuses (a range it would quote, …): no commit
        return files
    return {**files, path: text}


def hand_edit(files: dict, pins: tuple, draw) -> dict:
    """A version-like token changed by hand: quoting and spacing as a person types them."""
    path = draw(st.sampled_from(sorted(files)))
    tokens = re.findall(r"\d+\.\d+\.\d+", files[path])
    if not tokens:
        return files
    token = draw(st.sampled_from(tokens))
    new = draw(st.sampled_from(("6.5.9", '"6.5.9"', "'6.5.9'", "6.5.9 ", "${VERSION}", "1.0.0@sha256:" + "a" * 64,
                                "6.5.9 # note", "6.5.9 " + marker("web", "tag"), "6.5.9\n  ", "&v 6.5.9")))
    return {**files, path: files[path].replace(token, new, 1)}


def comment(files: dict, pins: tuple, draw) -> dict:
    path = draw(st.sampled_from(sorted(files)))
    lines = files[path].split("\n")
    at = draw(st.integers(0, len(lines) - 1))
    lines.insert(at, "# a note")
    return {**files, path: "\n".join(lines)}


def toggle_marker(files: dict, pins: tuple, draw) -> dict:
    """A `$imagepolicy` setter marker added to a line, or one removed (a comment-only change)."""
    candidates = [(path, i) for path, text in sorted(files.items())
                  for i, line in enumerate(text.split("\n")) if re.search(r"(image|tag|newTag|version|value):", line)]
    if not candidates:
        return files
    path, i = draw(st.sampled_from(candidates))
    lines = files[path].split("\n")
    if "$imagepolicy" in lines[i]:
        lines[i] = lines[i][:lines[i].index(" # {")]
    else:
        lines[i] += " " + marker("web", draw(st.sampled_from(("", "tag", "name"))))
    return {**files, path: "\n".join(lines)}


def change_patch(files: dict, pins: tuple, draw) -> dict:
    """A patch changed: it sets something else, or nothing, or adds an op."""
    candidates = [p for p in sorted(files) if "/spec/chart/spec/version" in files[p]]
    if not candidates:
        return files
    path = draw(st.sampled_from(candidates))
    old, new = draw(st.sampled_from((
        ("/spec/chart/spec/version", "/spec/values/replicaCount"),
        ('"replace"', '"add"'), ("op: replace", "op: remove"),
        ("/spec/chart/spec/version", "/spec/chart/spec/version/x"))))
    return {**files, path: files[path].replace(old, new, 1)}


def rename(files: dict, pins: tuple, draw) -> dict:
    """A file renamed; the kustomization files that list it follow when asked."""
    path = draw(st.sampled_from(sorted(files)))
    folder, name = posixpath.split(path)
    new_name = draw(st.sampled_from(("moved.yaml", "Kustomization", "kustomization.yml", "x.json", "notes")))
    new_path = posixpath.join(folder, new_name)
    if new_path in files:
        return files
    out = {p: t for p, t in files.items() if p != path}
    out[new_path] = files[path]
    if draw(st.booleans()):
        for p in out:
            if posixpath.basename(p) in KUSTOMIZATION_FILES and posixpath.dirname(p) == folder:
                out[p] = out[p].replace(f"- {name}\n", f"- {new_name}\n").replace(f"path: {name}\n", f"path: {new_name}\n")
    return out


def change_resources(files: dict, pins: tuple, draw) -> dict:
    """A resource or a patch taken out of a kustomization's lists."""
    kfiles = [p for p in sorted(files) if posixpath.basename(p) in KUSTOMIZATION_FILES]
    path = draw(st.sampled_from(kfiles))
    lines = files[path].split("\n")
    entries = [i for i, line in enumerate(lines) if line.startswith("  - ")]
    if not entries:
        return files
    del lines[draw(st.sampled_from(entries))]
    return {**files, path: "\n".join(lines)}


def add_file(files: dict, pins: tuple, draw) -> dict:
    """A file added: a copy of another under a new name, or a note no one reads."""
    source = draw(st.sampled_from(sorted(files)))
    folder = posixpath.dirname(draw(st.sampled_from(sorted(files))))
    name = draw(st.sampled_from(("extra.yaml", "Kustomization", "kustomization.yaml", "notes.txt", "v.json")))
    path = posixpath.join(folder, name)
    return files if path in files else {**files, path: files[source]}


def remove_file(files: dict, pins: tuple, draw) -> dict:
    path = draw(st.sampled_from(sorted(files)))
    return {p: t for p, t in files.items() if p != path}


def unread(files: dict, pins: tuple, draw) -> dict:
    """A change to a file no discovery reads."""
    return {**files, "README.md": files.get("README.md", "") + "More prose.\n"}


def other_value(files: dict, pins: tuple, draw) -> dict:
    path = draw(st.sampled_from(sorted(p for p in files if "replicaCount: 1" in files[p]) or sorted(files)))
    return {**files, path: files[path].replace("replicaCount: 1", "replicaCount: 2")}


def change_source(files: dict, pins: tuple, draw) -> dict:
    """A HelmRepository's URL or name changed (a release may find it, or another one, or none)."""
    candidates = [p for p in sorted(files) if "kind: HelmRepository\n" in files[p]]
    if not candidates:
        return files
    path = draw(st.sampled_from(candidates))
    old, new = draw(st.sampled_from(((REGISTRY, "oci://127.0.0.1:5001/charts"), ("  name: charts\n", "  name: other\n"),
                                     ("  namespace: ", "  namespace: x"))))
    return {**files, path: files[path].replace(old, new, 1)}


def change_variable(files: dict, pins: tuple, draw) -> dict:
    """A postBuild variable's value changed, in a ConfigMap or a Kustomization's `substitute`."""
    candidates = [(p, line) for p in sorted(files) for line in files[p].split("\n") if "_VERSION: " in line]
    if not candidates:
        return files
    path, line = draw(st.sampled_from(candidates))
    value = draw(st.sampled_from(('"6.9.0"', "6.9.1", "${OTHER}", "")))
    return {**files, path: files[path].replace(line, line[:line.index(": ") + 2] + value, 1)}



def retune(files: dict, pins: tuple, draw) -> dict:
    """A postBuild variable no pin reads as a version (`REPLICAS`) given another value."""
    candidates = [(p, line) for p in sorted(files) for line in files[p].split("\n") if "REPLICAS: " in line]
    if not candidates:
        return files
    path, line = draw(st.sampled_from(candidates))
    value = draw(st.sampled_from(("2", '"3"', "${OTHER}")))
    return {**files, path: files[path].replace(line, line[:line.index(": ") + 2] + value, 1)}

def define_variable(files: dict, pins: tuple, draw) -> dict:
    """A variable defined anew in a cluster's ConfigMap (one a release names, or none does), or one
    taken out of it."""
    maps = sorted(p for p in files if p.startswith("clusters/") and (
        p.endswith("/versions.yaml") or p.endswith("/apps.yaml") and "    substitute:\n" in files[p]))
    if not maps:
        return files
    path = draw(st.sampled_from(maps))
    indent = "  " if path.endswith("/versions.yaml") else "      "  # `data:`, or `postBuild.substitute:`
    lines = files[path].split("\n")
    defined = [line for line in lines if line.startswith(indent) and line[len(indent)] != " " and
               line.split(":")[0].strip().isupper()]
    if defined and draw(st.booleans()):
        return {**files, path: files[path].replace(draw(st.sampled_from(defined)) + "\n", "", 1)}
    name = draw(st.sampled_from(("PODINFO_VERSION", "WEB_VERSION", "API_VERSION", "UNUSED")))
    if f"{indent}{name}:" in files[path]:
        return files
    value = draw(st.sampled_from(('"6.9.0"', "6.9.1", "true")))
    if indent == "  ":
        text = files[path] if files[path].endswith("\n") else files[path] + "\n"
        return {**files, path: text + f"  {name}: {value}\n"}
    return {**files, path: files[path].replace("    substitute:\n", f"    substitute:\n{indent}{name}: {value}\n", 1)}


HELM_RELEASE = "kind: HelmRelease\nmetadata:\n"


def _release_file(files: dict, draw):
    """A file holding a HelmRelease (a release, or a strategic merge patch of one), or None."""
    candidates = [p for p in sorted(files) if HELM_RELEASE in files[p]]
    return draw(st.sampled_from(candidates)) if candidates else None


def label(files: dict, pins: tuple, draw) -> dict:
    """A label on a HelmRelease added, changed or taken away (what a patch may select it by)."""
    path = _release_file(files, draw)
    if path is None:
        return files
    text = re.sub(r"  labels:\n    tier: \w+\n", "", files[path])
    value = draw(st.sampled_from(("canary", "stable", None)))
    if value:
        text = text.replace(HELM_RELEASE, f"{HELM_RELEASE}  labels:\n    tier: {value}\n", 1)
    return {**files, path: text}


def release_edit(files: dict, pins: tuple, draw) -> dict:
    """A HelmRelease changed otherwise than its version: an annotation, its name, its API, its
    chart's source, `valuesFrom`, or one more document in its file (a release, a ConfigMap)."""
    path = _release_file(files, draw)
    if path is None:
        return files
    text = files[path]
    edit = draw(st.sampled_from(("annotation", "name", "api", "source", "values-from", "release", "configmap")))
    if edit == "annotation":
        text = text.replace(HELM_RELEASE, f"{HELM_RELEASE}  annotations:\n    note: hand\n", 1)
    elif edit == "name":
        text = re.sub(r"(metadata:\n(?:  \w+:\n(?:    .*\n)+)*  name: )(\S+)", r"\1\2-x", text, count=1)
    elif edit == "api":
        text = text.replace("helm.toolkit.fluxcd.io/v2\n", "helm.toolkit.fluxcd.io/v2beta2\n", 1)
    elif edit == "source":
        text = text.replace("        name: charts\n", "        name: other\n", 1)
    elif edit == "values-from":
        text = text.replace("\nspec:\n", "\nspec:\n  valuesFrom:\n    - kind: ConfigMap\n      name: extra\n", 1)
    elif edit == "release":
        text += "---\n" + release("extra", "6.5.0", None, False)
    else:
        text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n"
    return {**files, path: text}


def add_app(files: dict, pins: tuple, draw) -> dict:
    """An app added to some environments' kustomizations: a new name, or a name another
    namespace already has (a clash, which names that app `namespace/name` in every environment);
    with its image, its own source or one it finds in the base of an app already there."""
    name = draw(st.sampled_from(("api", "podinfo", "web")))
    namespace = draw(st.sampled_from((name, "team")))
    folder = f"apps/base/{name}-{namespace}"
    if any(p.startswith(folder + "/") for p in files):
        return files
    text = release(name, "6.5.0", draw(st.sampled_from((None, "string", "dict"))), draw(st.booleans()))
    text = text.replace(f"  namespace: {name}\n", f"  namespace: {namespace}\n", 1)
    out = {**files, f"{folder}/release.yaml": text, f"{folder}/kustomization.yaml": kustomization(
        ["release.yaml", "repository.yaml"])}
    out[f"{folder}/repository.yaml"] = repository(namespace)
    chosen = draw(st.lists(st.sampled_from(ENVIRONMENTS), min_size=1, unique=True))
    for path in sorted(files):
        env = path.split("/")[1] if path.startswith("apps/") else ""
        if env in chosen and posixpath.basename(path) in KUSTOMIZATION_FILES and posixpath.dirname(path) == f"apps/{env}":
            out[path] = files[path].replace("resources:\n", f"resources:\n  - ../base/{name}-{namespace}\n", 1)
    return out


def use_variable(files: dict, pins: tuple, draw) -> dict:
    """A postBuild variable a release's version reads named once more, or once less, elsewhere
    in what its build reads (a ConfigMap beside the release): its line then feeds more."""
    candidates = [p for p in sorted(files) if HELM_RELEASE in files[p] and re.search(r"\$\{(\w+)\}", files[p])]
    if not candidates:
        return files
    path = draw(st.sampled_from(candidates))
    name = re.search(r"\$\{(\w+)\}", files[path]).group(1)
    use = f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uses\ndata:\n  v: ${{{name}}}\n"
    text = files[path].replace(use, "") if use in files[path] else files[path] + use
    return {**files, path: text}


def _environment_kustomization(files: dict, env: str):
    return next((p for p in sorted(files) if posixpath.dirname(p) == f"apps/{env}"
                 and posixpath.basename(p) in KUSTOMIZATION_FILES), None)


def add_release_file(files: dict, pins: tuple, draw) -> dict:
    """A file of one HelmRelease added to an environment's kustomization (first, last or between
    its entries), beside it or in a subfolder: an app of its own, or one more in an app's namespace (where its source is);
    perhaps with its own HelmRepository (a namespace of its own, or one that has one already)."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile = _environment_kustomization(files, env)
    name = draw(st.sampled_from(("api", "cache", "web")))  # `web` may clash, in `podinfo`
    own_source = draw(st.booleans())  # its HelmRepository beside it, as many fleets write an app
    namespace = draw(st.sampled_from(sorted({p.namespace for p in pins} | ({"fresh"} if own_source else set())
                                            or {"api"})))
    entry = draw(st.sampled_from(("", "team/"))) + f"{name}-{namespace}.yaml"  # at times in a subfolder
    if kfile is None or f"apps/{env}/{entry}" in files or "resources:" not in files[kfile].split("\n"):
        return files
    text = release(name, draw(st.sampled_from(VERSIONS)), draw(st.sampled_from((None, "string", "dict"))),
                   draw(st.booleans())).replace(f"  namespace: {name}\n", f"  namespace: {namespace}\n", 1)
    if own_source:
        text = repository(namespace) + "---\n" + text
    lines = files[kfile].split("\n")
    entries = [i for i, line in enumerate(lines) if line.startswith("  - ") and i > lines.index("resources:")
               and all(lines[k].startswith("  - ") for k in range(lines.index("resources:") + 1, i))]
    at = draw(st.sampled_from(entries + [entries[-1] + 1] if entries else [lines.index("resources:") + 1]))
    lines.insert(at, f"  - {entry}")
    return {**files, f"apps/{env}/{entry}": text, kfile: "\n".join(lines)}


def take_release_file(files: dict, pins: tuple, draw) -> dict:
    """A file of HelmReleases an environment's kustomization lists taken out of the list, and
    perhaps out of the repository."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile = _environment_kustomization(files, env)
    listed = [p for p in sorted(files) if p.startswith(f"apps/{env}/") and p.endswith(".yaml")
              and HELM_RELEASE in files[p] and kfile and f"  - {p[len(f'apps/{env}/'):]}\n" in files[kfile]]
    if not listed:
        return files
    path = draw(st.sampled_from(listed))
    out = {**files, kfile: files[kfile].replace(f"  - {path[len(f'apps/{env}/'):]}\n", "", 1)}
    if draw(st.booleans()):
        del out[path]
    return out


def list_base(files: dict, pins: tuple, draw) -> dict:
    """An app's base folder listed by an environment that does not list it yet (an app promoted
    to one more environment), first, last or between its entries."""
    bases = sorted({p.split("/")[2] for p in files if p.startswith("apps/base/") and p.count("/") == 3})
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile = _environment_kustomization(files, env)
    candidates = [b for b in bases if kfile and f"  - ../base/{b}\n" not in files[kfile]]
    if not candidates or "resources:" not in files[kfile].split("\n"):
        return files
    entry = f"  - ../base/{draw(st.sampled_from(candidates))}"
    lines = files[kfile].split("\n")
    start = lines.index("resources:") + 1
    end = start
    while end < len(lines) and lines[end].startswith("  - "):
        end += 1
    lines.insert(draw(st.integers(start, end)), entry)
    return {**files, kfile: "\n".join(lines)}


def take_base(files: dict, pins: tuple, draw) -> dict:
    """An app's base folder taken out of an environment's kustomization (``list_base`` may list
    it again later: a promotion)."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile = _environment_kustomization(files, env)
    listed = [line for line in (files[kfile].split("\n") if kfile else []) if line.startswith("  - ../base/")]
    if not listed:
        return files
    return {**files, kfile: files[kfile].replace(draw(st.sampled_from(listed)) + "\n", "", 1)}

def _patch_entries(lines: list, indent: str = "") -> tuple:
    """(the index of `patches:`, [(first line, end) of each entry]) of a kustomization's lines (a
    Flux Kustomization's `spec.patches` with ``indent`` two spaces)."""
    if f"{indent}patches:" not in lines:
        return None, []
    at, found = lines.index(f"{indent}patches:"), []
    i = at + 1
    while i < len(lines) and lines[i].startswith(f"{indent}  - "):
        end = i + 1
        while end < len(lines) and lines[end].startswith(f"{indent}    "):
            end += 1
        found.append((i, end))
        i = end
    return at, found


def _patched_file(files: dict, env: str, draw) -> tuple:
    """(the file, the indent of its `patches:`) whose patches a commit changes: the environment's
    kustomization, or its Flux Kustomization's `spec` (when it has one)."""
    flux = f"clusters/{env}/apps.yaml"
    if flux in files and draw(st.booleans()):
        return flux, "  "
    return _environment_kustomization(files, env), ""


def add_patch(files: dict, pins: tuple, draw) -> dict:
    """A patch added to an environment's kustomization, first or last of its `patches:` (made
    when it has none): inline, or in a new file beside it (strategic merge, or JSON 6902 with a
    target), setting an app's version, values or image tag; at times it selects by label, or
    selects a ConfigMap. Or a patch of a Flux Kustomization's own (inline, as Flux reads them)."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile, indent = _patched_file(files, env, draw)
    if kfile is None:
        return files
    app = draw(st.sampled_from(sorted({p.app.rsplit("/", 1)[-1] for p in pins} | {"podinfo"})))
    field, value = draw(st.sampled_from((("/spec/chart/spec/version", "6.7.0"), ("/spec/values/replicaCount", "3"),
                                         ("/spec/values/image/tag", "2.0.0"))))
    how = draw(st.sampled_from(("inline", "label", "configmap") + (() if indent else ("merge-file", "json-file"))))
    selector = f"    target:\n      kind: HelmRelease\n      name: {app}\n"
    if how == "label":
        selector = "    target:\n      kind: HelmRelease\n      labelSelector: tier=canary\n"
    elif how == "configmap":
        selector = f"    target:\n      kind: ConfigMap\n      name: {app}\n"
    out = dict(files)
    if how == "merge-file":
        name = f"{app}-extra.yaml"
        nested = {"/spec/chart/spec/version": "  chart:\n    spec:\n      version: 6.7.0\n",
                  "/spec/values/replicaCount": "  values:\n    replicaCount: 3\n",
                  "/spec/values/image/tag": "  values:\n    image:\n      tag: 2.0.0\n"}[field]
        out[f"apps/{env}/{name}"] = (f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
                                     f"  name: {app}\n  namespace: {app}\nspec:\n" + nested)
        entry = [f"  - path: {name}"]
    elif how == "json-file":
        name = f"{app}-extra.patch"
        out[f"apps/{env}/{name}"] = f"- op: replace\n  path: {field}\n  value: {value}\n"
        entry = [f"  - path: {name}"] + selector.rstrip("\n").split("\n")
    else:
        entry = ("  - " + selector.lstrip() + f"    patch: |\n      - op: replace\n        path: {field}\n"
                 f"        value: {value}").split("\n")
    if how in ("merge-file", "json-file") and f"apps/{env}/{name}" in files:
        return files
    entry = [indent + line for line in entry]
    lines = files[kfile].split("\n")
    at, entries = _patch_entries(lines, indent)
    if at is None:
        lines[-1:-1] = [f"{indent}patches:"] + entry
    else:
        place = entries[-1][1] if entries and draw(st.booleans()) else at + 1
        lines[place:place] = entry
    out[kfile] = "\n".join(lines)
    return out


def take_patch(files: dict, pins: tuple, draw) -> dict:
    """A patch taken out of an environment's kustomization (its `patches:` too when it was the
    last), and perhaps its file out of the repository; or one of a Flux Kustomization's own."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile, indent = _patched_file(files, env, draw)
    lines = files[kfile].split("\n") if kfile else []
    at, entries = _patch_entries(lines, indent)
    if not entries:
        return files
    start, end = draw(st.sampled_from(entries))
    path = next((line.split("path: ", 1)[1] for line in lines[start:end] if line.startswith("  - path: ")), None)
    del lines[start:end]
    if len(entries) == 1:
        del lines[at]
    out = {**files, kfile: "\n".join(lines)}
    if path and draw(st.booleans()):
        out.pop(f"apps/{env}/{path}", None)
    return out


def change_images(files: dict, pins: tuple, draw) -> dict:
    """An `images:` entry added to an environment's kustomization (the list made when it has
    none), or one taken away (the list too when it was the last)."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    kfile = _environment_kustomization(files, env)
    if kfile is None:
        return files
    lines = files[kfile].split("\n")
    if "images:" in lines and draw(st.booleans()):
        at = lines.index("images:")
        entries = [i for i in range(at + 1, len(lines)) if lines[i].startswith("  - name: ")]
        if entries:
            start = draw(st.sampled_from(entries))
            end = start + 1
            while end < len(lines) and lines[end].startswith("    "):
                end += 1
            del lines[start:end]
            if len(entries) == 1:
                del lines[at]
            return {**files, kfile: "\n".join(lines)}
    app = draw(st.sampled_from(("podinfo", "web", "api")))
    entry = [f"  - name: ghcr.io/acme/{app}", f"    newTag: {draw(st.sampled_from(('4.0.0', '4.1.0')))}"]
    if "images:" in lines:
        at = lines.index("images:") + 1
        lines[at:at] = entry
    else:
        lines[-1:-1] = ["images:"] + entry
    return {**files, kfile: "\n".join(lines)}


def tune_kustomization(files: dict, pins: tuple, draw) -> dict:
    """A key of an environment's Flux Kustomization changed: one discovery never reads (its
    interval, `prune`, `suspend`), or its target namespace."""
    path = f"clusters/{draw(st.sampled_from(ENVIRONMENTS))}/apps.yaml"
    if path not in files:
        return files
    key = draw(st.sampled_from(("  interval: 5m\n", "  prune: true\n", "  suspend: true\n",
                                "  interval: 10m\n  targetNamespace: apps\n")))
    return {**files, path: files[path].replace("  interval: 10m\n", key, 1)}


def add_team(files: dict, pins: tuple, draw) -> dict:
    """A Flux Kustomization added to an environment's cluster folder (before or after `apps.yaml`,
    at times under a name or applying a path the environment has), applying a new folder of a
    team's apps: plain or with a kustomization, their own source or one the environment has, a
    name new or taken, the cluster's variables substituted or not."""
    env = draw(st.sampled_from(ENVIRONMENTS))
    if f"clusters/{env}/apps.yaml" not in files:
        return files
    entry = f"clusters/{env}/{draw(st.sampled_from(('a-team', 'team', 'zz-team')))}.yaml"
    folder = f"teams/{env}/{draw(st.sampled_from(('x', 'y')))}"
    if entry in files or any(p.startswith(folder + "/") for p in files):
        return files
    name = draw(st.sampled_from(("team", "team", "apps")))
    path = draw(st.sampled_from((folder, folder, f"apps/{env}")))
    post = draw(st.sampled_from(("", "  postBuild:\n    substitute:\n      TEAM: \"6.9.0\"\n",
                                 "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: versions\n")))
    out = {**files, entry: (f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
                            f"  name: {name}\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./{path}\n"
                            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n" + post)}
    app = draw(st.sampled_from(("api", "api", "podinfo")))
    version = draw(st.sampled_from(("6.8.0", "${TEAM}")))
    out[f"{folder}/{app}.yaml"] = release(app, version, draw(st.sampled_from((None, "string"))), False)
    where = draw(st.sampled_from(("own", "base")))
    if where == "own":
        out[f"{folder}/repository.yaml"] = repository(app)
    if draw(st.booleans()):
        out[f"{folder}/kustomization.yaml"] = kustomization(
            [f"{app}.yaml"] + (["repository.yaml"] if where == "own" else []))
    listing = f"clusters/{env}/kustomization.yaml"
    if listing in files:  # the cluster folder built by its kustomization: listed there, first or last
        lines = files[listing].split("\n")
        at = lines.index("resources:") + 1 if draw(st.booleans()) else len(lines) - 1
        out[listing] = "\n".join(lines[:at] + [f"  - {posixpath.basename(entry)}"] + lines[at:])
    return out


def take_team(files: dict, pins: tuple, draw) -> dict:
    """A Flux Kustomization taken away (one ``add_team`` added, or an environment's `apps`), with the
    folder it applies or without."""
    entries = sorted(p for p in files if p.startswith("clusters/") and p.endswith(("team.yaml", "/apps.yaml")))
    if not entries:
        return files
    entry = draw(st.sampled_from(entries))
    path = re.search(r"path: \./(\S+)", files[entry]).group(1)
    listing = posixpath.join(posixpath.dirname(entry), "kustomization.yaml")
    out = {p: text for p, text in files.items() if p != entry or listing in files and draw(st.booleans())}
    if listing in files:  # listed no more (its file deleted, or left there)
        out[listing] = files[listing].replace(f"  - {posixpath.basename(entry)}\n", "", 1)
    if draw(st.booleans()) and path.startswith("teams/"):
        out = {p: text for p, text in out.items() if not p.startswith(path + "/")}
    return out


def move_team(files: dict, pins: tuple, draw) -> dict:
    """A Flux Kustomization changed in what it builds (one ``add_team`` added, or an environment's
    `apps`): its path to another folder (its files moved there, or left behind), its name, or its
    target namespace."""
    entries = sorted(p for p in files if p.startswith("clusters/") and p.endswith(("team.yaml", "/apps.yaml")))
    teams = [p for p in entries if p.endswith("team.yaml")]
    if not entries:
        return files
    entry = draw(st.sampled_from(teams if teams and draw(st.integers(0, 3)) else entries))
    how = draw(st.sampled_from(("move", "move", "name", "namespace")))
    if how == "namespace":
        return {**files, entry: files[entry].replace("  interval: 10m\n", "  interval: 10m\n  targetNamespace: team\n", 1)}
    if how == "name":
        return {**files, entry: re.sub(r"(?m)^  name: \S+$", "  name: moved", files[entry], count=1)}
    path = re.search(r"path: \./(\S+)", files[entry]).group(1)
    moved = f"teams/moved/{posixpath.basename(path)}"
    out = {**files, entry: files[entry].replace(f"path: ./{path}\n", f"path: ./{moved}\n", 1)}
    if draw(st.booleans()):  # its files move with it
        for p in [p for p in files if p.startswith(path + "/")]:
            out[moved + p[len(path):]] = out.pop(p)
    return out


def list_and_patch(files: dict, pins: tuple, draw) -> dict:
    """An app's base listed by an environment and a patch added, in one commit (an app promoted
    with values of its own)."""
    return add_patch(list_base(files, pins, draw), pins, draw)


def squashed(files: dict, pins: tuple, draw) -> dict:
    """Two to four commits of other kinds in one (a squash-merged pull request)."""
    kinds = (list_base, add_release_file, take_release_file, add_patch, take_patch, label, release_edit, bump,
             change_variable, retune, take_base, change_images, define_variable)
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=2, max_size=4)):
        files = kind(files, pins, draw)
    return files


COMMITS = (bump, bump, bump, hand_edit, comment, toggle_marker, change_patch, rename, change_resources,
           add_file, remove_file, unread, other_value, change_source, change_variable, label, label,
           release_edit, release_edit, add_app, add_app, use_variable, add_release_file, add_release_file,
           take_release_file, take_release_file, add_patch, add_patch, take_patch, take_patch,
           list_base, list_base, take_base, retune, retune, list_and_patch, list_and_patch, squashed, squashed,
           change_images, change_images, tune_kustomization, add_team, add_team, take_team, take_team,
           define_variable, define_variable, move_team, move_team)


def commit(files: dict, pins: tuple, draw) -> tuple:
    """(kind, files after one foreign commit)."""
    kind = draw(st.sampled_from(COMMITS))
    return kind.__name__, kind(files, pins, draw)
