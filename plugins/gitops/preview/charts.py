"""A Helm chart archive read safely into plain data: its ``Chart.yaml``, default values (text and
data), ``values.schema.json`` and the CRDs under ``crds/``.

A chart archive comes from outside (a registry, a Helm repository), so it is read in memory and
never extracted: the gzip stream is inflated up to a bound (``ArchiveLimits.unpacked``, and at
most ``ratio`` times the archive's size: a small bomb stops early), members are counted, and any
member that is not a plain file or folder inside the chart's own folder (an absolute path, ``..``,
a symbolic or hard link, a device, a FIFO) refuses the whole archive with ``UnsafeArchive``:
Helm itself refuses such archives, so nothing honest is lost. Subcharts (``charts/``) are not
read. The documents inside go through the one loader (``safeyaml``), with its bounds.
"""
from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Optional

from ..errors import PreviewUnavailable, UnreadableDocument, UnsafeArchive
from ..safeyaml import load_json, load_typed

CHART_FILE, VALUES_FILE, SCHEMA_FILE = "Chart.yaml", "values.yaml", "values.schema.json"
CRD_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class ArchiveLimits:
    unpacked: int = 64 * 1024 * 1024  # bytes of tar once inflated
    members: int = 5000  # files and folders
    ratio: int = 200  # inflated bytes per archive byte, at most (a real chart is about 5)


LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Chart:
    """One chart version as plain data."""

    metadata: dict  # Chart.yaml
    values_text: str = ""
    values: dict = field(default_factory=dict)
    schema: Optional[dict] = None  # values.schema.json, when the chart has one
    crds: dict = field(default_factory=dict)  # CRD name -> {served version: fingerprint of its schema}
    problems: tuple = ()  # files of the chart that do not load, said in the preview

    @property
    def version(self) -> str:
        return _text(self.metadata.get("version"))

    @property
    def app_version(self) -> str:
        return _text(self.metadata.get("appVersion"))

    @property
    def annotations(self) -> dict:
        found = self.metadata.get("annotations")
        return {str(k): _text(v) for k, v in found.items()} if isinstance(found, dict) else {}


def read_chart(archive: bytes, where: str, limits: ArchiveLimits = LIMITS) -> Chart:
    """The chart in ``archive`` (a gzip tar as ``helm package`` writes it); ``where`` names it in
    messages. ``UnsafeArchive`` for a hostile archive, ``PreviewUnavailable`` for one that is not a
    chart."""
    files = _members(_inflate(archive, where, limits), where, limits)
    chart_yaml = files.get(CHART_FILE)
    if chart_yaml is None:
        raise PreviewUnavailable(f"{where} holds no `{CHART_FILE}`: it is not a Helm chart.")
    problems = []
    metadata = _document(chart_yaml, f"{where}'s {CHART_FILE}", problems)
    if not isinstance(metadata, dict):
        raise PreviewUnavailable(f"{where}'s {CHART_FILE} is not a mapping: "
                                 f"{problems[0] if problems else 'it is empty'}.")
    values_text = _decode(files.get(VALUES_FILE, b""))
    values = _document(files[VALUES_FILE], f"{where}'s {VALUES_FILE}", problems) \
        if VALUES_FILE in files else {}
    schema = None
    if SCHEMA_FILE in files:
        try:
            schema = load_json(files[SCHEMA_FILE], f"{SCHEMA_FILE} of {where}")
        except UnreadableDocument as e:
            problems.append(e.message)
        if schema is not None and not isinstance(schema, (dict, bool)):
            problems.append(f"{SCHEMA_FILE} of {where} is not a JSON Schema (not an object).")
            schema = None
    crds = {}
    for path in sorted(p for p in files if p.startswith("crds/") and p.endswith(CRD_SUFFIXES)):
        for doc in _documents(files[path], f"{where}'s {path}", problems):
            found = crd_versions(doc)
            if found is not None:
                crds[found[0]] = found[1]
    return Chart(metadata, values_text, values if isinstance(values, dict) else {},
                 schema if isinstance(schema, dict) else None, crds, tuple(problems))


def crd_versions(doc) -> Optional[tuple]:
    """(name, {version: fingerprint of its schema}) of a CustomResourceDefinition, else None."""
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        return None
    name = _text((doc.get("metadata") or {}).get("name")) if isinstance(doc.get("metadata"), dict) else ""
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    versions = {}
    for item in spec.get("versions") or ():
        if isinstance(item, dict) and item.get("name"):
            versions[str(item["name"])] = _fingerprint(item.get("schema"))
    if not versions and spec.get("version"):  # apiextensions v1beta1: one version, one validation
        versions[str(spec["version"])] = _fingerprint(spec.get("validation"))
    return (name or "(unnamed)"), versions


def _inflate(archive: bytes, where: str, limits: ArchiveLimits) -> bytes:
    cap = min(limits.unpacked, max(len(archive), 1024) * limits.ratio)
    out, rest = [], archive
    size = 0
    try:
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip only
            chunk = inflater.decompress(rest, cap - size + 1)
            size += len(chunk)
            if size > cap or inflater.unconsumed_tail:
                raise UnsafeArchive(f"{where} unpacks to more than {_size(cap)} (Ferry's bound for "
                                    "a chart of its size): refused as a decompression bomb.")
            out.append(chunk)
            if not inflater.eof:
                raise UnsafeArchive(f"{where} is cut short: not a whole gzip archive.")
            rest = inflater.unused_data.lstrip(b"\0")  # gzip members may follow each other
    except zlib.error:
        raise UnsafeArchive(f"{where} is not a gzip archive: Ferry reads charts as Helm packages them.") from None
    return b"".join(out)


def _members(tar_bytes: bytes, where: str, limits: ArchiveLimits) -> dict:
    """{path under the chart's folder: bytes} of the files Ferry reads; the checks cover every member."""
    wanted, top, count = {}, None, 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                count += 1
                if count > limits.members:
                    raise UnsafeArchive(f"{where} holds more than {limits.members:,} files: refused.")
                name = member.name
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    raise UnsafeArchive(f"{where} holds a path outside its folder (`{_shown(name)}`): "
                                        "refused.")
                if member.issym() or member.islnk():
                    raise UnsafeArchive(f"{where} holds a link (`{_shown(name)}`): refused; Helm "
                                        "packages plain files only.")
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchive(f"{where} holds a device or special file (`{_shown(name)}`): refused.")
                clean = posixpath.normpath(name.replace("\\", "/"))
                first, _, inside = clean.partition("/")
                top = top or first
                if first != top:
                    raise UnsafeArchive(f"{where} holds files outside the chart's folder `{_shown(top)}/` "
                                        f"(`{_shown(name)}`): refused.")
                if member.isfile() and _wanted(inside):
                    wanted[inside] = tar.extractfile(member).read()
    except tarfile.TarError as e:
        raise UnsafeArchive(f"{where} is not a readable tar archive ({e}).") from None
    return wanted


def _wanted(inside: str) -> bool:
    return inside in (CHART_FILE, VALUES_FILE, SCHEMA_FILE) or (
        inside.startswith("crds/") and inside.endswith(CRD_SUFFIXES))


def _documents(data: bytes, source: str, problems: list) -> list:
    try:
        return load_typed(_decode(data), source)
    except UnreadableDocument as e:
        problems.append(e.message)
        return []


def _document(data: bytes, source: str, problems: list):
    docs = _documents(data, source, problems)
    return docs[0] if docs and docs[0] is not None else ({} if not problems else None)


def _fingerprint(schema) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _text(value) -> str:
    return "" if value is None else str(value)


def _shown(name: str) -> str:
    text = "".join(c if c.isprintable() and c != "`" else "?" for c in name)
    return text if len(text) <= 60 else text[:60] + "…"


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"
