"""Chart sources: how long the versions of a chart take to list. The big chart's tags in the local
registry (a new client, the cache expired with the connection reused, cached); then each source
next to its baseline measured in the same run on the same data (a raw ``requests.get`` of the same
URL and the obvious parse of its body): an OCI tag listing, and a classic Helm repository's index of
10,000 entries.

The index is served by ``devtools.helmrepo.HelmRepoServer`` on 127.0.0.1, the way a static host
serves one (``ETag``, ``Last-Modified``, ``304``).
"""
from __future__ import annotations

import requests
import yaml

from devtools.helmrepo import HelmRepoServer, index_entry, index_text
from gitops.model import ChartLocation
from gitops.sources.registry import RegistryClient

from bench.fleet import BIG_CHART
from bench.measure import check, clock, fmt, median_ms, repeat, say
from bench.world import World

INDEX_ENTRIES = 10_000
INDEX_CHARTS = 40  # 250 versions each, as a public repository of a few dozen charts
WANTED = "chart-07"


def measure(world: World) -> dict:
    args, runs, repository = world.args, world.runs, f"charts/{BIG_CHART}"
    say("version listing")
    location = ChartLocation(world.registry.host, repository, insecure=True)
    listing_cold = []
    for _ in range(runs):
        client = RegistryClient(timeout=10.0)
        t, versions = clock(client.versions, location)
        check(len(versions.all_tags) == args.tags, f"listed {len(versions.all_tags)} tags, not {args.tags}")
        listing_cold.append(t)
        client.close()
    client = RegistryClient(timeout=10.0)
    client.versions(location)
    relist = []
    for _ in range(world.mid):
        client.invalidate(location)
        relist.append(clock(client.versions, location)[0])
    cached = repeat(lambda: client.versions(location), 1000)
    client.close()
    return {"cold": listing_cold, "relist": relist, "cached": cached,
            "tag rows": tag_rows(world.registry.host, repository, args.tags, runs),
            "index rows": index_rows(runs)}


def rows(world: World) -> list:
    found = world.results["sources"]
    return [
        (f"Versions of a chart with {world.args.tags:,} tags, cold: new client (n={world.runs})",
         fmt(median_ms(found["cold"])), "—", "—"),
        (f"Versions, cache expired, connection reused (n={world.mid})", fmt(median_ms(found["relist"])),
         "—", "—"),
        ("Versions, cached (n=1000)", fmt(median_ms(found["cached"])), "—", "—"),
        *found["tag rows"],
        *found["index rows"],
    ]


def index_rows(runs: int) -> list:
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
            t, versions = clock(lambda: client.versions(location))
            check(len(versions.all_tags) == per_chart, f"index listed {len(versions.all_tags)} versions")
            cold.append(t)
            for _ in range(3):  # the cache expired, the index unchanged: a 304 keeps the parse
                client.invalidate(location)
                revalidated.append(clock(lambda: client.versions(location))[0])
            check(client.index.downloads == 1, "a 304 downloaded the index again")
            cached += [clock(lambda: client.versions(location))[0] for _ in range(200)]
            client.close()

            def baseline():
                body = requests.get(server.url + "/index.yaml", timeout=30).content
                document = yaml.load(body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                return [e["version"] for e in document["entries"][WANTED]]
            t, listed = clock(baseline)
            check(len(listed) == per_chart, "the baseline read another index")
            raw.append(t)
    n = f"n={runs}"
    m_cold, m_raw, m_revalidated = median_ms(cold), median_ms(raw), median_ms(revalidated)
    return [
        (f"Versions of one chart from an HTTPS Helm repository index of {INDEX_ENTRIES:,} entries "
         f"({len(data) / 1e6:.1f} MB), cold: new client ({n})", fmt(m_cold), "—",
         f"raw `requests.get` + `yaml.load(CSafeLoader)`: {fmt(m_raw)} → {m_cold / m_raw:.2f}×"),
        (f"Same, cache expired, index unchanged: conditional request, `304` (n={len(revalidated)})",
         fmt(m_revalidated), "—", f"{m_revalidated / m_raw:.3f}× the raw baseline"),
        (f"Same, cached (n={len(cached)})", fmt(median_ms(cached)), "—", "—"),
        (f"Baseline: raw `requests.get` + `yaml.load(CSafeLoader)` of the same index ({n})",
         fmt(m_raw), "—", "baseline"),
    ]


def tag_rows(registry_host: str, repository: str, tags: int, runs: int) -> list:
    """Ferry's cold tag listing (new client: token-free here, one round trip per page) against a
    raw GET of the same ``tags/list``."""
    location = ChartLocation(registry_host, repository, insecure=True)
    ferry, raw = [], []
    url = f"http://{registry_host}/v2/{repository}/tags/list"
    for _ in range(runs):
        client = RegistryClient(timeout=10.0)
        t, versions = clock(lambda: client.versions(location))
        check(len(versions.all_tags) == tags, f"listed {len(versions.all_tags)} tags, not {tags}")
        ferry.append(t)
        client.close()
        t, body = clock(lambda: requests.get(url, timeout=10).json())
        check(len(body["tags"]) == tags, "the raw listing found other tags")
        raw.append(t)
    m_ferry, m_raw = median_ms(ferry), median_ms(raw)
    return [(f"Tag listing of {tags:,} tags, new client (n={runs})", fmt(m_ferry), "—",
             f"raw `requests.get` of `tags/list` + `.json()`: {fmt(m_raw)} → {m_ferry / m_raw:.2f}×")]
