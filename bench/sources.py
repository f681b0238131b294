"""The benchmark's chart-source rows: versions from a classic Helm repository's index of 10,000
entries, and an OCI tag listing of 2,000 tags, each next to its baseline measured in the same run
on the same data (a raw ``requests.get`` of the same URL and the obvious parse of its body).

The index is served by ``devtools.helmrepo.HelmRepoServer`` on 127.0.0.1, the way a static host
serves one (``ETag``, ``Last-Modified``, ``304``).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import requests
import yaml

from devtools.helmrepo import HelmRepoServer, index_entry, index_text
from gitops.model import ChartLocation
from gitops.sources.registry import RegistryClient

INDEX_ENTRIES = 10_000
INDEX_CHARTS = 40  # 250 versions each, as a public repository of a few dozen charts
WANTED = "chart-07"


def _ms(samples: list) -> float:
    return statistics.median(samples) * 1000


def _clock(fn: Callable) -> tuple:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def index_rows(runs: int, fmt: Callable, check: Callable, say: Callable) -> list:
    per_chart = INDEX_ENTRIES // INDEX_CHARTS
    entries = [index_entry(f"chart-{c:02d}", f"{v // 100}.{v % 100 // 10}.{v % 10}")
               for c in range(INDEX_CHARTS) for v in range(per_chart)]
    data = index_text(entries)
    say(f"Helm repository index: {INDEX_ENTRIES:,} entries, {len(data) / 1e6:.1f} MB")
    with HelmRepoServer({"index.yaml": data}) as server:
        location = ChartLocation(server.host, f"{server.prefix}/{WANTED}", True, "http")
        cold, raw, revalidated, cached = [], [], [], []
        for _ in range(runs):
            client = RegistryClient(timeout=30.0)
            t, versions = _clock(lambda: client.versions(location))
            check(len(versions.all_tags) == per_chart, f"index listed {len(versions.all_tags)} versions")
            cold.append(t)
            for _ in range(3):  # the cache expired, the index unchanged: a 304 keeps the parse
                client.invalidate(location)
                revalidated.append(_clock(lambda: client.versions(location))[0])
            check(client.index.downloads == 1, "a 304 downloaded the index again")
            cached += [_clock(lambda: client.versions(location))[0] for _ in range(200)]
            client.close()

            def baseline():
                body = requests.get(server.url + "/index.yaml", timeout=30).content
                document = yaml.load(body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                return [e["version"] for e in document["entries"][WANTED]]
            t, listed = _clock(baseline)
            check(len(listed) == per_chart, "the baseline read another index")
            raw.append(t)
    n = f"n={runs}"
    return [
        (f"Versions of one chart from an HTTPS Helm repository index of {INDEX_ENTRIES:,} entries "
         f"({len(data) / 1e6:.1f} MB), cold: new client ({n})", fmt(_ms(cold)), "—",
         f"raw `requests.get` + `yaml.load(CSafeLoader)`: {fmt(_ms(raw))} → {_ms(cold) / _ms(raw):.2f}×"),
        (f"Same, cache expired, index unchanged: conditional request, `304` (n={len(revalidated)})",
         fmt(_ms(revalidated)), "—", f"{_ms(revalidated) / _ms(raw):.3f}× the raw baseline"),
        (f"Same, cached (n={len(cached)})", fmt(_ms(cached)), "—", "—"),
        (f"Baseline: raw `requests.get` + `yaml.load(CSafeLoader)` of the same index ({n})",
         fmt(_ms(raw)), "—", "baseline"),
    ]


def tag_rows(registry_host: str, repository: str, tags: int, runs: int, fmt: Callable,
             check: Callable) -> list:
    """Ferry's cold tag listing (new client: token-free here, one round trip per page) against a
    raw GET of the same ``tags/list``."""
    location = ChartLocation(registry_host, repository, insecure=True)
    ferry, raw = [], []
    url = f"http://{registry_host}/v2/{repository}/tags/list"
    for _ in range(runs):
        client = RegistryClient(timeout=10.0)
        t, versions = _clock(lambda: client.versions(location))
        check(len(versions.all_tags) == tags, f"listed {len(versions.all_tags)} tags, not {tags}")
        ferry.append(t)
        client.close()
        t, body = _clock(lambda: requests.get(url, timeout=10).json())
        check(len(body["tags"]) == tags, "the raw listing found other tags")
        raw.append(t)
    return [(f"Tag listing of {tags:,} tags, new client (n={runs})", fmt(_ms(ferry)), "—",
             f"raw `requests.get` of `tags/list` + `.json()`: {fmt(_ms(raw))} → {_ms(ferry) / _ms(raw):.2f}×")]
