"""What one environment's paths build, the way Flux's kustomize-controller sees them.

A folder with a ``kustomization.yaml`` contributes its ``resources:`` (followed into other folders,
even outside the environment's path) and its patches; a folder without one contributes every YAML
file under it, as the Kustomization Flux generates does. Missing files and cycles are skipped with
a warning: discovery reports what it can, it does not validate the repository.
"""
from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field
from typing import Any, Optional

from .manifests import YAML_SUFFIXES, DocumentCache, FileTree, dig, parse_documents

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# A resource file without these words cannot hold anything discovery looks at: not parsed.
RELEVANT_KINDS = ("HelmRelease", "HelmRepository", "OCIRepository")


@dataclass(frozen=True)
class Resource:
    file: str
    index: int  # document index in the file
    doc: dict
    scopes: frozenset  # ids of the kustomizations whose patches apply to it
    namespace: str  # after kustomize's `namespace:` transformers


@dataclass(frozen=True)
class Patch:
    file: str  # the patch file, or the kustomization holding an inline patch
    index: Optional[int]  # document index in ``file``; None for an inline patch
    body: Any  # a mapping (strategic merge) or a list of JSON6902 operations
    target: Optional[dict]  # kustomize target selector
    scope: int  # id of the kustomization that declares it

    @property
    def json6902(self) -> bool:
        return isinstance(self.body, list)

    @property
    def inline(self) -> bool:
        return self.index is None


@dataclass
class Build:
    resources: list = field(default_factory=list)  # [Resource], in kustomize order
    patches: list = field(default_factory=list)  # [Patch], in the order kustomize applies them


class TreeIndex:
    """The files and folders of a tree, for globbing and for walking folders."""

    def __init__(self, files):
        self.files = set(files)
        self.children: dict = {}  # folder -> (files, subfolders) directly in it
        for path in sorted(self.files):
            parent = posixpath.dirname(path)
            self.children.setdefault(parent, ([], set()))[0].append(path)
            while parent:  # register every ancestor folder
                grand = posixpath.dirname(parent)
                subs = self.children.setdefault(grand, ([], set()))[1]
                if parent in subs:
                    break
                subs.add(parent)
                parent = grand

    def is_dir(self, path: str) -> bool:
        return path in self.children

    def kustomization(self, folder: str) -> Optional[str]:
        for name in KUSTOMIZATION_FILES:
            path = posixpath.join(folder, name) if folder else name
            if path in self.files:
                return path
        return None

    def expand(self, pattern: str) -> list[str]:
        """Files and folders matching a path or a glob (``*`` within a segment, ``**`` across)."""
        pattern = pattern.strip("/")
        if pattern in ("", "."):
            return [""]
        if not any(c in pattern for c in "*?["):
            return [pattern] if pattern in self.files or self.is_dir(pattern) else []
        parts = pattern.split("/")
        candidates = sorted(self.files | set(self.children) - {""})
        return [c for c in candidates if _match_segments(parts, c.split("/"))]


def _match_segments(pattern: list, parts: list) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_segments(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and \
        _match_segments(pattern[1:], parts[1:])


class Walker:
    """Builds one environment: call ``add_path`` for each of its paths, then read ``build``."""

    def __init__(self, tree: FileTree, index: TreeIndex, cache: DocumentCache, warnings: list):
        self.tree, self.index, self.cache, self.warnings = tree, index, cache, warnings
        self.build = Build()
        self._seen: dict = {}  # (file, index) -> position in build.resources
        self._next_id = 0

    def add_path(self, path: str) -> None:
        # Each environment path is its own Flux Kustomization: patches do not cross between them.
        if path in self.index.files and posixpath.basename(path) not in KUSTOMIZATION_FILES:
            self._add_file(path, ())
        else:
            folder = posixpath.dirname(path) if path in self.index.files else path
            self._walk_folder(folder, (), frozenset())

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
            self.warnings.append(f"{kfile}: a kustomization includes itself again; skipped the loop.")
            return
        stack = stack | {folder}
        parsed = self.cache.get(self.tree, kfile)
        spec = next((d for d in parsed.docs if isinstance(d, dict)), None)
        if parsed.error:
            self.warnings.append(f"{kfile} is not valid YAML ({parsed.error}); skipped.")
        if spec is None:
            return
        self._next_id += 1
        kid = self._next_id
        namespace = spec.get("namespace") if isinstance(spec.get("namespace"), str) else None
        chain = chain + ((kid, namespace),)
        for key in ("resources", "bases"):
            for entry in _strings(spec.get(key)):
                self._include(folder, kfile, entry, chain, stack)
        for entry in _strings(spec.get("components")):
            # A component's patches act on the resources of the kustomization that uses it.
            target = _join(folder, entry)
            component = self.index.kustomization(target) if self.index.is_dir(target) else None
            if component:
                self._walk_kustomization(target, component, chain, stack, patch_scope=kid)
        self._collect_patches(folder, kfile, spec, kid if patch_scope is None else patch_scope)

    def _include(self, folder: str, kfile: str, entry: str, chain: tuple, stack: frozenset) -> None:
        if "://" in entry or "?ref=" in entry or entry.startswith(("github.com/", "git@")):
            return  # a remote base: not in this repository
        target = _join(folder, entry)
        if target in self.index.files:
            self._add_file(target, chain)
        elif self.index.is_dir(target):
            self._walk_folder(target, chain, stack)
        else:
            self.warnings.append(f"{kfile}: resource `{entry}` does not exist; skipped.")

    def _add_file(self, path: str, chain: tuple) -> None:
        parsed = self.cache.get(self.tree, path, RELEVANT_KINDS)
        if parsed.error:
            self.warnings.append(f"{path} is not valid YAML ({parsed.error}); "
                                 f"read {len(parsed.docs)} document(s) before the error.")
        scopes = frozenset(kid for kid, _ in chain)
        outer_namespace = next((ns for _, ns in chain if ns), None)  # the outermost one wins
        for i, doc in enumerate(parsed.docs):
            if not (isinstance(doc, dict) and isinstance(doc.get("kind"), str)
                    and isinstance(doc.get("apiVersion"), str)):
                continue
            key = (path, i)
            if key in self._seen:  # reached twice: patches of both routes apply
                at = self._seen[key]
                old = self.build.resources[at]
                self.build.resources[at] = Resource(old.file, old.index, old.doc, old.scopes | scopes,
                                                    old.namespace)
                continue
            namespace = outer_namespace or dig(doc, "metadata", "namespace") or ""
            self._seen[key] = len(self.build.resources)
            self.build.resources.append(Resource(path, i, doc, scopes, str(namespace)))

    # ---- patches ---------------------------------------------------------------------------

    def _collect_patches(self, folder: str, kfile: str, spec: dict, scope: int) -> None:
        # kustomize's order: patchesStrategicMerge, then patches, then patchesJson6902.
        for entry in _list(spec.get("patchesStrategicMerge")):
            if not isinstance(entry, str):
                continue
            path = _join(folder, entry)
            if "\n" not in entry and path in self.index.files:
                self._patch_file(path, kfile, None, scope)
            else:
                self._patch_inline(entry, kfile, None, scope)
        for entry in _list(spec.get("patches")):
            if isinstance(entry, dict):
                self._patch_entry(folder, kfile, entry, scope)
        for entry in _list(spec.get("patchesJson6902")):
            if isinstance(entry, dict) and isinstance(entry.get("target"), dict):
                self._patch_entry(folder, kfile, entry, scope)

    def _patch_entry(self, folder: str, kfile: str, entry: dict, scope: int) -> None:
        target = entry.get("target") if isinstance(entry.get("target"), dict) else None
        if isinstance(entry.get("path"), str):
            path = _join(folder, entry["path"])
            if path in self.index.files:
                self._patch_file(path, kfile, target, scope)
            else:
                self.warnings.append(f"{kfile}: patch `{entry['path']}` does not exist; skipped.")
        elif isinstance(entry.get("patch"), str):
            self._patch_inline(entry["patch"], kfile, target, scope)

    def _patch_file(self, path: str, kfile: str, target: Optional[dict], scope: int) -> None:
        parsed = self.cache.get(self.tree, path)
        if parsed.error:
            self.warnings.append(f"{path} is not valid YAML ({parsed.error}); skipped what follows.")
        for i, doc in enumerate(parsed.docs):
            self._add_patch(Patch(path, i, doc, target, scope))

    def _patch_inline(self, text: str, kfile: str, target: Optional[dict], scope: int) -> None:
        docs, error = parse_documents(text)
        if error:
            self.warnings.append(f"{kfile}: an inline patch is not valid YAML ({error}); skipped.")
        for doc in docs:
            self._add_patch(Patch(kfile, None, doc, target, scope))

    def _add_patch(self, patch: Patch) -> None:
        # A JSON6902 list means nothing without a target to apply it to.
        if isinstance(patch.body, dict) or (isinstance(patch.body, list) and patch.target):
            self.build.patches.append(patch)


# ---- small helpers ---------------------------------------------------------------------------

def _list(value) -> list:
    return value if isinstance(value, list) else []


def _strings(value) -> list:
    return [v for v in _list(value) if isinstance(v, str)]


def _join(folder: str, entry: str) -> str:
    path = posixpath.normpath(posixpath.join(folder, entry.strip()))
    return "" if path == "." else path
