"""After a commit the carry cannot prove, only the environments it touched are built again, and
what the bot then holds is what a fresh discovery finds: by the files each environment read, the
folders it listed, and the objects it looked up elsewhere (a source in another environment's
build, or anywhere in the repository). Pure over trees on disk, then through a real core on a
real bare remote after a colleague's commit."""
from __future__ import annotations

import pytest

from gitops.changes.carry import carry_forward, discover, rediscover
from gitops.core import GitOps
from gitops.flux import images
from gitops.settings import parse_settings
from tests.carry_fleet import FLEET_SETTINGS, fleet
from tests.fixtures_git import remote_tip
from tests.test_carry import tree

SETTINGS = parse_settings(FLEET_SETTINGS, environ={})
BASE = "apps/base/podinfo/helm-release"
# A key no one reads: what Flux applies changes, not a version (a comment is read alike: carried).
NOTE = "note: a key\n"


def commit_of(tmp_path, files: dict, change: dict, settings=SETTINGS) -> tuple:
    """(what the bot holds after ``change``, the environments built again, a fresh discovery)."""
    new_files = {path: text for path, text in {**files, **change}.items() if text is not None}
    old, new = tree(tmp_path, "old", files), tree(tmp_path, "new", new_files)
    before = discover(old, settings)
    assert carry_forward(before, old, new) is None  # what the carry cannot prove, only
    held, rebuilt = rediscover(before, old, new, settings)
    return held, rebuilt, discover(new, settings)


@pytest.mark.parametrize("change, touched", [
    # stag's own release file: stag only (one file, one environment)
    (lambda f: {"apps/stag/podinfo.hr": f["apps/stag/podinfo.hr"] + NOTE}, {"stag"}),
    # prod's JSON 6902 patch taking one more operation, not a version: prod only
    (lambda f: {"apps/prod/version.json": f["apps/prod/version.json"].replace(
        "]", ', {"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}}]')}, {"prod"}),
    # the base release dev and prod both build: both, never stag
    (lambda f: {BASE: f[BASE].replace("replicaCount: 1", "replicaCount: 2")}, {"dev", "prod"}),
    # a file added to a folder stag's kustomization lists: stag's listing changed
    (lambda f: {"apps/stag/extra.yaml": f["apps/stag/repository.yaml"]}, {"stag"}),
    # a resource list changed in dev's kustomization file (named `kustomization.yml`)
    (lambda f: {"apps/dev/kustomization.yml": f["apps/dev/kustomization.yml"] + "  - missing.yaml\n"}, {"dev"}),
    # files no build reads or lists, added, removed or changed: nothing built again
    (lambda f: {"docs/notes.yaml": f["apps/stag/repository.yaml"], "README.md": None}, set()),
])
def test_a_commit_builds_again_only_the_environments_it_touched(tmp_path, change, touched):
    files = fleet("127.0.0.1:5000")
    held, rebuilt, fresh = commit_of(tmp_path, files, change(files))
    assert rebuilt == touched
    assert held == fresh


def test_a_one_file_commit_builds_one_environment_of_many(tmp_path):
    """Four environments, each its own release: a key in one file builds that one again, and
    the other three parts are the very objects held before (not copies, not rebuilt)."""
    files, environments = fleet("127.0.0.1:5000"), ("dev", "qa", "stag", "prod")
    for env in environments:
        files[f"apps/{env}/kustomization.yaml"] = "resources:\n  - podinfo.hr\n  - repository.yaml\n"
        files[f"apps/{env}/podinfo.hr"] = files["apps/stag/podinfo.hr"]
        files[f"apps/{env}/repository.yaml"] = files["apps/stag/repository.yaml"]
    settings = parse_settings({**FLEET_SETTINGS, "environments": [{"name": e, "path": f"apps/{e}"}
                                                                  for e in environments]}, environ={})
    old = tree(tmp_path, "old", files)
    before = discover(old, settings)
    new = tree(tmp_path, "new", {**files, "apps/qa/podinfo.hr": files["apps/qa/podinfo.hr"] + NOTE})
    held, rebuilt = rediscover(before, old, new, settings)
    assert rebuilt == {"qa"}
    assert [a is b for a, b in zip(held.parts, before.parts)] == [True, False, True, True]
    assert held == discover(new, settings)


def outside(files: dict) -> dict:
    """The fleet with its HelmRepository in a folder no build reads: found anywhere in the repository."""
    files = {p: t.replace("  - repository.yaml\n", "") for p, t in files.items()}
    files["infra/repository.yaml"] = files.pop("apps/stag/repository.yaml")
    del files["apps/base/podinfo/repository.yaml"]
    return files


def test_a_source_found_anywhere_builds_again_the_environments_that_looked_for_it(tmp_path):
    files = outside(fleet("127.0.0.1:5000"))
    moved = files["infra/repository.yaml"].replace("127.0.0.1:5000", "127.0.0.1:5001")
    held, rebuilt, fresh = commit_of(tmp_path, files, {"infra/repository.yaml": moved})
    assert rebuilt == {"dev", "stag", "prod"}
    assert held == fresh
    assert {p.source.host for p in held.pins if p.part == "chart"} == {"127.0.0.1:5001"}
    # Another object added beside it, which no one looks for: nothing built again, its reads noted.
    other = files["infra/repository.yaml"].replace("name: charts", "name: others")
    held, rebuilt, fresh = commit_of(tmp_path, files, {"infra/others.yaml": other})
    assert rebuilt == set() and held == fresh and "infra/others.yaml" in held.read


def test_a_source_in_another_environment_builds_both_again(tmp_path):
    """stag's release finds its HelmRepository in dev's build: a change to dev's copy is stag's too;
    a dev-only commit that needs stag's build (its source there) builds stag again as well."""
    files = fleet("127.0.0.1:5000")
    files["apps/dev/kustomization.yml"] = "resources:\n  - ../base/podinfo\n  - charts.yaml\n"
    files["apps/dev/charts.yaml"] = files.pop("apps/stag/repository.yaml").replace("namespace: podinfo",
                                                                                  "namespace: stag")
    files["apps/stag/podinfo.hr"] = files["apps/stag/podinfo.hr"].replace("namespace: podinfo", "namespace: stag")
    files["apps/stag/kustomization.yaml"] = "resources:\n  - podinfo.hr\n"
    moved = files["apps/dev/charts.yaml"].replace("127.0.0.1:5000", "127.0.0.1:5001")
    held, rebuilt, fresh = commit_of(tmp_path, files, {"apps/dev/charts.yaml": moved})
    assert rebuilt == {"dev", "stag"}
    assert held == fresh
    assert [p.source.host for p in held.pins if p.environment == "stag" and p.part == "chart"] == ["127.0.0.1:5001"]


def test_a_running_core_after_a_colleagues_commit_holds_a_fresh_discovery(tmp_path, bare_remote, external_commit):
    """A real bare remote: a colleague's key in stag's release (not a version: not carried),
    then prod's resource list taking stag's release too (defined twice there), then a file added
    to prod's folder; after each the core's inventory is a fresh discovery's, and the core keeps
    one listing, the newest commit's, and the environments' parts only there."""
    files = fleet("127.0.0.1:5000")
    url = bare_remote(files)
    core = GitOps(parse_settings({**FLEET_SETTINGS, "repo": {"url": url, "branch": "main"},
                                  "data_dir": str(tmp_path / "data")}, environ={}), fetch_interval=0)
    try:
        core.inventory()
        for change in ({"apps/stag/podinfo.hr": files["apps/stag/podinfo.hr"] + NOTE},
                       {"apps/prod/Kustomization": files["apps/prod/Kustomization"].replace(
                           "../base/podinfo\n", "../base/podinfo\n  - ../stag/podinfo.hr\n")},
                       {"apps/prod/notes.yaml": "# prod's notes\n"}):
            external_commit(url, change)
            inventory = core.inventory()
            ws = next(iter(core.workspaces.values()))
            fresh = discover(ws.tree(remote_tip(url)), core.settings)
            assert (inventory.pins, inventory.others) == images.split(fresh.pins, core.settings)
            assert inventory.problems == fresh.problems
        # One listing kept, the newest commit's (a file added made another one), and what the
        # next commit builds on: the older commits keep their pins only.
        kept = {id(known.index) for known in core._pins._by_commit.values() if known.index is not None}
        assert len(kept) == 1 and len(core._pins._by_commit) == 4
        newest = core._pins._by_commit[next(reversed(core._pins._by_commit))]
        assert newest.read is not None and newest.parts and newest.index is not None
        assert all(known.read is None and known.parts == () and known.pins
                   for known in core._pins._by_commit.values() if known is not newest)
    finally:
        for ws in core.workspaces.values():
            ws.close()


def test_after_version_commits_the_inventory_moves_pin_by_pin_and_is_a_fresh_one(
        tmp_path, bare_remote, external_commit):
    """A real bare remote: a colleague's version commit, then two more fetched at once, then a
    comment (read alike), then a key that is not a version (stag's release file read again on its
    own), then a label for all of prod (built again, its pin the same to the fold), then a name
    prefix for prod. After each but the last the core's inventory holds the pins that did not move
    as the very objects it held (moved pin by pin: no sort, no split, no index over the fleet) and
    equals a fresh discovery's, its lookups included; after the last, made again, too."""
    files = fleet("127.0.0.1:5000")
    url = bare_remote(files)
    core = GitOps(parse_settings({**FLEET_SETTINGS, "repo": {"url": url, "branch": "main"},
                                  "data_dir": str(tmp_path / "data")}, environ={}), fetch_interval=0)
    stag, prod = "apps/stag/podinfo.hr", "apps/prod/version.json"
    try:
        before = core.inventory()
        before.find("podinfo", "dev")  # its lookups made, to be moved
        ws = next(iter(core.workspaces.values()))
        assert ws.tree(ws.head(refresh=False))._texts == {}  # parsed and kept by blob: texts let go
        for changes, moved in (([{stag: files[stag].replace('"6.5.2"', '"6.5.3"')}], {"stag"}),
                               ([{prod: files[prod].replace("6.5.1", "6.5.4")},
                                 {stag: files[stag].replace('"6.5.2"', '"6.5.5"')}], {"prod", "stag"}),
                               ([{stag: files[stag].replace('"6.5.2"', '"6.5.5"') + "# a comment\n"}], set()),
                               ([{stag: files[stag].replace('"6.5.2"', '"6.5.5"') + NOTE}], set()),
                               # prod built again, its pin the same to the fold: moved in place
                               ([{"apps/prod/Kustomization": files["apps/prod/Kustomization"].replace(
                                   "patches:", "commonLabels:\n  tier: web\npatches:")}], set()),
                               # prod's release named otherwise: the fold and the inventory made again
                               ([{"apps/prod/Kustomization": "namePrefix: x-\n" + files["apps/prod/Kustomization"]}],
                                None)):
            ws = next(iter(core.workspaces.values()))
            last = ws.head(refresh=False)
            for change in changes:
                external_commit(url, change)
            inventory = core.inventory()
            # Moved, its lookups came with it; built again, they are made on first use.
            assert ("_parts" in inventory.__dict__) == (moved is not None)
            # The new commit listed as what differs from the last one's listing, not listed whole.
            assert ws.tree(remote_tip(url)).diffed_from[0] == last
            fresh = discover(ws.tree(remote_tip(url)), core.settings)
            assert (inventory.pins, inventory.others) == images.split(fresh.pins, core.settings)
            assert inventory.problems == fresh.problems
            assert all(inventory.parts(p.app, p.environment) == [q for q in fresh.pins if
                                                                 (q.app, q.environment) == (p.app, p.environment)]
                       for p in fresh.pins)
            if moved is not None:
                assert [a is b for a, b in zip(inventory.pins, before.pins)] == \
                    [p.environment not in moved for p in inventory.pins]
            before = inventory
    finally:
        for ws in core.workspaces.values():
            ws.close()


def test_an_object_whose_kind_is_a_list_is_no_source_and_no_crash(tmp_path):
    """A manifest anywhere in the repository with `kind: [HelmRepository]`: the repository-wide
    table skips it (it used to raise), before and after a commit that changes it."""
    files = outside(fleet("127.0.0.1:5000"))
    files["infra/odd.yaml"] = "kind: [HelmRepository]\nmetadata:\n  name: charts\n  namespace: podinfo\n"
    held, rebuilt, fresh = commit_of(tmp_path, files, {"infra/odd.yaml": files["infra/odd.yaml"] + NOTE})
    assert rebuilt == set() and held == fresh
    assert {p.source.host for p in held.pins if p.part == "chart"} == {"127.0.0.1:5000"}
