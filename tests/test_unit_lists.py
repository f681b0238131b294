"""A Flux Kustomization added to an environment (`clusters/qa/team.yaml` applying a new folder of
apps): its unit built on its own, its releases read as more of the environment's
(``flux.unit_lists``). What the bot then holds equals a fresh discovery, and each case the proof
cannot cover is refused (the environment is built again, and that equals a fresh discovery too).
Written for Ferry's tests (no outside source)."""
from __future__ import annotations

from gitops.changes.carry import refollow, reunit
from gitops.settings import parse_settings
from tests import following
from tests.carry_layouts import kustomization as kustomize, release, repository
from tests.test_flux_patches import flux_fleet
from tests.test_refold import ENVIRONMENTS


def kustomization(name: str = "team", path: str = "./teams/qa", extra: str = "", source: str = "flux-system") -> str:
    """A Flux Kustomization of qa's cluster entry applying ``path``."""
    return (f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  path: {path}\n  prune: true\n"
            f"  sourceRef:\n    kind: GitRepository\n    name: {source}\n{extra}")


def team(files: dict, entry: str = "clusters/qa/team.yaml", text: str = "", apps=("web",), folder="teams/qa",
         sources: bool = True) -> dict:
    """``files`` with a Flux Kustomization at ``entry`` and the folder of ``apps`` it applies."""
    after = {**files, entry: text or kustomization()}
    for app in apps:
        after[f"{folder}/{app}.yaml"] = release(app, "7.0.0", "string", False)
        if sources:
            after[f"{folder}/{app}-repository.yaml"] = repository(app)
    return after


# qa's own `web` (its source one of qa's apps'), beside the team's
OTHER_WEB = release("web", "6.5.0", "", False).replace("        name: charts\n",
                                                       "        name: charts\n        namespace: app0\n")
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"


def cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: flux-system\ndata:\n  A: b\n"


def substituted(name: str) -> str:
    return f"  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: {name}\n"


def followed(before: dict, after: dict, config):
    """What ``reunit`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(reunit, before, after, config)


def qa(held, app: str):
    return next(p for p in held.pins if (p.environment, p.app, p.part) == ("qa", app, "chart"))


def test_a_kustomization_added_builds_its_unit_and_reads_only_its_releases():
    files, config = flux_fleet()
    held = followed(files, team(files), config)
    assert held is not None
    _, _, (gone, anew) = held.carried_from
    assert {p.app for p in anew} == {"web"} and not gone  # the team's pins, not the fleet's
    assert (qa(held, "web").version, qa(held, "web").location.file) == ("7.0.0", "teams/qa/web.yaml")


def test_it_takes_its_place_among_the_units_its_parent_made():
    """Breadth first, in the parent's order: `a-team.yaml` comes before `apps.yaml`."""
    files, config = flux_fleet()
    held = followed(files, team(files, "clusters/qa/a-team.yaml"), config)
    assert held is not None
    units = held.parts[1].release_files.units
    assert [u.kustomization.name for u in units] == ["flux-system", "team", "apps"]


def test_its_releases_and_its_variables_read_as_a_build_reads_them():
    """It substitutes from the cluster's ConfigMap; two apps, one finding the other's source."""
    files, config = flux_fleet(variables={"WEB": "7.3.0"})
    files["clusters/qa/apps.yaml"] = files["clusters/qa/apps.yaml"].replace(
        "    substitute:\n      WEB: \"7.3.0\"\n",
        "    substituteFrom:\n      - kind: ConfigMap\n        name: versions\n")
    files["clusters/qa/versions.yaml"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\n"
                                          "  namespace: flux-system\ndata:\n  WEB: 7.3.0\n")
    post = "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: versions\n"
    after = team(files, text=kustomization(extra=post), apps=("web", "api"))
    after["teams/qa/web.yaml"] = after["teams/qa/web.yaml"].replace('"7.0.0"', '"${WEB}"')
    held = followed(files, after, config)
    assert held is not None
    assert (qa(held, "web").version, qa(held, "web").location.file) == ("7.3.0", "clusters/qa/versions.yaml")


def test_what_it_cannot_prove_is_built_again():
    files, config = flux_fleet()
    taken = "  path: ./apps/qa\n"
    refused = {
        "a name the builds met": team(files, text=kustomization(name="apps")),
        "a path a unit applies": team(files, text=kustomization(path="./apps/qa")),
        "a source not in the repository": team(files, text=kustomization(source="elsewhere")),
        "a variable in its file": team(files, text=kustomization(extra="  targetNamespace: ${NS}\n")),
        "a name another release has": team(files, apps=("app1",)),
        "no release": {**files, "clusters/qa/team.yaml": kustomization(path="./teams/none"),
                       "teams/none/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: none\n"},
        "a folder the environment reads": {**files, "clusters/qa/team.yaml": kustomization(path="./apps/dev")},
        "a Kustomization of its own": team(files, text=kustomization(), apps=("web",)) | {
            "teams/qa/more.yaml": kustomization(name="more", path="./teams/more")},
        "a ConfigMap of its own": team(files) | {
            "teams/qa/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: web\n"},
        "in a folder with a kustomization": team(files, "apps/qa/team.yaml"),
        "two at once": team(team(files), "clusters/qa/other.yaml", kustomization(name="other", path="./teams/o"),
                            apps=("api",), folder="teams/o"),
        "more for its parent to read": team(files) | {"clusters/qa/web.yaml": release("web2", "7.0.0", "", False)},
        "a problem in its build": team(files) | {
            "teams/qa/kustomization.yaml": kustomize(["web.yaml", "web-repository.yaml", "gone.yaml"])},
        "kustomize images": team(files) | {"teams/qa/kustomization.yaml": kustomize(
            ["web.yaml", "web-repository.yaml"], "images:\n  - name: ghcr.io/acme/web\n    newTag: 2.0.0\n")},
        "variables of another unit's ConfigMap": team(files, text=kustomization(extra=(
            "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: team\n"))),
    }
    assert taken not in refused["a name the builds met"]
    files["apps/qa/team.yaml"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team\n"
                                  "  namespace: flux-system\ndata:\n  WEB: 7.3.0\n")
    files["apps/qa/kustomization.yaml"] += "  - team.yaml\n"
    for why, after in refused.items():
        after = {**after, "apps/qa/team.yaml": files["apps/qa/team.yaml"],
                 "apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"]}
        assert followed(files, after, config) is None, why


def test_another_unit_walking_the_folder_too_is_refused():
    """qa's apps kustomization lists the cluster's folder: two units read the file added."""
    files, config = flux_fleet()
    files["apps/qa/kustomization.yaml"] += "  - ../../clusters/qa\n"
    assert followed(files, team(files), config) is None


def test_variables_it_references_go_last_only():
    """Its references to the cluster's variables join the environment's at its units' place: only
    a unit coming last is followed on its own."""
    files, config = flux_fleet(variables={"WEB": "7.3.0"})
    post = "  postBuild:\n    substitute:\n      WEB: \"7.4.0\"\n"
    after = team(files, "clusters/qa/a-team.yaml", kustomization(extra=post))
    after["teams/qa/web.yaml"] = after["teams/qa/web.yaml"].replace("replicaCount: 1", "replicaCount: ${WEB}")
    assert followed(files, after, config) is None
    after["clusters/qa/team.yaml"] = after.pop("clusters/qa/a-team.yaml")
    assert followed(files, after, config) is not None


def test_a_file_it_reads_as_its_release_and_as_a_patch_is_refused():
    """Its kustomization patches its release with the release's own file: what the builds keep of
    a release file (read again on its own after an edit) would not hold for it."""
    files, config = flux_fleet()
    after = team(files) | {"teams/qa/kustomization.yaml": kustomize(["web.yaml", "web-repository.yaml"],
                                                                     "  - path: web.yaml\n")}
    assert followed(files, after, config) is None


def test_an_environment_whose_paths_are_globbed_is_built_again():
    """A glob may match the file added: the environment's paths move."""
    files, config = flux_fleet()
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": [f"clusters/{e}", f"clusters/{e}/t*.yaml"]}
                                              for e in ENVIRONMENTS]}, environ={})
    assert followed(files, team(files), config) is None


def test_a_path_another_build_looked_for_is_refused():
    """qa's apps kustomization lists the team's release before it exists (a problem then)."""
    files, config = flux_fleet()
    files["apps/qa/kustomization.yaml"] += "  - ../../teams/qa/web.yaml\n"
    assert followed(files, team(files), config) is None


def test_a_folder_another_unit_walks_gaining_files_is_refused():
    """qa's second path walks `infra/qa` folder by folder: the team's folder under it is read there too."""
    files, config = flux_fleet()
    files["infra/qa/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra\n"
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": [f"clusters/{e}", f"infra/{e}"]}
                                              for e in ENVIRONMENTS]}, environ={})
    after = team(files, text=kustomization(path="./infra/qa/team"), folder="infra/qa/team")
    assert followed(files, after, config) is None


def test_an_object_another_environment_looked_for_is_refused():
    """qa's `solo` looked for its source across the repository and found none; the commit adds one
    beside the team."""
    files, config = flux_fleet()
    files["apps/qa/solo.yaml"] = release("solo", "6.5.0", "", False)
    files["apps/qa/kustomization.yaml"] += "  - solo.yaml\n"
    after = team(files) | {"infra/solo/repository.yaml": repository("solo")}
    assert followed(files, after, config) is None


def test_a_parent_that_made_no_unit_gives_the_new_one_no_place():
    """prod applies qa's cluster folder too (a second path): there its Kustomizations' names are
    prod's own, followed already, so the walk of that folder made no unit to place the team by."""
    files, config = flux_fleet()
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": [f"clusters/{e}"] + ["clusters/qa"] * (e == "prod")}
                                              for e in ENVIRONMENTS]}, environ={})
    assert followed(files, team(files), config) is None


# ---- taken away ---------------------------------------------------------------------------------

def test_a_kustomization_taken_away_lets_go_of_its_unit_and_its_releases():
    files, config = flux_fleet()
    before = team(files, apps=("web", "api"))
    held = followed(before, files, config)
    assert held is not None
    _, _, (gone, anew) = held.carried_from
    assert {p.app for p in gone} == {"web", "api"} and not anew
    # its folder left in the repository: no longer read
    kept = {**before}
    del kept["clusters/qa/team.yaml"]
    assert followed(before, kept, config) is not None
    # a folder with its own kustomization
    before["teams/qa/kustomization.yaml"] = kustomize(["web.yaml", "web-repository.yaml", "api.yaml",
                                                       "api-repository.yaml"])
    assert followed(before, files, config) is not None


def test_one_taken_away_first_moves_the_units_after_it_back():
    files, config = flux_fleet()
    before = team(files, "clusters/qa/a-team.yaml")
    held = followed(before, files, config)
    assert held is not None
    assert [u.kustomization.name for u in held.parts[1].release_files.units] == ["flux-system", "apps"]


def test_what_taking_it_away_cannot_prove_is_built_again():
    files, config = flux_fleet()
    post = "  postBuild:\n    substitute:\n      WEB: \"7.4.0\"\n"
    git = ("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: teams\n"
           "  namespace: flux-system\nspec:\n  url: file:///fleet.git\n  ref:\n    branch: main\n")
    extra = release("extra", "6.5.0", "", False).replace("  namespace: extra\n", "  namespace: web\n")
    refused = {
        "a release of another unit finds its source": (
            team(files) | {"apps/qa/extra.yaml": extra},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - extra.yaml\n"}),
        "its references, not last": (
            team(files, "clusters/qa/a-team.yaml", kustomization(extra=post)) | {
                "teams/qa/web.yaml": release("web", "${WEB}", "string", False)}, {}),
        "another Kustomization of its name, followed then": (
            team(files) | {"clusters/qa/zz.yaml": kustomization(path="./teams/zz")}, {}),
        "a file of its folder another unit reads": (
            team(files) | {"teams/qa/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - ../../teams/qa/ns.yaml\n"}),
        "a source it looked up across the repository": (
            team(files, text=kustomization(source="teams")) | {"infra/git.yaml": git}, {}),
        "its Kustomization listed by another unit too": (
            team(files), {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] +
                          "  - ../../clusters/qa/team.yaml\n"}),
        "a file outside its folder that another unit reads too": (
            team(files) | {"apps/qa/ns.yaml": NAMESPACE, "teams/qa/kustomization.yaml": kustomize(
                ["web.yaml", "web-repository.yaml", "../../apps/qa/ns.yaml"])},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - ns.yaml\n"}),
        "a ConfigMap a unit after it substitutes from": (
            team(team(files) | {"teams/qa/cm.yaml": cm("team-vars")}, "clusters/qa/zz-team.yaml",
                 kustomization(name="zz", path="./teams/zz", extra=substituted("team-vars")), ("api",),
                 "teams/zz"), {}),
        "a source another of its environment's has too": (
            team(files, "clusters/qa/a-team.yaml") | {"apps/qa/web-repository.yaml": repository("web")},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - web-repository.yaml\n"}),
        "a source another environment found in its builds": (
            team(files) | {"apps/dev/webdev.yaml": release("webdev", "6.5.0", "", False).replace(
                "  namespace: webdev\n", "  namespace: web\n")},
            {"apps/dev/kustomization.yaml": files["apps/dev/kustomization.yaml"] + "  - webdev.yaml\n"}),
        "a release of its that found its source across the repository": (
            team(files, apps=("solo",), sources=False) | {"infra/solo/repository.yaml": repository("solo")}, {}),
        "a release of its name it kept over another's": (
            team(files, "clusters/qa/a-team.yaml") | {"apps/qa/web.yaml": OTHER_WEB},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - web.yaml\n"}),
        "a release of its name another kept over it": (
            team(files) | {"apps/qa/web.yaml": OTHER_WEB},
            {"apps/qa/kustomization.yaml": files["apps/qa/kustomization.yaml"] + "  - web.yaml\n"}),
    }
    for why, (before, changed) in refused.items():
        before = {**before, **changed}
        for gone in (("clusters/qa/team.yaml", "clusters/qa/a-team.yaml"), ("clusters/qa/team.yaml",
                                                                          "clusters/qa/a-team.yaml", "teams/qa/")):
            after = {path: text for path, text in before.items() if not path.startswith(gone)}
            assert followed(before, after, config) is None, (why, gone)


def test_a_file_another_unit_reads_taken_away_with_it_is_refused():
    """A patch file of qa's apps, outside any folder qa looked into, goes in the same commit."""
    files, config = flux_fleet()
    files["common/replicas.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n"
    files["apps/qa/kustomization.yaml"] += ("patches:\n  - path: ../../common/replicas.yaml\n    target:\n"
                                            "      kind: HelmRelease\n      name: app1\n")
    before = team(files)
    after = {path: text for path, text in before.items()
             if path not in ("clusters/qa/team.yaml", "common/replicas.yaml")}
    assert followed(before, after, config) is None


def test_a_folder_another_unit_names_left_empty_is_refused():
    """qa's apps kustomization lists a folder holding no manifest: taken away with the team, it is a
    resource that does not exist."""
    files, config = flux_fleet()
    files["docs-only/README.md"] = "# notes\n"
    files["apps/qa/kustomization.yaml"] += "  - ../../docs-only\n"
    before = team(files)
    after = {path: text for path, text in before.items()
             if path not in ("clusters/qa/team.yaml", "docs-only/README.md")}
    assert followed(before, after, config) is None


def test_a_patch_file_of_another_unit_in_its_folder_is_refused():
    """qa's apps patch app1 with a file in the team's folder, which the team's walk reads too."""
    files, config = flux_fleet()
    files["apps/qa/kustomization.yaml"] += ("patches:\n  - path: ../../teams/qa/replicas.yaml\n    target:\n"
                                            "      kind: HelmRelease\n      name: app1\n")
    files["teams/qa/replicas.yaml"] = "- op: replace\n  path: /spec/values/replicaCount\n  value: 2\n"
    before = team(files)
    after = {path: text for path, text in before.items() if path != "clusters/qa/team.yaml"}
    assert followed(before, after, config) is None


# ---- listed in a kustomization -----------------------------------------------------------------

def listing(files: dict, *more: str) -> dict:
    """``files`` with qa's cluster folder built by its own kustomization, listing ``more`` too."""
    entries = ["flux-system/gotk-sync.yaml", "apps.yaml", *more]
    return {**files, "clusters/qa/kustomization.yaml": kustomize(entries)}


def test_a_kustomization_listed_anew_builds_its_unit_on_its_own():
    files, config = flux_fleet()
    before = listing(files)
    first = {**team(files), "clusters/qa/kustomization.yaml": kustomize(
        ["flux-system/gotk-sync.yaml", "team.yaml", "apps.yaml"])}
    for after, units in ((listing(team(files), "team.yaml"), ["flux-system", "apps", "team"]),  # added and listed
                         (first, ["flux-system", "team", "apps"])):  # listed before `apps.yaml`
        held = followed(before, after, config)
        assert held is not None and qa(held, "web").location.file == "teams/qa/web.yaml"
        assert [u.kustomization.name for u in held.parts[1].release_files.units] == units
    # there already, unread: listed now
    assert followed(listing(team(files)), listing(team(files), "team.yaml"), config) is not None
    # listed no more, deleted or left there
    assert followed(listing(team(files), "team.yaml"), before, config) is not None
    assert followed(listing(team(files), "team.yaml"), listing(team(files)), config) is not None


def test_listed_with_more_changes_is_built_again():
    files, config = flux_fleet()
    before = listing(files)
    there = listing(team(files)) | {"clusters/qa/more.yaml": kustomization("more", path="./apps/dev")}
    for before, after in (
            (before, listing(team(files), "team.yaml", "more.yaml") | {"clusters/qa/more.yaml": kustomization("more")}),
            (before, listing(team(files, "clusters/qa/sub/team.yaml"), "sub/team.yaml")),
            (there, there | listing(files, "more.yaml", "team.yaml")),  # two listed that were there
            (before, {path: text for path, text in listing(team(files), "team.yaml").items()
                      if path != "apps/qa/app1-app1.yaml"})):  # and a file qa read deleted
        assert followed(before, after, config) is None


def test_listed_where_another_unit_walks_its_folder_is_refused():
    """qa's second path walks `teams` folder by folder: the team's release is read there too."""
    files, config = flux_fleet()
    files["teams/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: teams\n"
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": [f"clusters/{e}"] + ["teams"] * (e == "qa")}
                                              for e in ENVIRONMENTS]}, environ={})
    assert followed(listing(files), listing(team(files), "team.yaml"), config) is None


def test_listed_from_another_folder_another_unit_walks_is_refused():
    """qa's kustomization lists `../common/team.yaml`, in a folder qa's second path walks file by
    file: both walks make the Kustomization, and the first in its order follows it."""
    files, config = flux_fleet()
    files["clusters/common/infra.yaml"] = kustomization("infra", path="./infra/common")
    files["infra/common/tools.yaml"] = release("tools", "1.0.0", "", False)
    files["infra/common/repository.yaml"] = repository("tools")
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": e, "path": [f"clusters/{e}"] + ["clusters/common"] * (e == "qa")}
                                              for e in ENVIRONMENTS]}, environ={})
    after = listing(team(files, "clusters/common/team.yaml"), "../common/team.yaml")
    assert followed(listing(files), after, config) is None


def test_an_entry_naming_no_file_taken_out_is_not_a_kustomization():
    """qa's cluster kustomization listed `gone.yaml`, which is nowhere (a problem): taken out, no
    file is read to ask (found by the property test)."""
    files, config = flux_fleet()
    assert followed(listing(files, "gone.yaml"), listing(files), config) is None


def test_at_the_root_of_the_repository_every_file_added_is_its_parents():
    """qa's cluster entry is the repository's root: the parent walks the team's folder too, so the
    files the commit adds beside the Kustomization are its parent's (a test found it builds them)."""
    files, config = flux_fleet()
    files = {path[len("clusters/qa/"):] if path.startswith("clusters/qa/") else path:
             text.replace("./clusters/qa", "./") for path, text in files.items()}
    config = parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                             "environments": [{"name": "dev", "path": "clusters/dev"}, {"name": "qa", "path": "."}]},
                            environ={})
    assert followed(files, team(files, "team.yaml"), config) is None


# ---- a team moved: its Kustomization changed in what it builds (``unit_lists.refollow``) -------

def refollowed(before: dict, after: dict, config):
    return following.followed(refollow, before, after, config)


def moved(files: dict, to: str = "teams/qa2", along: bool = True) -> dict:
    """``files`` with the team's path `./teams/qa` changed to ``to`` (its files moved there when
    ``along``)."""
    return {(path.replace("teams/qa/", to + "/") if along else path): text.replace("./teams/qa\n", f"./{to}\n")
            for path, text in files.items()}


def test_a_team_moved_lets_go_of_its_unit_and_follows_it_again():
    files, config = flux_fleet()
    before = team(files)
    held = refollowed(before, moved(before), config)
    assert held is not None and (qa(held, "web").version, qa(held, "web").location.file) == ("7.0.0", "teams/qa2/web.yaml")
    _, _, (gone, anew) = held.carried_from
    assert {p.app for p in gone} == {p.app for p in anew} == {"web"}  # the team's pins, not the fleet's
    assert [u.kustomization.name for u in held.parts[1].kept.units] == ["flux-system", "apps", "team"]


def test_a_team_renamed_or_given_a_target_namespace():
    files, config = flux_fleet()
    before = team(files)
    renamed = {**before, "clusters/qa/team.yaml": before["clusters/qa/team.yaml"].replace("name: team", "name: crew")}
    assert refollowed(before, renamed, config) is not None
    namespaced = {**before, "clusters/qa/team.yaml": kustomization(extra="  targetNamespace: crew\n")}
    held = refollowed(before, namespaced, config)
    assert held is not None and qa(held, "web").namespace == "crew"
    # the environment's own `apps`, moved to another folder: its unit followed again too
    apps = {**files, "clusters/qa/apps.yaml": files["clusters/qa/apps.yaml"].replace("./apps/qa\n", "./apps/dev\n")}
    held = refollowed(files, apps, config)
    assert held is not None and qa(held, "app0").location.file == "apps/dev/app0-app0.yaml"


def test_what_the_proof_does_not_cover_of_a_team_moved_builds_it_again():
    files, config = flux_fleet()
    before = team(files)
    for after in (
            moved(before, along=False),  # a path nothing holds: a problem the build says
            moved(before, "clusters/qa/team"),  # into its parent's folder, which walks it too
            moved(before, "apps/qa", along=False),  # where another unit reads: its releases twice
            {**before, "clusters/qa/team.yaml": kustomization(extra=substituted("versions")),  # not last
             "clusters/qa/versions.yaml": cm("versions")},
            {**moved(before), "clusters/qa/notes.yaml": "x: 1\n"}):  # more for its parent's walk
        assert refollowed(before, after, config) is None
    # a patch of its own changed: ``repatch`` reads only what it selects
    patched = {**before, "clusters/qa/team.yaml": kustomization(extra="  patches:\n    - patch: |\n"
               "        - op: replace\n          path: /spec/values/replicaCount\n          value: 2\n"
               "      target:\n        kind: HelmRelease\n        name: web\n")}
    assert refollowed(before, patched, config) is not None


def with_paths(**extra) -> object:
    """Settings where each environment of ``extra`` walks those paths besides its cluster folder."""
    return parse_settings({"repo": {"url": "file:///fleet.git", "branch": "main"},
                           "environments": [{"name": e, "path": [f"clusters/{e}"] + extra.get(e, [])}
                                            for e in ENVIRONMENTS]}, environ={})


def test_a_team_moved_with_more_in_the_commit_builds_it_again():
    files, config = flux_fleet()
    before = team(team(files), "clusters/qa/crew.yaml", kustomization("crew", "./crews/qa"), folder="crews/qa",
                  apps=("api",))
    both = {**moved(before), "clusters/qa/crew.yaml": kustomization("crew", "./crews/qa", "  targetNamespace: x\n")}
    extra = release("extra", "1.0.0", "", False)
    for after in (
            both,  # two Kustomizations changed
            {**moved(before), "clusters/qa/extra.yaml": extra},  # a release its parent's walk reads
            {**moved(before), "apps/other/missing.yaml": extra}):  # a file qa looked for (below)
        before_listed = {**before, "apps/qa/kustomization.yaml": before["apps/qa/kustomization.yaml"].replace(
            "resources:\n", "resources:\n  - ../other/missing.yaml\n")} if "apps/other/missing.yaml" in after else before
        after = {**after, "apps/qa/kustomization.yaml": before_listed["apps/qa/kustomization.yaml"]}
        assert refollowed(before_listed, after, config) is None
    # the file holding it held more, or does now: its parent builds that
    text = before["clusters/qa/team.yaml"]
    assert refollowed({**before, "clusters/qa/team.yaml": text + "---\n" + extra}, moved(before), config) is None
    assert refollowed(before, {**moved(before), "clusters/qa/team.yaml": moved(before)["clusters/qa/team.yaml"]
                               + "---\n" + extra}, config) is None


def test_a_team_moved_where_a_walk_looks_builds_it_again():
    """`teams2` is walked by prod (or by qa, beside its cluster folder): the team moved there is
    read by that walk too; and qa walks `more/*`, which matches the team's new folder."""
    files, config = flux_fleet()
    files["teams2/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: teams2\n"
    files["more/a/ns.yaml"] = files["teams2/ns.yaml"]
    before = team(files)
    for config in (with_paths(prod=["teams2"]), with_paths(qa=["teams2"])):
        assert refollowed(before, moved(before), config) is not None  # elsewhere, as anywhere
        assert refollowed(before, moved(before, "teams2/qa"), config) is None
    assert refollowed(before, moved(before, "more/b"), with_paths(qa=["more/*"])) is None
