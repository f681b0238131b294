"""Flux 2.7's ArtifactGenerator (``source.extensions.fluxcd.io``): the ExternalArtifact it makes
by copying files of a GitRepository, seen as the folder of this repository it stands for.

An artifact is followed when its copies keep the repository's layout under one folder (Flux's
own example copies ``apps/base/**`` to ``base/`` and ``apps/staging/**`` to ``staging/``: the
artifact is ``apps/`` with only those two folders): a Kustomization's ``spec.path`` in the artifact
is that folder's path in Git, and every file its build reads must be one the artifact holds.
Copies that rename or rearrange files are refused with the reason: an edit in Git could not be
told to reach what Flux applies. Pure functions over plain data.
"""
from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from typing import Callable, Optional

from .kustomize import join_path
from .manifests import dig

GENERATOR_API = "source.extensions.fluxcd.io/"
GENERATOR = "ArtifactGenerator"


@dataclass(frozen=True)
class Artifact:
    """An ExternalArtifact as a folder of the repository: ``root``, and the files it holds."""

    name: str
    root: str  # "" for the repository's root
    files: frozenset  # repository paths copied into the artifact

    def path(self, artifact_path: str) -> str:
        """The repository path of a path inside the artifact."""
        return join_path(self.root, artifact_path)

    def missing(self, paths) -> list:
        return [p for p in paths if p not in self.files]


def is_generator(doc: dict) -> bool:
    return doc.get("kind") == GENERATOR and str(doc.get("apiVersion") or "").startswith(GENERATOR_API)


def generated_by(doc: dict, name: str) -> Optional[dict]:
    """The ``spec.artifacts`` entry of a generator that makes the ExternalArtifact ``name``."""
    entries = dig(doc, "spec", "artifacts")
    return next((a for a in entries if isinstance(a, dict) and a.get("name") == name), None) \
        if isinstance(entries, list) else None


def artifact(generator: dict, entry: dict, files, source_ok: Callable) -> tuple:
    """(Artifact, "") for the artifact ``entry`` of ``generator``, or (None, why not).

    ``files``: the repository's paths; ``source_ok(kind, namespace, name)``: (True, "") when that
    source is this repository at Ferry's branch, else (False, why)."""
    namespace = str(dig(generator, "metadata", "namespace") or "")
    aliases = {}
    sources = dig(generator, "spec", "sources")
    for source in sources if isinstance(sources, list) else ():
        if isinstance(source, dict) and isinstance(source.get("alias"), str):
            aliases[source["alias"]] = source
    copied: dict = {}  # artifact path -> repository path
    for copy in entry.get("copy") if isinstance(entry.get("copy"), list) else ():
        if not isinstance(copy, dict):
            continue
        if str(copy.get("strategy") or "Overwrite") not in ("Overwrite", "Merge"):
            return None, f"it extracts archives (`strategy: {copy.get('strategy')}`)"
        origin, destination = str(copy.get("from") or ""), str(copy.get("to") or "")
        alias, _, pattern = origin.lstrip("@").partition("/")
        if not origin.startswith("@") or not destination.startswith("@artifact/"):
            return None, f"a copy Ferry cannot read (`{origin}` to `{destination}`)"
        source = aliases.get(alias)
        if source is None:
            return None, f"it copies from `@{alias}`, which is not one of its sources"
        kind = str(source.get("kind") or "")
        ok, why = source_ok(kind, str(source.get("namespace") or namespace), str(source.get("name") or ""))
        if not ok:
            return None, why
        exclude = copy.get("exclude") if isinstance(copy.get("exclude"), list) else ()
        excluded = [e for e in exclude if isinstance(e, str)]
        for repo_path, relative in _matches(pattern, files):
            if any(fnmatch.fnmatchcase(relative, e) or fnmatch.fnmatchcase(posixpath.basename(relative), e)
                   for e in excluded):
                continue
            target = destination[len("@artifact/"):]
            path = posixpath.join(target, relative) if target.endswith("/") or not target else target
            copied[posixpath.normpath(path)] = repo_path
    if not copied:
        return None, "it copies no file of this repository"
    roots = {_root(repo_path, path) for path, repo_path in copied.items()}
    if len(roots) != 1 or None in roots:
        return None, ("its copies move files to other folders than they have in Git, so an edit in Git "
                      "cannot be told to reach what Flux applies")
    return Artifact(str(entry.get("name")), roots.pop(), frozenset(copied.values())), ""


def _matches(pattern: str, files) -> list:
    """(repository path, path relative to the copy) of the files a ``from`` pattern selects:
    ``dir/**`` (recursive, keeping sub-folders), ``dir/*.yaml`` (one folder), one file."""
    pattern = pattern.strip("/")
    if pattern.endswith("/**") or pattern == "**":
        base = pattern[:-3].rstrip("/") if pattern != "**" else ""
        prefix = base + "/" if base else ""
        return [(f, f[len(prefix):]) for f in sorted(files) if f.startswith(prefix)]
    if any(c in pattern for c in "*?["):
        folder = posixpath.dirname(pattern)
        return [(f, posixpath.basename(f)) for f in sorted(files)
                if posixpath.dirname(f) == folder and fnmatch.fnmatchcase(f, pattern)]
    return [(pattern, posixpath.basename(pattern))] if pattern in files else []


def _root(repo_path: str, artifact_path: str) -> Optional[str]:
    """The folder that makes ``artifact_path`` ``repo_path`` (None: it is not a suffix)."""
    if repo_path == artifact_path:
        return ""
    if repo_path.endswith("/" + artifact_path):
        return repo_path[:-len(artifact_path) - 1]
    return None
