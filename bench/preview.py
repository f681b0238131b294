"""`!preview`: what a chart upgrade brings, for a chart of about 1 MiB (its templates do not
compress: each archive is about 1 MiB on the wire), in the local registry.

Cold: a new client and an empty archive folder (two manifests, two blobs, the notes of the
versions between, both archives read and compared); cached: the archives on disk by digest (a
restart: a new client, the manifests asked again, no blob). Baseline, in the same run on the same
data: a raw pull of the two archives (manifest and blob GETs, as `oras pull` does) plus a plain
`difflib` diff of their values.yaml.
"""
from __future__ import annotations

import difflib
import gzip
import io
import random
import shutil
import tarfile

import requests

from devtools.artifacts import HELM_CHART_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, push_chart
from gitops.model import ChartLocation
from gitops.preview.charts import read_chart
from gitops.preview.compare import preview
from gitops.sources.archives import ChartArchives
from gitops.sources.registry import RegistryClient

from bench.measure import check, clock, fmt, median_ms, say
from bench.world import World

REPOSITORY = "bench-preview/big"
OLD, NEW = "1.0.0", "2.0.0"
SIZE = 1024 * 1024


def _files(version: str, seed: int) -> dict:
    noise = random.Random(seed).randbytes(SIZE).hex()[:SIZE]  # hex of random bytes: gzip halves it at most
    values = "".join(f"key{i}:\n  enabled: {str(i % 2 == 0).lower()}\n  size: {i if version == OLD else i + 1}\n"
                     for i in range(500))
    return {"values.yaml": values.encode(), "templates/blob.txt": noise.encode()}


def measure(world: World) -> dict:
    say("preview of a 1 MiB chart")
    host = world.registry.host
    for n, version in enumerate((OLD, NEW)):
        push_chart(host, REPOSITORY, version, files=_files(version, n),
                   metadata={"annotations": {"artifacthub.io/changes": f"- kind: changed\n  description: {version}\n"}})
    location = ChartLocation(host, REPOSITORY, insecure=True)
    folder = world.tmp / "preview-archives"
    cold, cached, raw, sizes = [], [], [], []
    for _ in range(world.runs):
        shutil.rmtree(folder, ignore_errors=True)
        t, found = clock(_preview, location, folder)
        check(found.values_diff and found.new_version == NEW, "the cold preview compared nothing")
        cold.append(t)
        t, again = clock(_preview, location, folder)
        check(again == found, "the cached preview differs")
        cached.append(t)
        t, (diff, size) = clock(_baseline, host)
        check(diff and size > SIZE // 2, "the baseline pulled nothing")
        raw.append(t)
        sizes.append(size)
    return {"cold": cold, "cached": cached, "raw": raw, "bytes": max(sizes)}


def _preview(location: ChartLocation, folder):
    client = RegistryClient(timeout=30.0)
    try:
        archives = ChartArchives(client, folder, max_bytes=10 * SIZE)
        old = read_chart(archives.archive(location, OLD, f"big {OLD}"), f"big {OLD}")
        new = read_chart(archives.archive(location, NEW, f"big {NEW}"), f"big {NEW}")
        return preview("big", "bench", old, new, (), {"key1": {"size": 3}})
    finally:
        client.close()


def _baseline(host: str):
    session, texts, size = requests.Session(), [], 0
    session.trust_env = False
    for version in (OLD, NEW):
        manifest = session.get(f"http://{host}/v2/{REPOSITORY}/manifests/{version}", timeout=30,
                               headers={"Accept": OCI_MANIFEST_MEDIA_TYPE}).json()
        layer = next(l for l in manifest["layers"] if l["mediaType"] == HELM_CHART_MEDIA_TYPE)
        blob = session.get(f"http://{host}/v2/{REPOSITORY}/blobs/{layer['digest']}", timeout=30).content
        size += len(blob)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
            texts.append(tar.extractfile("big/values.yaml").read().decode())
    session.close()
    return "".join(difflib.unified_diff(texts[0].splitlines(True), texts[1].splitlines(True))), size // 2


def rows(world: World) -> list:
    found = world.results["preview"]
    n, m_raw = f"n={world.runs}", median_ms(found["raw"])
    m_cold, m_cached = median_ms(found["cold"]), median_ms(found["cached"])
    mib = found["bytes"] / (1024 * 1024)
    return [
        (f"`!preview` of a 1 MiB chart ({mib:.1f} MiB archives), cold: both downloaded, read, compared ({n})",
         fmt(m_cold), "—", f"raw pull + `values.yaml` diff: {fmt(m_raw)} → {m_cold / m_raw:.2f}×"),
        (f"`!preview` of the same, archives on disk by digest (a restart; {n})", fmt(m_cached), "—",
         f"{m_cached / m_raw:.2f}× the raw baseline"),
        (f"Baseline: raw pull of the two archives (manifest + blob GETs) + a `difflib` diff of "
         f"their values.yaml ({n})", fmt(m_raw), "—", "baseline"),
    ]
