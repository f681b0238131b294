"""Discovery: how long the inventory of every app × environment takes. Cold, as after a restart of
the bot (the first clone, then a new core on the existing clone with and without a fetch, the parse
cache empty); the same pins laid out behind ``clusters/<env>`` entries, cold and warm, against the
plain layout; warm, at the same commit and with a fetch that finds nothing new; right after a
colleague's commit discovery reads alike (a comment in one app's file: carried) and one it does
not (a label: its release read again on its own), and an app added to an environment's
kustomization then taken away (read on its own inside that build), a patch of one app added to
it then taken away (that release read again with it), and an app's folder listed there then taken
away (walked on its own, then let go of), and in the cluster-entry layout a patch added first to
an environment's Flux Kustomization then taken away, and a team added there (a Flux Kustomization
in its cluster folder) then taken away, against a whole discovery of
that commit with the parse cache warm (what the bot did before it built again only the
environment a commit touched).

Its first clone is the one every later core of the run reuses (``world.clone``).
"""
from __future__ import annotations

import gc
import shutil
import time

from devtools.fluxrepo import seed_remote
from devtools.fluxrepo import ENVIRONMENTS
from gitops.changes import carry
from gitops.core import GitOps
from gitops.flux import images, manifests
from gitops.settings import parse_settings

from bench.baselines import sync
from bench.clusters import cluster_fleet_files, cluster_fleet_settings
from bench.fleet import git
from bench.measure import CLUSTER_RATIO, COMMIT_MS, LISTING_MS, check, clock, fmt, median_ms, repeat, say, verdict
from bench.world import World, close_core, new_core, remote_tip


def measure(world: World) -> dict:
    fleet, runs, pins = world.fleet, world.runs, world.pins
    # -- cold: a new core, as after a restart of the bot (empty parse cache) ----
    say("first clone + inventory()")
    first, history = [], []
    for r in range(runs):
        data = world.tmp / f"data-{r}"
        manifests.DEFAULT_CACHE.clear()
        gc.collect()
        core = new_core(fleet, data, 5.0)
        started = time.perf_counter()
        t, inventory = clock(core.inventory)
        check(len(inventory.pins) == pins, f"first inventory found {len(inventory.pins)} pins, not {pins}")
        for ws in core.workspaces.values():  # the history the shallow first clone left out
            ws.whole_history()
        history.append(time.perf_counter() - started)
        close_core(core)
        first.append(t)
        if r < runs - 1:
            shutil.rmtree(data)
    world.clone = data

    say("cold inventory on an existing clone")
    cold_fetch, cold = [], []
    for _ in range(runs):
        for refresh, samples in ((True, cold_fetch), (False, cold)):
            manifests.DEFAULT_CACHE.clear()
            gc.collect()
            core = new_core(fleet, world.clone, 5.0)
            t, inventory = clock(core.inventory, refresh=refresh)
            check(len(inventory.pins) == pins, "cold inventory lost pins")
            close_core(core)
            samples.append(t)

    say("cold and warm inventory, cluster-entry layout")
    cluster_cold, cluster_warm, cluster_colleague = cluster_inventory(world)

    # -- warm ------------------------------------------------------------------------------------
    say("warm inventory")
    core = new_core(fleet, world.clone, 0)  # fetch_interval=0: inventory() always fetches
    core.inventory()
    warm = repeat(lambda: core.inventory(refresh=False), world.fast)
    warm_fetch = repeat(core.inventory, world.mid)
    say("inventory after a colleague's commit that is not a version")
    colleague = colleague_commits(world, core)
    close_core(core)
    return {"first": first, "history": history, "cold fetch": cold_fetch, "cold": cold,
            "cluster cold": cluster_cold, "cluster warm": cluster_warm, "cluster colleague": cluster_colleague,
            "warm": warm,
            "warm fetch": warm_fetch, "colleague": colleague}


def colleague_commits(world: World, core: GitOps) -> dict:
    """``inventory()`` (fetch included) right after each of a colleague's commits to one app's file
    in one environment, in turn: a comment (read alike: carried) and a label on its release (not a
    version: the file read again on its own, ``release_files``); and a whole discovery of the same commit (parse cache
    warm, fleet-wide), the way the bot found it before, for the first few of each."""
    fleet = world.fleet
    clone = world.tmp / "colleague"
    git("clone", "-q", "--branch", "main", fleet.url, str(clone))
    ws = next(iter(core.workspaces.values()))
    found: dict = {"comment": [], "label": [], "whole discovery": [], "fetch": []}
    for r in range(2 * world.mid):
        kind = ("comment", "label")[r % 2]
        app, env = fleet.apps[1 + r % (len(fleet.apps) - 1)][0], ENVIRONMENTS[r % len(ENVIRONMENTS)]
        sync(clone)
        path = clone / fleet.pin_file(app, env, fleet.pins[(app, env)])[0]
        text = path.read_text(encoding="utf-8")
        if kind == "comment":
            text += f"# a note {r}\n"
        else:  # a label in the release's metadata: the last `namespace:` of the file is the release's
            head, namespace, tail = text.rpartition(f"  namespace: {app}\n")
            text = head + namespace + f"  labels:\n    note: n{r}\n" + tail
        path.write_text(text, encoding="utf-8")
        git("commit", "-q", "-a", "-m", f"a {kind} on {app} in {env}", cwd=clone)
        git("push", "-q", "origin", "HEAD:main", cwd=clone)
        found["fetch"].append(clock(ws.head)[0])  # git's part, timed apart: the fetch
        t, inventory = clock(core.inventory, refresh=False)
        check(len(inventory.pins) == world.pins, f"after a colleague's commit: {len(inventory.pins)} pins")
        found[kind].append(t)
        if r < 2 * world.runs:
            tree = ws.tree(remote_tip(fleet))
            t, known = clock(carry.discover, tree, core.settings, None, core._pins.documents)
            check(images.split(known.pins, core.settings) == (inventory.pins, inventory.others),
                  "after a colleague's commit the bot holds other pins than a whole discovery finds")
            found["whole discovery"].append(t)
    found.update(apps_added(world, core, clone, ws))
    found.update(patches_added(world, core, clone, ws))
    found.update(folders_added(world, core, clone, ws))
    return found


def apps_added(world: World, core: GitOps, clone, ws) -> dict:
    """``inventory()`` right after a colleague adds an app to one environment (a copy of another
    app's file, its source beside its release, listed first in the environment's kustomization),
    then right after they take it away again (``resource_lists``)."""
    fleet = world.fleet
    found: dict = {"app added": [], "app taken away": []}
    layouts = [a for a in fleet.apps if a[1] in ("helmrelease", "ocirepository")]
    for r in range(world.mid):
        app, env = layouts[r % len(layouts)][0], ENVIRONMENTS[r % len(ENVIRONMENTS)]
        sync(clone)
        kustomization = clone / f"apps/{env}/kustomization.yaml"
        listing = kustomization.read_text(encoding="utf-8")
        added = f"added-{r}"
        text = (clone / fleet.pin_file(app, env, fleet.pins[(app, env)])[0]).read_text(encoding="utf-8")
        (clone / f"apps/{env}/{added}.yaml").write_text(text.replace(app, added), encoding="utf-8")
        kustomization.write_text(listing.replace("resources:\n", f"resources:\n  - {added}.yaml\n", 1),
                                 encoding="utf-8")
        for kind, pins in (("app added", world.pins + 1), ("app taken away", world.pins)):
            found[kind].append(_pushed(core, clone, ws, f"{kind}: {added} in {env}", pins))
            if kind == "app added":  # then taken away: the file and its line
                (clone / f"apps/{env}/{added}.yaml").unlink()
                kustomization.write_text(listing, encoding="utf-8")
    return found


def patches_added(world: World, core: GitOps, clone, ws) -> dict:
    """``inventory()`` right after a colleague adds a patch of one app's release (its replicas)
    first in an environment's kustomization, then right after they take it away (``patch_lists``)."""
    fleet = world.fleet
    found: dict = {"patch added": [], "patch taken away": []}
    for r in range(world.mid):
        app, env = fleet.apps[1 + r % (len(fleet.apps) - 1)][0], ENVIRONMENTS[r % len(ENVIRONMENTS)]
        sync(clone)
        kustomization = clone / f"apps/{env}/kustomization.yaml"
        listing = kustomization.read_text(encoding="utf-8")
        entry = (f"  - target:\n      kind: HelmRelease\n      name: {app}\n    patch: |\n      - op: add\n"
                 f"        path: /spec/values/replicaCount\n        value: {r + 2}\n")
        patched = listing.replace("patches:\n", "patches:\n" + entry, 1) if "patches:\n" in listing \
            else listing + "patches:\n" + entry
        for kind, text in (("patch added", patched), ("patch taken away", listing)):
            kustomization.write_text(text, encoding="utf-8")
            found[kind].append(_pushed(core, clone, ws, f"{kind}: {app} in {env}", world.pins))
    return found


def folders_added(world: World, core: GitOps, clone, ws) -> dict:
    """``inventory()`` right after a colleague adds an app as a folder of its own (a copy of an
    app's base: kustomization, namespace, source, release) listed in an environment's
    kustomization (``folder_entries``), then right after they take it away and delete it (its
    walk let go of on its own)."""
    fleet = world.fleet
    found: dict = {"folder added": [], "folder taken away": []}
    bases = [a[0] for a in fleet.apps if a[1] == "patch"]
    for r in range(world.mid if bases else 0):
        app, env = bases[r % len(bases)], ENVIRONMENTS[r % len(ENVIRONMENTS)]
        sync(clone)
        kustomization = clone / f"apps/{env}/kustomization.yaml"
        listing = kustomization.read_text(encoding="utf-8")
        added = clone / f"apps/base/folder-{r}"
        shutil.copytree(clone / f"apps/base/{app}", added)
        for path in added.iterdir():
            path.write_text(path.read_text(encoding="utf-8").replace(app, f"folder-{r}"), encoding="utf-8")
        kustomization.write_text(listing.replace("resources:\n", f"resources:\n  - ../base/folder-{r}\n", 1),
                                 encoding="utf-8")
        for kind, pins in (("folder added", world.pins + 1), ("folder taken away", world.pins)):
            found[kind].append(_pushed(core, clone, ws, f"{kind}: folder-{r} in {env}", pins))
            if kind == "folder added":
                shutil.rmtree(added)
                kustomization.write_text(listing, encoding="utf-8")
    return found


def _pushed(core: GitOps, clone, ws, message: str, pins: int) -> float:
    """The time of ``inventory()`` right after the clone's changes are committed, pushed and
    fetched (git's part not timed), checked to hold ``pins`` pins."""
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", message, cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)
    ws.head()
    t, inventory = clock(core.inventory, refresh=False)
    check(len(inventory.pins) == pins, f"{message}: {len(inventory.pins)} pins, not {pins}")
    return t


def cluster_inventory(world: World) -> tuple[list, list, dict]:
    """Cold and warm inventories of the fleet's pins laid out behind `clusters/<env>` entries, and
    right after a colleague's commits to its Flux Kustomizations (``flux_patches_added``)."""
    fleet, tmp = world.fleet, world.tmp
    files = cluster_fleet_files(fleet.registry, fleet.apps, fleet.pins)
    url = seed_remote(tmp / "clusters.git", files)
    raw = cluster_fleet_settings(url)
    raw["data_dir"] = str(tmp / "clusters-data")
    cold = []
    first = GitOps(parse_settings(raw, environ={}))
    first.inventory()  # the clone every run below reuses
    close_core(first)
    for _ in range(world.runs):
        manifests.DEFAULT_CACHE.clear()
        gc.collect()
        core = GitOps(parse_settings(raw, environ={}), fetch_interval=3600)  # as after a restart
        t, inventory = clock(core.inventory, refresh=False)
        check(len(inventory.pins) == world.pins and not inventory.problems,
              f"cluster layout: {len(inventory.pins)} pins, problems {inventory.problems[:2]}")
        check(all(p.location is not None for p in inventory.pins), "cluster layout: a pin without its line")
        cold.append(t)
        if len(cold) < world.runs:
            close_core(core)
    warm = repeat(lambda: core.inventory(refresh=False), world.fast)
    flux = flux_patches_added(world, core, url)
    close_core(core)
    return cold, warm, flux


def flux_patches_added(world: World, core: GitOps, url: str) -> dict:
    """Cluster-entry layout: ``inventory()`` right after a colleague adds a patch of one app's
    release first in an environment's Flux Kustomization (`spec.patches` of
    `clusters/<env>/apps.yaml`, before the third of the fleet it patches already), then right
    after they take it away (``flux_patches``); a whole discovery of the same commit (parse cache
    warm) for the first few. Then a team added to that environment's cluster folder (a Flux
    Kustomization and the folder of one release it applies), moved to another folder, and taken
    away (``unit_lists``)."""
    clone = world.tmp / "cluster-colleague"
    git("clone", "-q", "--branch", "main", url, str(clone))
    ws = next(iter(core.workspaces.values()))
    ws.fetch_interval = 0  # the core was made as after a restart: each commit fetched here
    found: dict = {"flux patch added": [], "flux patch taken away": [], "whole discovery": [], "team added": [],
                   "team moved": [], "team taken away": []}
    for r in range(world.mid):
        app, env = world.fleet.apps[r % len(world.fleet.apps)][0], ENVIRONMENTS[r % len(ENVIRONMENTS)]
        sync(clone)
        entry = (f"    - target:\n        kind: HelmRelease\n        name: {app}\n      patch: |\n"
                 f"        - op: add\n          path: /spec/values/replicaCount\n          value: {r + 2}\n")
        path = clone / f"clusters/{env}/apps.yaml"
        text = path.read_text(encoding="utf-8")
        for kind, written in (("flux patch added", text.replace("  patches:\n", "  patches:\n" + entry, 1)),
                              ("flux patch taken away", text)):
            path.write_text(written, encoding="utf-8")
            found[kind].append(_pushed(core, clone, ws, f"{kind}: {app} in {env}", world.pins))
            if kind == "flux patch added" and r < world.runs:
                tree = ws.tree(git("rev-parse", "HEAD", cwd=clone))
                found["whole discovery"].append(clock(carry.discover, tree, core.settings, None,
                                                      core._pins.documents)[0])
        entry, folder = f"clusters/{env}/team-{r}.yaml", f"teams/{env}/team-{r}"
        web = TEAM_RELEASE.format(r=r, chart=world.fleet.apps[0][2])
        steps = (("team added", world.pins + 1, {entry: TEAM.format(r=r, path=folder), f"{folder}/web.yaml": web}),
                 ("team moved", world.pins + 1, {entry: TEAM.format(r=r, path=f"{folder}-moved"),
                                                 f"{folder}/web.yaml": None, f"{folder}-moved/web.yaml": web}),
                 ("team taken away", world.pins, {entry: None, f"{folder}-moved/web.yaml": None}))
        for kind, pins, files in steps:
            for name, text in files.items():
                if text is None:
                    (clone / name).unlink()
                else:
                    (clone / name).parent.mkdir(parents=True, exist_ok=True)
                    (clone / name).write_text(text, encoding="utf-8")
            found[kind].append(_pushed(core, clone, ws, f"{kind}: team-{r} in {env}", pins))
    return found


# A team's Flux Kustomization in a cluster folder, and its one release (its chart from the
# environment's own HelmRepository, in the namespace the `apps` Kustomization gives it).
TEAM = ("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: team-{r}\n"
        "  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./{path}\n  prune: true\n"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n")
TEAM_RELEASE = ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: team-{r}-web\n"
                "  namespace: apps\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: {chart}\n"
                "      version: \"1.0.0\"\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n")


def _against(whole: float, t: float) -> str:
    """The baseline cell of a row read on its own: a whole discovery of the same commit, and the ratio."""
    return f"whole discovery, parse cache warm: {fmt(whole)} → {t / whole:.2f}×"


def rows(world: World) -> list:
    found, runs, apps = world.results["inventory"], world.runs, world.args.apps
    cold, cluster_cold = median_ms(found["cold"]), median_ms(found["cluster cold"])
    warm, warm_fetch, cluster_warm = (median_ms(found[k]) for k in ("warm", "warm fetch", "cluster warm"))
    colleague = found["colleague"]
    comment, label = median_ms(colleague["comment"]), median_ms(colleague["label"])
    added, taken = median_ms(colleague["app added"]), median_ms(colleague["app taken away"])
    patched, unpatched = median_ms(colleague["patch added"]), median_ms(colleague["patch taken away"])
    folder, unfolder = median_ms(colleague["folder added"]), median_ms(colleague["folder taken away"])
    whole, fetch = median_ms(colleague["whole discovery"]), median_ms(colleague["fetch"])
    flux = found["cluster colleague"]
    flux_added, flux_taken = median_ms(flux["flux patch added"]), median_ms(flux["flux patch taken away"])
    flux_whole = median_ms(flux["whole discovery"])
    team_added, team_taken = median_ms(flux["team added"]), median_ms(flux["team taken away"])
    team_moved = median_ms(flux["team moved"])
    full_clone = median_ms(world.results["deploys"]["clone per command"])
    return [
        (f"First clone (the tip only) + first `inventory()` ({world.pins:,} pins; n={runs})",
         fmt(median_ms(found["first"])), "—", f"full `git clone` per command: {fmt(full_clone)}"),
        (f"… the whole history there too (cloned in the background from the start, commit-graph "
         f"written; n={runs})", fmt(median_ms(found["history"])), "—",
         f"full `git clone` per command: {fmt(full_clone)}"),
        (f"Cold `inventory()`: new core on an existing clone, fetch + parse all (n={runs})",
         fmt(median_ms(found["cold fetch"])), "—", "—"),
        (f"Cold `inventory(refresh=False)`: same, no fetch (n={runs})", fmt(cold), "—", "—"),
        (f"Cold `inventory(refresh=False)`, the same pins behind cluster entries: Flux Kustomizations "
         f"with {apps // 3:,} patches and {apps // 3:,} ConfigMap variables per environment (n={runs})",
         fmt(cluster_cold), f"≤ {CLUSTER_RATIO:g}× plain: {verdict(cluster_cold, CLUSTER_RATIO * cold)}",
         f"plain layout {fmt(cold)} → {cluster_cold / cold:.2f}×"),
        (f"Warm `inventory(refresh=False)`, cluster-entry layout (n={world.fast})", fmt(cluster_warm),
         f"< {LISTING_MS:g} ms: {verdict(cluster_warm, LISTING_MS)}", "—"),
        (f"Warm `inventory(refresh=False)`, same commit (n={world.fast})", fmt(warm),
         f"< {LISTING_MS:g} ms: {verdict(warm, LISTING_MS)}", "—"),
        (f"Warm `inventory()` + fetch that finds nothing new (n={world.mid})", fmt(warm_fetch),
         f"< {LISTING_MS:g} ms: {verdict(warm_fetch, LISTING_MS)}", "—"),
        (f"`inventory()` right after a colleague's commit discovery reads alike (a comment in one "
         f"app's file), once fetched: `diff-tree`, carried as it was (n={len(colleague['comment'])})",
         fmt(comment), f"≤ {COMMIT_MS:g} ms: {verdict(comment, COMMIT_MS)}",
         f"whole discovery of such a commit, parse cache warm: {fmt(whole)} → {comment / whole:.3f}×; "
         f"the fetch before it (git's): {fmt(fetch)}"),
        (f"`inventory()` right after a colleague's commit that is not a version (a label on one app's "
         f"release), once fetched: the file read again on its own "
         f"(n={len(colleague['label'])})", fmt(label), f"≤ {COMMIT_MS:g} ms: {verdict(label, COMMIT_MS)}",
         _against(whole, label)),
        (f"`inventory()` right after a colleague adds an app (its file, source and release, listed in an "
         f"environment's kustomization of {apps:,}), once fetched: read on its own inside that build "
         f"(n={len(colleague['app added'])})", fmt(added), "—",
         _against(whole, added)),
        (f"… and right after they take it away again (n={len(colleague['app taken away'])})", fmt(taken), "—",
         _against(whole, taken)),
        (f"`inventory()` right after a colleague adds a patch of one app's release to an environment's "
         f"kustomization, once fetched: the release read again with it inside that build "
         f"(n={len(colleague['patch added'])})", fmt(patched), "—",
         _against(whole, patched)),
        (f"… and right after they take the patch away (n={len(colleague['patch taken away'])})", fmt(unpatched), "—",
         _against(whole, unpatched)),
        (f"`inventory()` right after a colleague adds an app as a folder of its own (kustomization, "
         f"namespace, source, release) listed in an environment's kustomization, once fetched: walked "
         f"on its own inside that build (n={len(colleague['folder added'])})", fmt(folder), "—",
         _against(whole, folder)),
        (f"… and right after they take that folder away and delete it: let go of on its own "
         f"(n={len(colleague['folder taken away'])})", fmt(unfolder), "—",
         _against(whole, unfolder)),
        (f"Cluster-entry layout: `inventory()` right after a colleague adds a patch of one app's release "
         f"first in an environment's Flux Kustomization (`spec.patches`, before its {apps // 3:,}), once "
         f"fetched: that release read again, the others' lines moved (n={len(flux['flux patch added'])})",
         fmt(flux_added), "—", _against(flux_whole, flux_added)),
        (f"… and right after they take it away (n={len(flux['flux patch taken away'])})", fmt(flux_taken), "—",
         _against(flux_whole, flux_taken)),
        (f"Cluster-entry layout: `inventory()` right after a colleague adds a team (a Flux Kustomization in "
         f"an environment's cluster folder applying a new folder with one release), once fetched: its unit "
         f"built on its own (n={len(flux['team added'])})", fmt(team_added), "—",
         _against(flux_whole, team_added)),
        (f"… right after they move it to another folder, its file with it: its unit let go and followed "
         f"again (n={len(flux['team moved'])})", fmt(team_moved), "—",
         _against(flux_whole, team_moved)),
        (f"… and right after they take it away, folder and all (n={len(flux['team taken away'])})",
         fmt(team_taken), "—",
         _against(flux_whole, team_taken)),
    ]
