"""Memory: what discovery keeps is held once where it repeats (issue 21, item 4).

Equal subtrees of cached documents, the paths every environment's read-set names and the chart
locations of pins are each one object, not one per file, environment or pin; and what discovery
finds is what it found before they were shared (the property tests of carry and incremental
discovery say the same over generated repositories).
"""
from __future__ import annotations

from gitops.changes import carry
from gitops.flux.manifests import DocumentCache, parse_documents
from gitops.model import ChartLocation, Pin
from gitops.settings import parse_settings

from devtools.fluxrepo import ENVIRONMENTS, demo_settings, fleet_apps, fleet_files
from tests.carry_layouts import MemTree

REGISTRY = "oci://127.0.0.1:5000/charts"


def release(name: str, version: str) -> str:
    return f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
spec:
  interval: 10m
  chart:
    spec:
      chart: web
      version: "{version}"
      sourceRef: {{kind: HelmRepository, name: charts}}
  values:
    resources: {{limits: {{cpu: 100m}}, requests: {{cpu: 50m}}}}
    order: {{a: 1, b: 2}}
    list: [x, y]
"""


def fleet(apps: int = 9):
    chosen = fleet_apps(apps, ("web", "api", "worker"))
    pins = {(a[0], env): "1.0.0" for a in chosen for env in ENVIRONMENTS}
    tree = MemTree(fleet_files(REGISTRY, chosen, pins))
    return tree, parse_settings(demo_settings("file:///fleet.git"), environ={})


def containers(node, found: list) -> list:
    if isinstance(node, (dict, list)):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            containers(child, found)
    return found


def test_equal_subtrees_of_cached_documents_are_one_object():
    tree = MemTree({"a.yaml": release("a", "1.0.0"), "b.yaml": release("b", "2.0.0").replace(
        "order: {a: 1, b: 2}", "order: {b: 2, a: 1}")})
    cache = DocumentCache()
    (a,), (b,) = cache.get(tree, "a.yaml").docs, cache.get(tree, "b.yaml").docs
    assert a["spec"]["chart"]["spec"]["sourceRef"] is b["spec"]["chart"]["spec"]["sourceRef"]
    assert a["spec"]["values"]["resources"] is b["spec"]["values"]["resources"]
    assert a["spec"]["values"]["list"] is b["spec"]["values"]["list"]
    # What differs stays apart: the version's mapping, and a mapping of the same pairs in
    # another order (the order is the document's).
    assert a["spec"]["chart"]["spec"] is not b["spec"]["chart"]["spec"]
    assert a["spec"]["values"]["order"] is not b["spec"]["values"]["order"]
    assert list(b["spec"]["values"]["order"]) == ["b", "a"]
    # Each is exactly what a fresh parse gives.
    for path, doc in (("a.yaml", a), ("b.yaml", b)):
        assert [doc] == parse_documents(tree.read(path))[0]


def test_a_fleets_documents_share_what_repeats_and_read_as_parsed():
    tree, settings = fleet()
    cache = DocumentCache()
    carry.discover(tree, settings, cache=cache)
    every, parsed = [], 0
    for path in tree.files():
        docs = cache.get(tree, path).docs
        assert list(docs) == parse_documents(tree.read(path))[0], path
        parsed += bool(docs)
        for doc in docs:
            containers(doc, every)
    assert parsed > 40
    distinct = {id(node) for node in every}
    assert len(distinct) < len(every) / 2  # the fleet's files differ in a few names and versions


def test_a_path_several_environments_read_is_one_string():
    tree, settings = fleet()
    known = carry.discover(tree, settings, cache=DocumentCache())
    first = {path: path for path in known.parts[0].read}
    shared = [path for part in known.parts[1:] for path in part.read if path in first]
    assert any(path.startswith("apps/base/") for path in shared)  # the base every overlay reads
    assert all(first[path] is path for path in shared)
    # And the files the pins name are those strings too.
    releases = [pin.release_file for pin in known.pins if pin.release_file.startswith("apps/base/")]
    assert releases and all(first[path] is path for path in releases)


def test_the_pins_of_one_chart_hold_one_location():
    tree, settings = fleet(12)
    known = carry.discover(tree, settings, cache=DocumentCache())
    sources = [pin.source for pin in known.pins if pin.source is not None]
    assert len(sources) >= 12 * len(ENVIRONMENTS)
    assert len({id(source) for source in sources}) == len(set(sources))
    # Equal locations made apart are one object in the pins that hold them.
    made = [Pin("web", "dev", "1.0.0", False, None, "helmrelease", "web",
                source=ChartLocation("127.0.0.1:5000", f"charts/{'web'}", True)) for _ in range(2)]
    assert made[0].source is made[1].source
