"""An environment as kustomize-controller applies it: its path, then every Flux Kustomization
found there, followed to its ``spec.path`` (recursively), each built with its own
``targetNamespace``, ``namePrefix``/``nameSuffix``, ``patches`` and ``components``, then given
its ``postBuild`` variables.

Pure functions over a ``FileTree``. ``build_environment`` returns one ``Unit`` per build Flux
applies. A Kustomization that reads another source (another repository, an OCI artifact) is not
followed: it is a ``Problem`` saying why. An ExternalArtifact an ArtifactGenerator makes from this
repository is followed there (``artifacts``). The variables themselves are ``substitution``'s.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Optional
from urllib.parse import urlsplit

from .kustomize import (KUSTOMIZATION_FILES, RELEVANT_KINDS, Build, Level, Resource, Walker,
                        join_path, strings, text_of)
from . import artifacts, replacements
from .manifests import YAML_SUFFIXES, dig
from ..model import Problem
from .patches import PATCH_KEYS, PatchIndex, apply_all, origin, touches
from .substitution import NO_VARIABLES, Source, Variable, Variables, substitute_doc, substitution_disabled

KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/"
SOURCE_API = "source.toolkit.fluxcd.io/"
BOOTSTRAP = ("flux-system", "flux-system")  # (namespace, name) of `flux bootstrap`'s GitRepository
MAX_UNITS = 1000  # per environment: far beyond real fleets, a guard against generated loops


# ---- units -----------------------------------------------------------------------------------

@dataclass
class Unit:
    """One build Flux applies: an environment's path, or a Flux Kustomization followed."""

    build: Build
    path: str
    variables: Variables = NO_VARIABLES
    kustomization: Optional[Resource] = None  # the Flux Kustomization (None: the path itself)
    patch_index: Optional[PatchIndex] = None
    outer: tuple = ()  # the levels its path is walked through: its Flux Kustomization's own, or none
    # what its builds name, defined or not (``sharing.named``), once built, when it substitutes
    named: Optional[dict] = field(default=None, compare=False, repr=False)

    @property
    def patches(self) -> PatchIndex:
        if self.patch_index is None:
            self.patch_index = PatchIndex(self.build.patches)
        return self.patch_index

    def document(self, res: Resource) -> tuple:
        """A document as this unit builds it (patched, then given the unit's variables), and the
        patches that applied to it."""
        patches = self.patches.for_resource(res)
        doc = apply_all(res.doc, patches)
        if self.variables.enabled and not substitution_disabled(doc):
            doc = substitute_doc(doc, self.variables)
        return doc, patches

    @property
    def label(self) -> str:
        if self.kustomization is None:
            return f"`{self.path or '.'}`"
        return f"Kustomization {self.kustomization.namespace}/{self.kustomization.name}"


class Finder:
    """Objects by (kind, namespace, name) across the repository, for what a build does not
    hold itself (a shared `flux-system` source, a ConfigMap of cluster variables)."""

    def __init__(self, tree, index, cache):
        self._tree, self._index, self._cache = tree, index, cache
        self._table: Optional[dict] = None

    def find(self, kind: str, namespace: str, name: str) -> Optional[Resource]:
        if self._table is None:
            self._table = {}
            for path in sorted(self._index.files):
                if not in_table(path):
                    continue
                for i, doc in enumerate(self._cache.get(self._tree, path, RELEVANT_KINDS).docs):
                    key = table_key(doc)
                    if key is not None:
                        self._table.setdefault(key, Resource(path, i, doc, frozenset(), key[1], key[2]))
        return self._table.get((kind, namespace, name))


def in_table(path: str) -> bool:
    """Whether ``Finder`` reads ``path`` for its table."""
    return path.endswith(YAML_SUFFIXES) and posixpath.basename(path) not in KUSTOMIZATION_FILES


def table_key(doc) -> Optional[tuple]:
    """(kind, namespace, name) of a document, as ``Finder`` finds it (None: no such key, even
    for a kind written as a mapping or a list)."""
    if isinstance(doc, dict) and isinstance(dig(doc, "metadata", "name"), str) \
            and not isinstance(doc.get("kind"), (dict, list)):
        return doc.get("kind"), str(dig(doc, "metadata", "namespace") or ""), doc["metadata"]["name"]
    return None


# Every key of a Flux Kustomization's `spec` discovery reads (``follow_kustomization``, ``_managed``,
# ``_variables``, ``overlay_images``): a change to any other (`interval`, `prune`, `dependsOn`,
# `suspend`, …) changes nothing it finds (``flux_patches``). A key read anew belongs here.
SPEC_READ = ("sourceRef", "path", "targetNamespace", "namePrefix", "nameSuffix", "components", "postBuild",
             "images") + PATCH_KEYS


def build_environment(tree, index, cache, environment, repo, paths: list, problems: list,
                      finder: Finder, ids) -> list:
    """Every unit Flux applies for one environment whose entry is ``paths``."""
    units: list = []
    followed: set = set()  # (namespace, name) of the Kustomizations already followed
    queue: list = []
    for path in paths:
        walker = Walker(tree, index, cache, problems, environment, ids)
        walker.add_path(path)
        replacements.apply(walker.build, tree, index, cache, problems, environment)
        root = Unit(walker.build, path)
        bootstrap = _bootstrap(root, path, repo, tree, index, cache, problems, environment, finder,
                               units, ids)
        if bootstrap is not None:
            followed.add((bootstrap.kustomization.namespace, bootstrap.kustomization.name))
            root = bootstrap
        units.append(root)
        queue.append(root)
    while queue:
        parent = queue.pop(0)
        for res in parent.build.resources:
            if not flux_kustomization(res.doc):
                continue
            key = (res.namespace, res.name)
            if key in followed:
                continue
            followed.add(key)
            if len(units) >= MAX_UNITS:
                problems.append(Problem(environment, res.file, f"more than {MAX_UNITS} Flux "
                                        "Kustomizations: stopped following them."))
                return units
            child = follow_kustomization(res, parent, repo, tree, index, cache, problems, environment, finder,
                                         units, ids)
            if child is not None:
                units.append(child)
                queue.append(child)
    return units


def _bootstrap(root: Unit, path: str, repo, tree, index, cache, problems, environment, finder,
               units, ids) -> Optional[Unit]:
    """The Kustomization that applies the environment's own path (``flux bootstrap``'s
    ``flux-system``): its transformers and variables apply to that path."""
    for res in root.build.resources:
        if not flux_kustomization(res.doc):
            continue
        spec_path = _spec_path(res.doc)
        if spec_path is not None and spec_path == _clean(path) and _managed(res, res.doc, repo, finder,
                                                                            root)[0]:
            return follow_kustomization(res, root, repo, tree, index, cache, problems, environment, finder, units,
                                        ids, quiet=True)
    return None


def follow_kustomization(res: Resource, parent: Unit, repo, tree, index, cache, problems: list, environment: str,
                         finder: Finder, units: list, ids, quiet: bool = False) -> Optional[Unit]:
    doc, patches = parent.document(res)  # the Kustomization object is built by its parent
    where = f"Kustomization {res.namespace}/{res.name}"

    def problem(reason: str) -> None:
        problems.append(Problem(environment, res.file, f"{where} {reason}"))

    ref = dig(doc, "spec", "sourceRef")
    external = None
    if isinstance(ref, dict) and ref.get("kind") == "ExternalArtifact":
        external, reason = _external_artifact(res, ref, repo, finder, parent, units, index)
    else:
        reason = _managed(res, doc, repo, finder, parent)[1]
    reason = reason or replacements.unknown(res, ("spec",)) or replacements.unknown(res, ("metadata",))
    if reason:
        problem(f"is not followed: {reason.rstrip('.')}.")
        return None
    spec_path = _spec_path(doc)
    if spec_path is None:
        problem("has no usable `spec.path`: not followed.")
        return None
    if external is not None:
        spec_path = external.path(spec_path)
    if spec_path and spec_path not in index.files and not index.is_dir(spec_path):
        problem(f"applies `{spec_path}`, which is not in the repository: not followed.")
        return None
    if not quiet and spec_path in {u.path for u in units if u.kustomization is None}:
        return None  # it applies an environment path already built as it is (a bootstrap loop)
    spec = dig(doc, "spec") or {}
    walker = Walker(tree, index, cache, problems, environment, ids)
    scope = walker.new_scope()
    level = Level(scope, text_of(spec.get("targetNamespace")) or None, text_of(spec.get("namePrefix")),
                  text_of(spec.get("nameSuffix")), res.file)
    walker.add_path(spec_path, (level,))
    for entry in strings(spec.get("components")):
        walker.add_component(join_path(spec_path, entry), (level,), scope)
    # The patches are read from the file only when the parent wrote none of them (a value it
    # writes equal to the file's is still its own: an edit of the file would change nothing).
    raw_spec = dig(res.doc, "spec") or {}
    own = all(raw_spec.get(k) == spec.get(k) and not any(touches(p, ("spec", k)) for p in patches)
              for k in PATCH_KEYS)
    before = len(walker.build.patches)
    walker.collect_patches(posixpath.dirname(res.file), res.file, res.index, spec, scope,
                            at=("spec",))
    if not own:
        for i in range(before, len(walker.build.patches)):
            walker.build.patches[i] = replace(walker.build.patches[i], located=False)
    replacements.apply(walker.build, tree, index, cache, problems, environment)
    if external is not None:
        read = [*walker.build.files, *(k for k, _, _ in walker.build.kustomizations),
                *(p.file for p in walker.build.patches if p.file != res.file)]
        missing = external.missing(dict.fromkeys(read))
        if missing:
            problem(f"is not followed: it reads `{missing[0]}`, which ExternalArtifact "
                    f"{external.name} does not copy (Flux cannot build it either).")
            return None
    variables = _variables(res, doc, patches, parent, units, finder, tree, cache, problem)
    return Unit(walker.build, spec_path, variables, res, outer=(level,))


def _variables(res: Resource, doc: dict, patches: list, parent: Unit, units: list, finder: Finder,
               tree, cache, problem: Callable) -> Variables:
    post = dig(doc, "spec", "postBuild")
    if not isinstance(post, dict):
        return NO_VARIABLES
    where = f"`spec.postBuild.substitute` of Kustomization {res.namespace}/{res.name} ({res.file})"
    inline = {}
    for name, value in (post.get("substitute") or {}).items() if isinstance(post.get("substitute"), dict) else ():
        written, location, _ = origin(res, patches, ("spec", "postBuild", "substitute", name))
        if written is None or "${" in written or written != scalar_text(value):
            location = None  # composed by the parent's variables or patches: not one line here
        inline[str(name)] = Variable(str(name), scalar_text(value), location, where)
    sources = []
    for entry in post.get("substituteFrom") or ():
        if not isinstance(entry, dict):
            continue
        kind, name = str(entry.get("kind") or ""), str(entry.get("name") or "")
        optional = entry.get("optional") is True
        if kind == "Secret":
            sources.append(Source(f"Secret {res.namespace}/{name}", {}, readable=False))
            continue
        config_map = _config_map(res.namespace, name, units, parent, finder)
        if config_map is None:
            if not optional:
                problem(f"substitutes from ConfigMap {res.namespace}/{name}, which is not in the "
                        "repository: its variables are unknown.")
                sources.append(Source(f"ConfigMap {res.namespace}/{name} (not in the repository)", {},
                                      readable=False))
            continue
        cm, cm_patches = config_map
        data = dig(apply_all(cm.doc, cm_patches), "data")
        described = f"ConfigMap {res.namespace}/{name} ({cm.file})"
        found = {}
        for key, value in (data or {}).items() if isinstance(data, dict) else ():
            written, location, _ = origin(cm, cm_patches, ("data", key))
            if written is None or "${" in written:
                location = None
            found[str(key)] = Variable(str(key), scalar_text(value), location, described)
        sources.append(Source(described, found, at=(cm.file, cm.index)))
    return Variables(inline, tuple(sources), post.get("substituteStrategy") == "Always")


def _config_map(namespace: str, name: str, units: list, parent: Unit, finder: Finder):
    for unit in [parent, *units]:
        for res in unit.build.resources:
            if res.kind == "ConfigMap" and res.name == name and res.namespace == namespace:
                return res, unit.patches.for_resource(res)
    found = finder.find("ConfigMap", namespace, name)
    return (found, []) if found is not None else None


def _managed(res: Resource, doc: dict, repo, finder: Finder, parent: Unit) -> tuple:
    """Whether the Kustomization reads the repository and branch Ferry manages, and why not."""
    ref = dig(doc, "spec", "sourceRef")
    if not isinstance(ref, dict):
        return False, "it has no `spec.sourceRef`."
    kind = str(ref.get("kind") or "")
    name = str(ref.get("name") or "")
    namespace = str(ref.get("namespace") or res.namespace)
    if kind != "GitRepository":
        why = {"OCIRepository": "its manifests come from an OCI artifact",
               "Bucket": "its manifests come from a bucket"}
        return False, why.get(kind, f"its source is a {kind or 'missing kind'}") + f" ({kind} {namespace}/{name})."
    return _git_source(namespace, name, repo, finder, parent)


def _external_artifact(res: Resource, ref: dict, repo, finder: Finder, parent: Unit, units: list,
                       index) -> tuple:
    """(Artifact, "") for a Kustomization reading an ExternalArtifact an ArtifactGenerator makes
    from this repository, or (None, why not)."""
    name = str(ref.get("name") or "")
    namespace = str(ref.get("namespace") or res.namespace)
    for unit in [parent, *units]:
        for candidate in unit.build.resources:
            if candidate.namespace != namespace or not artifacts.is_generator(candidate.doc):
                continue
            generator, _ = unit.document(candidate)
            entry = artifacts.generated_by(generator, name)
            if entry is None:
                continue

            def source_ok(kind, source_namespace, source_name):
                if kind != "GitRepository":
                    return False, f"ExternalArtifact {namespace}/{name} copies from {kind} " \
                                  f"{source_namespace}/{source_name}, not from Git."
                return _git_source(source_namespace, source_name, repo, finder, parent)

            found, why = artifacts.artifact(generator, entry, index.files, source_ok)
            if found is None:
                return None, f"ExternalArtifact {namespace}/{name} (ArtifactGenerator " \
                             f"{candidate.namespace}/{candidate.name}, `{candidate.file}`): {why.rstrip('.')}."
            return found, ""
    return None, f"no ArtifactGenerator Flux applies here makes ExternalArtifact {namespace}/{name}."


def _git_source(namespace: str, name: str, repo, finder: Finder, parent: Unit) -> tuple:
    """(True, "") when GitRepository ``namespace/name`` is this repository at Ferry's branch."""
    source = _git_repository(namespace, name, parent, finder)
    if source is None:
        if (namespace, name) == BOOTSTRAP:
            return True, ""
        return False, f"GitRepository {namespace}/{name} is not in the repository, so Ferry cannot " \
                      "tell whether it is this one."
    url = str(dig(source.doc, "spec", "url") or "")
    if (namespace, name) != BOOTSTRAP and not same_repository(url, repo.url):
        return False, f"it reads GitRepository {namespace}/{name} ({url}), not {repo.url}."
    git_ref = dig(source.doc, "spec", "ref")
    if isinstance(git_ref, dict):
        pinned = {k: git_ref.get(k) for k in ("tag", "semver", "commit", "name") if git_ref.get(k)}
        if pinned:
            what = ", ".join(f"{k} {v}" for k, v in pinned.items())
            return False, f"GitRepository {namespace}/{name} follows {what}, not branch {repo.branch}."
        branch = git_ref.get("branch")
        if isinstance(branch, str) and branch and branch != repo.branch:
            return False, f"GitRepository {namespace}/{name} follows branch {branch}, not {repo.branch}."
    return True, ""


def _git_repository(namespace: str, name: str, parent: Unit, finder: Finder) -> Optional[Resource]:
    for res in parent.build.resources:
        if res.kind == "GitRepository" and res.api_version.startswith(SOURCE_API) and \
                res.namespace == namespace and res.name == name:
            return res
    return finder.find("GitRepository", namespace, name)


def same_repository(a: str, b: str) -> bool:
    """Whether two Git URLs name one repository (https, ssh and scp-like forms, `.git` or not)."""
    return bool(a) and _repository_key(a) == _repository_key(b)


def _repository_key(url: str) -> str:
    url = url.strip()
    scp = re.match(r"^[\w.-]+@([\w.-]+):(?!//)(.*)$", url)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(url)
        host, path = (parts.hostname or ""), parts.path
        if parts.scheme == "file":
            host = ""
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}/{path}"


def flux_kustomization(doc) -> bool:
    """Whether a document is a Flux Kustomization (kustomize-controller's, not kustomize's)."""
    return isinstance(doc, dict) and doc.get("kind") == "Kustomization" and \
        str(doc.get("apiVersion") or "").startswith(KUSTOMIZE_API)


def _spec_path(doc: dict) -> Optional[str]:
    path = dig(doc, "spec", "path")
    if path is None:
        return ""
    if not isinstance(path, str) or "${" in path:
        return None
    return _clean(path)


def _clean(path: str) -> str:
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    return "" if cleaned in (".", "") else cleaned


def scalar_text(value) -> Optional[str]:
    """A variable's value as Flux substitutes it (None: not a scalar)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
