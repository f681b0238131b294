"""What one environment's paths build, the way Flux's kustomize-controller sees them.

A folder with a ``kustomization.yaml`` contributes its ``resources:`` (followed into other folders,
even outside the environment's path) and its patches; a folder without one contributes every YAML
file under it, as the Kustomization Flux generates does. Missing files and cycles are skipped with
a problem noted: discovery reports what it can, it does not validate the repository.

Names and namespaces are those kustomize gives: ``namespace:`` of the outermost kustomization
wins, ``namePrefix``/``nameSuffix`` accumulate from the innermost out. A Flux Kustomization
(``kustomizations.py``) is one more, outermost, level of that chain. A file reached by two routes
that give it two namespaces or names is two objects, as kustomize makes them (a Component included
by every namespace folder): one ``Resource`` each. The kustomizations walked and their
``replacements`` are kept for ``images`` and ``replacements``.
"""
from __future__ import annotations

import posixpath
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

from .manifests import YAML_SUFFIXES, DocumentCache, FileTree, dig, parse_documents
from ..model import PinLocation, Problem

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# A resource file without these words cannot hold anything discovery looks at: not parsed.
RELEVANT_KINDS = ("HelmRelease", "HelmRepository", "OCIRepository", "Kustomization", "GitRepository",
                  "ConfigMap", "ResourceSet", "ArtifactGenerator")


@dataclass(frozen=True)
class Level:
    """One kustomization a resource is built through: its patch scope and name transformers."""

    scope: int
    namespace: Optional[str] = None
    prefix: str = ""
    suffix: str = ""
    file: str = ""  # the kustomization file ("" for a Flux Kustomization's own level)
    component: bool = False  # a kustomize component: its patches act in the scope of its user


# One empty set for every resource that goes by its name only (``frozenset()`` is a new object).
NO_NAMES = frozenset()


@dataclass(frozen=True, slots=True)  # tens of thousands per environment, some kept (``release_files``)
class Resource:
    file: str
    index: int  # document index in the file
    doc: dict
    scopes: frozenset  # ids of the kustomizations whose patches apply to it
    namespace: str  # after kustomize's `namespace:` transformers
    name: str = ""  # after kustomize's name prefixes and suffixes ("" when the doc has none)
    # every name it goes by on the way (patches match any), when prefixes gave it more than one;
    # empty: just ``name`` (a set of one per resource was a third of its memory)
    names: frozenset = NO_NAMES
    # (path, why, known) of each field a kustomize replacement writes (``replacements``)
    replaced: tuple = ()

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.doc.get("apiVersion") or "")


@dataclass(frozen=True)
class Patch:
    file: str  # the patch file, or the kustomization holding an inline patch
    index: int  # document index in ``file``
    body: Any  # a mapping (strategic merge) or a list of JSON6902 operations
    target: Optional[dict]  # kustomize target selector
    scope: int  # id of the kustomization that declares it
    at: tuple = ()  # where the body (or the string holding it) sits in document ``index``
    text_doc: Optional[int] = None  # the body came from YAML in a string: its document there
    located: bool = True  # False: the body was rewritten on its way (no one line to edit)

    @property
    def json6902(self) -> bool:
        return isinstance(self.body, list)

    @property
    def inline(self) -> bool:
        return self.text_doc is not None

    def location(self, path: tuple) -> Optional[PinLocation]:
        """Where a value at ``path`` inside this patch's body is written."""
        if not self.located:
            return None
        if self.text_doc is None:
            return PinLocation(self.file, self.index, self.at + tuple(path))
        return PinLocation(self.file, self.index, self.at, inner=(self.text_doc, tuple(path)))


@dataclass
class Build:
    resources: list = field(default_factory=list)  # [Resource], in kustomize order
    patches: list = field(default_factory=list)  # [Patch], in the order kustomize applies them
    files: list = field(default_factory=list)  # every manifest file read, for variable uses
    # (kustomization file, its document, the levels from the outermost to it), as walked:
    # whose ``images:`` and ``replacements`` act on what.
    kustomizations: list = field(default_factory=list)
    # (scope, folder, kustomization file, its `replacements:`), innermost first, as kustomize runs them
    replacements: list = field(default_factory=list)
    # (PinLocation, what it feeds) of each replacement's source: a pin there feeds more than itself
    replacement_sources: list = field(default_factory=list)


class Walker:
    """Builds one environment: call ``add_path`` for each of its paths, then read ``build``.
    ``index``: the tree's listing (``tree_index.TreeIndex``, or ``units.Listing`` recording it)."""

    def __init__(self, tree: FileTree, index, cache: DocumentCache, problems: list,
                 environment: str = "", ids=None):
        self.tree, self.index, self.cache, self.problems = tree, index, cache, problems
        self.environment = environment
        self.build = Build()
        self._seen: dict = {}  # (file, index, namespace, name) -> position in build.resources
        self._files: set = set()
        self._scopes: dict = {}  # chain of levels -> the ids of its kustomizations
        self._ids = ids if ids is not None else ScopeIds()

    def new_scope(self) -> int:
        return self._ids.next()

    def problem(self, path: str, reason: str) -> None:
        self.problems.append(Problem(self.environment, path, reason))

    def add_path(self, path: str, outer: tuple = ()) -> None:
        """Build ``path`` (a folder, a kustomization file or one manifest) under the ``outer``
        levels (a Flux Kustomization's own transformers)."""
        if path in self.index.files and posixpath.basename(path) not in KUSTOMIZATION_FILES:
            self._add_file(path, outer)
        else:
            folder = posixpath.dirname(path) if path in self.index.files else path
            self._walk_folder(folder, outer, frozenset())

    def add_component(self, folder: str, chain: tuple, scope: int) -> None:
        """A kustomize component: its patches act on the resources of the level that uses it."""
        component = self.index.kustomization(folder) if self.index.is_dir(folder) else None
        if component:
            self._walk_kustomization(folder, component, chain, frozenset(), patch_scope=scope)
        else:
            self.problem(folder, "a component that does not exist (or has no kustomization.yaml); skipped.")

    # ---- folders ---------------------------------------------------------------------------

    def _walk_folder(self, folder: str, chain: tuple, stack: frozenset) -> None:
        kustomization = self.index.kustomization(folder)
        if kustomization is not None:
            self._walk_kustomization(folder, kustomization, chain, stack)
            return
        files, subfolders = self.index.children.get(folder, ([], set()))
        for path in files:
            if path.endswith(YAML_SUFFIXES):
                self._add_file(path, chain)
        for sub in sorted(subfolders):
            self._walk_folder(sub, chain, stack)

    def _walk_kustomization(self, folder: str, kfile: str, chain: tuple, stack: frozenset,
                            patch_scope: Optional[int] = None) -> None:
        if folder in stack:
            self.problem(kfile, "a kustomization includes itself again; skipped the loop.")
            return
        stack = stack | {folder}
        parsed = self.cache.get(self.tree, kfile)
        spec_index = next((i for i, d in enumerate(parsed.docs) if isinstance(d, dict)), None)
        if parsed.error:
            self.problem(kfile, f"not valid YAML ({parsed.error}); skipped.")
        if spec_index is None:
            return
        spec = parsed.docs[spec_index]
        kid = self.new_scope()
        chain = chain + (Level(kid, text_of(spec.get("namespace")) or None, text_of(spec.get("namePrefix")),
                               text_of(spec.get("nameSuffix")), kfile, patch_scope is not None),)
        self.build.kustomizations.append((kfile, spec_index, chain))
        for key in ("resources", "bases"):
            for entry in strings(spec.get(key)):
                self.include(folder, kfile, entry, chain, stack)
        for entry in strings(spec.get("components")):
            target = join_path(folder, entry)
            component = self.index.kustomization(target) if self.index.is_dir(target) else None
            if component:
                self._walk_kustomization(target, component, chain, stack, patch_scope=kid)
        self.collect_patches(folder, kfile, spec_index, spec, kid if patch_scope is None else patch_scope)
        if isinstance(spec.get("replacements"), list):
            self.build.replacements.append((kid if patch_scope is None else patch_scope, folder, kfile,
                                            spec["replacements"]))

    def include(self, folder: str, kfile: str, entry: str, chain: tuple, stack: frozenset) -> None:
        """One entry of the `resources:` of ``kfile`` (in ``folder``), reached through ``chain``;
        ``stack``: the folders of the kustomizations on the way (a loop is skipped)."""
        if "://" in entry or "?ref=" in entry or entry.startswith(("github.com/", "git@")):
            return  # a remote base: not in this repository
        target = join_path(folder, entry)
        if target in self.index.files:
            self._add_file(target, chain)
        elif self.index.is_dir(target):
            self._walk_folder(target, chain, stack)
        else:
            self.problem(kfile, f"resource `{entry}` does not exist; skipped.")

    def _add_file(self, path: str, chain: tuple) -> None:
        parsed = self.cache.get(self.tree, path, RELEVANT_KINDS)
        if parsed.error:
            self.problem(path, f"not valid YAML ({parsed.error}); "
                               f"read {len(parsed.docs)} document(s) before the error.")
        if path not in self._files:
            self._files.add(path)
            self.build.files.append(path)
        scopes = self._scopes.get(chain)
        if scopes is None:  # one set per chain, not one per file (13,000 files a chain at 10k apps)
            scopes = self._scopes[chain] = frozenset(level.scope for level in chain)
        for i, doc in enumerate(parsed.docs):
            if not is_resource(doc):
                continue
            res = resource(path, i, doc, chain, scopes)
            namespace, name, names = res.namespace, res.name, res.names
            # A file reached twice is one copy per object kustomize makes of it: routes giving it
            # the same namespace and name make one object (the patches of both apply), routes
            # giving it another namespace or name make another (a Component in every namespace).
            key = (path, i, namespace, name)
            if key in self._seen:
                at = self._seen[key]
                old = self.build.resources[at]
                merged = (old.names or frozenset((old.name,))) | (names or frozenset((name,)))
                self.build.resources[at] = Resource(old.file, old.index, old.doc, old.scopes | scopes,
                                                    old.namespace, old.name,
                                                    merged if len(merged) > 1 else NO_NAMES)
                continue
            self._seen[key] = len(self.build.resources)
            self.build.resources.append(res)

    # ---- patches ---------------------------------------------------------------------------

    def collect_patches(self, folder: str, kfile: str, doc_index: int, spec: dict, scope: int,
                         at: tuple = ()) -> None:
        """The patches a kustomization (or a Flux Kustomization's ``spec``, at ``at``) declares,
        in kustomize's order: patchesStrategicMerge, then patches, then patchesJson6902."""
        for i, entry in enumerate(_list(spec.get("patchesStrategicMerge"))):
            where = at + ("patchesStrategicMerge", i)
            if isinstance(entry, dict):  # Flux v1beta2 writes the patch object itself
                self._add_patch(Patch(kfile, doc_index, entry, None, scope, where))
                continue
            if not isinstance(entry, str):
                continue
            path = join_path(folder, entry)
            if "\n" not in entry and path in self.index.files:
                self._patch_file(path, None, scope)
            else:
                self._patch_inline(entry, kfile, doc_index, where, None, scope)
        for i, entry in enumerate(_list(spec.get("patches"))):
            if isinstance(entry, dict):
                self._patch_entry(folder, kfile, doc_index, at + ("patches", i), entry, scope)
        for i, entry in enumerate(_list(spec.get("patchesJson6902"))):
            if isinstance(entry, dict) and isinstance(entry.get("target"), dict):
                self._patch_entry(folder, kfile, doc_index, at + ("patchesJson6902", i), entry, scope)

    def _patch_entry(self, folder: str, kfile: str, doc_index: int, at: tuple, entry: dict,
                     scope: int) -> None:
        target = entry.get("target") if isinstance(entry.get("target"), dict) else None
        if isinstance(entry.get("path"), str):
            path = join_path(folder, entry["path"])
            if path in self.index.files:
                self._patch_file(path, target, scope)
            else:
                self.problem(kfile, f"patch `{entry['path']}` does not exist; skipped.")
        elif isinstance(entry.get("patch"), str):
            self._patch_inline(entry["patch"], kfile, doc_index, at + ("patch",), target, scope)
        elif isinstance(entry.get("patch"), list):  # Flux v1beta2 JSON6902 operations as objects
            self._add_patch(Patch(kfile, doc_index, entry["patch"], target, scope, at + ("patch",)))

    def _patch_file(self, path: str, target: Optional[dict], scope: int) -> None:
        parsed = self.cache.get(self.tree, path)
        if parsed.error:
            self.problem(path, f"not valid YAML ({parsed.error}); skipped what follows.")
        for i, doc in enumerate(parsed.docs):
            self._add_patch(Patch(path, i, doc, target, scope))

    def _patch_inline(self, text: str, kfile: str, doc_index: int, at: tuple,
                      target: Optional[dict], scope: int) -> None:
        docs, error = parse_documents(text)
        if error:
            self.problem(kfile, f"an inline patch is not valid YAML ({error}); skipped.")
        for i, doc in enumerate(docs):
            self._add_patch(Patch(kfile, doc_index, doc, target, scope, at, text_doc=i))

    def _add_patch(self, patch: Patch) -> None:
        # A JSON6902 list means nothing without a target to apply it to.
        if isinstance(patch.body, dict) or (isinstance(patch.body, list) and patch.target):
            self.build.patches.append(patch)


# ---- small helpers ---------------------------------------------------------------------------

class ScopeIds:
    """Patch scope ids, unique across every build of one discovery."""

    def __init__(self, last: int = 0):
        self._last = last  # ids up to it are taken (a build walked on, ``folder_entries``)

    def next(self) -> int:
        self._last += 1
        return self._last


def resource(path: str, index: int, doc: dict, chain: tuple, scopes: Optional[frozenset] = None) -> Resource:
    """Document ``index`` of ``path`` as kustomize makes it through ``chain`` (its levels, from the
    outermost): the outermost `namespace:` wins, names take each level's prefix and suffix;
    ``scopes``: the chain's (one set shared by every resource of the chain)."""
    outer_namespace = next((lv.namespace for lv in chain if lv.namespace), None)
    name, names = _names(dig(doc, "metadata", "name"), chain)
    return Resource(path, index, doc, frozenset(level.scope for level in chain) if scopes is None else scopes,
                    str(outer_namespace or dig(doc, "metadata", "namespace") or ""), name, names)


def is_resource(doc) -> bool:
    """Whether a document of a resource file is an object kustomize builds (a kind and an API)."""
    return isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str)


def _names(name, chain: tuple) -> tuple:
    """The name after each level's prefix and suffix (innermost first), and every name on the way
    when there is more than one (``Resource.names``)."""
    if not isinstance(name, str) or not name:
        return "", NO_NAMES
    names = [name]
    for level in reversed(chain):
        if level.prefix or level.suffix:
            name = f"{level.prefix}{name}{level.suffix}"
            names.append(name)
    return name, frozenset(names) if len(names) > 1 else NO_NAMES


def text_of(value) -> str:
    """A manifest field that must be text: the text, or "" for anything else."""
    return value if isinstance(value, str) else ""


def _list(value) -> list:
    return value if isinstance(value, list) else []


def strings(value) -> list:
    """The text entries of a manifest list (``resources:``, ``components:``)."""
    return [v for v in _list(value) if isinstance(v, str)]


def join_path(folder: str, entry: str) -> str:
    """A path relative to ``folder``, normalised ("" for the repository's root)."""
    path = posixpath.normpath(posixpath.join(folder, entry.strip()))
    # Interned: the tree's own string for the path (listings intern theirs), held once however
    # many resources, pins and read-sets of however many environments name it.
    return "" if path == "." else sys.intern(path)
