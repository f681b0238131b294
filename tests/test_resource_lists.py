"""An app added to an environment's kustomization, or taken out of it, read on its own inside the
build that lists it (``flux.resource_lists``): what the bot then holds equals a fresh discovery,
and each case the proof cannot cover is refused (the environment is built again, and that equals
a fresh discovery too). Written for Ferry's tests (no outside source)."""
from __future__ import annotations

import pytest

from gitops.changes.carry import carry_forward, discover, follow, rediscover, relist, reread
from tests import following
from tests.carry_layouts import MemTree, repository
from tests.test_refold import ENVIRONMENTS, fleet, release, settings

APPS = {env: [(f"app{i}", f"app{i}") for i in range(6)] for env in ENVIRONMENTS}
QA = "apps/qa/kustomization.yaml"
OVERLAY_PATCH = ("  - target:\n      kind: HelmRelease\n      name: new\n    patch: |\n      - op: replace\n"
                 "        path: /spec/chart/spec/version\n        value: 8.0.0\n")


def listed(files: dict, env: str, entries: list) -> dict:
    """``files`` with the environment's kustomization listing ``entries``."""
    path = f"apps/{env}/kustomization.yaml"
    head, _, _ = files[path].partition("resources:\n")
    return {**files, path: head + "resources:\n" + "".join(f"  - {e}\n" for e in entries)}


def entries(files: dict, env: str) -> list:
    return [line[4:] for line in files[f"apps/{env}/kustomization.yaml"].split("\n") if line.startswith("  - ")]


def followed(before: dict, after: dict, config=None):
    """What ``relist`` holds after the commit (or None), checked against a fresh discovery
    (``tests.following``)."""
    return following.followed(relist, before, after, config or settings())


def app_file(name: str, namespace: str, extra: str = "") -> str:
    return release(name, "7.0.0", "dict", False).replace(f"  namespace: {name}\n", f"  namespace: {namespace}\n") + extra


@pytest.mark.parametrize("at", [0, 3, 7])
def test_an_app_file_listed_is_read_on_its_own_in_its_place(at):
    files = fleet(APPS)
    order = entries(files, "qa")
    after = listed({**files, "apps/qa/new.yaml": app_file("new", "app2")}, "qa", order[:at] + ["new.yaml"] + order[at:])
    held = followed(files, after)
    assert held is not None and {(p.app, p.environment) for p in held.carried_from[2][1]} == {("new", "qa")}


def test_an_app_file_taken_out_and_removed_goes_on_its_own():
    files = fleet(APPS)
    after = listed(files, "dev", [e for e in entries(files, "dev") if e != "app3-app3.yaml"])
    for commit in (after, {p: t for p, t in after.items() if p != "apps/dev/app3-app3.yaml"}):
        held = followed(files, commit)
        assert held is not None and {(p.app, p.environment) for p in held.carried_from[2][1]} == \
            {("app3", "qa"), ("app3", "prod")}  # its name in the others folded again, the same


def test_two_apps_listed_in_two_environments_at_once():
    files = fleet(APPS)
    after = dict(files)
    for env in ("dev", "prod"):
        after[f"apps/{env}/one.yaml"] = app_file("one", "app1")
        after[f"apps/{env}/two.yaml"] = app_file("two", "app4")
        after = listed(after, env, ["one.yaml"] + entries(files, env) + ["two.yaml"])
    assert followed(files, after) is not None


REFUSED = {
    "a source the environment has": lambda files: ("apps/qa/new.yaml", app_file("new", "app2", "---\n" + repository("app2"))),
    "a GitRepository": lambda files: ("apps/qa/new.yaml", app_file("new", "app2", "---\napiVersion: source.toolkit.fluxcd.io/v1\n"
                                                                   "kind: GitRepository\nmetadata:\n  name: g\n  namespace: app2\n")),
    "a name the environment has": lambda files: ("apps/qa/new.yaml", app_file("app2", "app2")),
    "a variable named": lambda files: ("apps/qa/new.yaml", app_file("new", "app2").replace("replicaCount: 1", "replicaCount: ${N}")),
    "a source it never found": lambda files: ("apps/qa/new.yaml", app_file("new", "elsewhere")),
    "not valid YAML": lambda files: ("apps/qa/new.yaml", app_file("new", "app2") + "---\nkey: [open\n"),
    "a file of no release": lambda files: ("apps/qa/new.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_proof_does_not_cover_builds_the_environment_again(case):
    files = fleet(APPS)
    path, text = REFUSED[case](files)
    entry = path[len("apps/qa/"):]
    assert followed(files, listed({**files, path: text}, "qa", entries(files, "qa") + [entry])) is None


def test_a_file_in_a_subfolder_listed_and_taken_away_on_its_own():
    """`team/new.yaml` listed by qa's kustomization: no environment looked into `team`, so its
    listing changing reaches no one; then taken away and removed."""
    files = fleet(APPS)
    after = listed({**files, "apps/qa/team/a/new.yaml": app_file("new", "app2")}, "qa",
                   entries(files, "qa") + ["team/a/new.yaml"])
    held = followed(files, after)
    assert held is not None and {(p.app, p.environment) for p in held.carried_from[2][1]} == {("new", "qa")}
    assert followed(after, files) is not None


@pytest.mark.parametrize("looks", ["another environment walks the subfolder", "a file of another folder"])
def test_a_file_entry_outside_its_kustomizations_folder_builds_it_again(looks):
    files = fleet(APPS)
    path, entry = "apps/qa/team/new.yaml", "team/new.yaml"
    if looks == "another environment walks the subfolder":
        files["apps/qa/team/x.yaml"] = app_file("x", "app1")
        files = listed(files, "dev", entries(files, "dev") + ["../qa/team"])
    else:
        path, entry = "apps/common/new.yaml", "../common/new.yaml"
    after = listed({**files, path: app_file("new", "app2")}, "qa", entries(files, "qa") + [entry])
    assert followed(files, after) is None
    assert followed(after, {p: t for p, t in files.items()}) is None  # and taken away, removed


def test_another_change_to_the_kustomization_builds_it_again():
    files = fleet(APPS)
    after = listed({**files, "apps/qa/new.yaml": app_file("new", "app2")}, "qa", entries(files, "qa") + ["new.yaml"])
    after["apps/qa/kustomization.yaml"] += "namePrefix: x-\n"
    assert followed(files, after) is None


def test_the_last_release_taken_away_builds_it_again():
    files = fleet({**APPS, "dev": APPS["dev"][:1]})
    assert followed(files, listed(files, "dev", ["repository.yaml"])) is None


def test_a_release_file_listed_twice_is_not_taken_away_on_its_own():
    files = fleet(APPS)
    files["apps/dev/kustomization.yaml"] += "  - app1-app1.yaml\n"  # kustomize: one object, read twice
    assert followed(files, listed(files, "dev", [e for e in entries(files, "dev") if e != "app1-app1.yaml"])) is None


def test_a_release_file_another_kustomization_lists_too_stays():
    files = fleet(APPS)
    files["apps/dev/extra/kustomization.yaml"] = "resources:\n  - ../app1-app1.yaml\n"
    files = listed(files, "dev", ["extra"] + entries(files, "dev"))
    assert followed(files, listed(files, "dev", [e for e in entries(files, "dev") if e != "app1-app1.yaml"])) is None


def test_a_release_of_a_folder_listed_without_kustomization_keeps_its_place():
    files = fleet(APPS)
    files["apps/dev/team/x.yaml"] = app_file("x", "app1")
    files = listed(files, "dev", entries(files, "dev") + ["team"])
    after = listed({**files, "apps/dev/new.yaml": app_file("new", "app2")}, "dev", entries(files, "dev") + ["new.yaml"])
    assert followed(files, after) is None


def test_a_file_another_environment_looked_for_builds_that_one_again():
    files = fleet(APPS)
    files = listed(files, "dev", entries(files, "dev") + ["../qa/new.yaml"])  # missing: a problem in dev
    after = listed({**files, "apps/qa/new.yaml": app_file("new", "app2")}, "qa", entries(files, "qa") + ["new.yaml"])
    assert followed(files, after) is None


def test_a_release_another_entry_reads_first_keeps_the_new_one_from_its_place():
    files = fleet(APPS)
    files["apps/dev/extra/kustomization.yaml"] = "resources:\n  - ../app1-app1.yaml\n"
    files = listed(files, "dev", entries(files, "dev") + ["extra"])  # app1 read through both
    order = entries(files, "dev")
    at = order.index("app1-app1.yaml") + 1
    after = listed({**files, "apps/dev/new.yaml": app_file("new", "app2")}, "dev", order[:at] + ["new.yaml"] + order[at:])
    assert followed(files, after) is None


def test_a_release_an_outer_kustomization_reads_first_keeps_the_new_one_from_its_place():
    files = {p: t for p, t in fleet(APPS).items() if not p.startswith("apps/dev/")}
    dev = fleet(APPS)
    for path, text in dev.items():
        if path.startswith("apps/dev/") and not path.endswith("kustomization.yaml"):
            files[path.replace("apps/dev/", "apps/dev/inner/")] = text
    apps = ["app1-app1.yaml"] + [f"app{i}-app{i}.yaml" for i in range(6) if i != 1]
    files["apps/dev/inner/kustomization.yaml"] = "resources:\n" + "".join(f"  - {a}\n" for a in apps + ["repository.yaml"])
    files["apps/dev/x.yaml"] = app_file("x", "app1")
    # app1 first through the outer kustomization, then x, then the inner's others
    files["apps/dev/kustomization.yaml"] = "resources:\n  - inner/app1-app1.yaml\n  - x.yaml\n  - inner\n"
    after = dict(files, **{"apps/dev/inner/new.yaml": app_file("new", "app2")})
    after["apps/dev/inner/kustomization.yaml"] = files["apps/dev/inner/kustomization.yaml"].replace(
        "  - app1-app1.yaml\n", "  - app1-app1.yaml\n  - new.yaml\n")
    assert followed(files, after) is None


def with_source(name: str, namespace: str) -> str:
    """An app's file as many fleets write it: its HelmRepository, then its HelmRelease."""
    return repository(namespace) + "---\n" + app_file(name, namespace)


def test_an_app_file_with_its_own_source_is_listed_and_taken_away_on_its_own():
    files = fleet(APPS)
    after = listed({**files, "apps/qa/new.yaml": with_source("new", "fresh")}, "qa", entries(files, "qa") + ["new.yaml"])
    assert followed(files, after) is not None
    back = listed({p: t for p, t in after.items() if p != "apps/qa/new.yaml"}, "qa", entries(files, "qa"))
    assert followed(after, back) is not None
    renamed = listed({**back, "apps/qa/renamed.yaml": with_source("new", "fresh")}, "qa", entries(files, "qa") + ["renamed.yaml"])
    assert followed(after, renamed) is not None  # the same release and source under another name


def test_a_source_another_release_finds_is_not_taken_away_on_its_own():
    files = fleet(APPS)
    files["apps/qa/a.yaml"] = with_source("a", "shared")
    files["apps/qa/b.yaml"] = app_file("b", "shared")  # finds a.yaml's HelmRepository
    files = listed(files, "qa", entries(files, "qa") + ["a.yaml", "b.yaml"])
    assert followed(files, listed(files, "qa", [e for e in entries(files, "qa") if e != "a.yaml"])) is None
    assert followed(files, listed(files, "qa", [e for e in entries(files, "qa") if e != "b.yaml"])) is not None


@pytest.mark.parametrize("name", ["new.yaml", "new"])  # "new": no file the repository-wide table reads
def test_a_source_another_environment_looked_for_is_not_listed_on_its_own(name):
    files = fleet(APPS)
    files["apps/prod/lost.yaml"] = app_file("lost", "nowhere")  # its source is nowhere: looked for elsewhere
    files = listed(files, "prod", entries(files, "prod") + ["lost.yaml"])
    after = listed({**files, f"apps/qa/{name}": with_source("new", "nowhere")}, "qa", entries(files, "qa") + [name])
    assert followed(files, after) is None  # prod's release would find it in qa's build


def test_a_source_another_environment_found_is_not_taken_away_on_its_own():
    files = fleet(APPS)
    files["apps/prod/lost.yaml"] = app_file("lost", "there")  # finds its source in qa's build
    files = listed(files, "prod", entries(files, "prod") + ["lost.yaml"])
    files["apps/qa/there.yaml"] = with_source("here", "there")
    files = listed(files, "qa", entries(files, "qa") + ["there.yaml"])
    assert followed(files, listed(files, "qa", entries(files, "qa")[:-1])) is None


def test_taking_away_a_release_defined_twice_builds_it_again():
    files = fleet(APPS)
    files["apps/dev/twice.yaml"] = app_file("app2", "app2")  # listed first: the one kept, app2-app2.yaml's the other
    files = listed(files, "dev", ["twice.yaml"] + entries(files, "dev"))
    assert followed(files, listed(files, "dev", entries(files, "dev")[1:])) is None


def test_a_source_repeated_in_the_environment_stays_when_one_copy_goes():
    files = fleet(APPS)
    files["apps/dev/b.yaml"] = repository("zz")
    files["apps/dev/a.yaml"] = repository("zz") + "---\n" + app_file("a", "app2")  # zz again, found by none
    files = listed(files, "dev", entries(files, "dev") + ["b.yaml", "a.yaml"])
    after = listed(files, "dev", [e for e in entries(files, "dev") if e != "a.yaml"])
    assert followed(files, after) is None


def test_a_release_that_turned_to_another_source_keeps_it_from_going():
    """A release read again (its file changed) that now finds another source of its environment:
    that source is not taken away on its own afterwards."""
    config = settings()
    files = fleet(APPS)
    files["apps/dev/a.yaml"] = with_source("a", "sa")
    files["apps/dev/b.yaml"] = with_source("b", "sb")
    files = listed(files, "dev", entries(files, "dev") + ["a.yaml", "b.yaml"])
    turned = {**files, "apps/dev/b.yaml": files["apps/dev/b.yaml"].replace(
        "        name: charts\n", "        name: charts\n        namespace: sa\n")}
    gone = listed({p: t for p, t in turned.items() if p != "apps/dev/a.yaml"}, "dev",
                  [e for e in entries(turned, "dev") if e != "a.yaml"])
    trees = [MemTree(f) for f in (files, turned, gone)]
    known = discover(trees[0], config)
    for old, new in zip(trees, trees[1:]):
        known = follow(known, old, new, config)
        fresh = discover(new, config)
        assert (known.pins, known.problems, known.read, known.parts) == (fresh.pins, fresh.problems, fresh.read, fresh.parts)


def test_a_commit_let_go_of_is_followed_by_nothing():
    """Older commits keep only their pins (``Known.let_go``): nothing is carried, read again or
    built again from one of them, discovery starts again."""
    config = settings()
    files = fleet(APPS)
    after = listed({**files, "apps/qa/new.yaml": app_file("new", "app2")}, "qa", entries(files, "qa") + ["new.yaml"])
    bumped = {**files, "apps/qa/app1-app1.yaml": files["apps/qa/app1-app1.yaml"].replace('"6.5.0"', '"6.5.1"')}
    known = discover(MemTree(files), config).let_go()
    assert known.pins and known.read is None and known.parts == ()
    for commit in (after, bumped):
        old, new = MemTree(files), MemTree(commit)
        assert all(step(known, old, new, config) is None for step in (relist, reread))
        assert carry_forward(known, old, new) is None and rediscover(known, old, new, config)[0] is None


def test_a_file_whose_build_said_a_problem_is_not_taken_away_on_its_own():
    files = fleet(APPS)
    files["apps/dev/broken.yaml"] = app_file("broken", "app1") + "---\nkey: [open\n"  # its release read, then an error
    files = listed(files, "dev", entries(files, "dev") + ["broken.yaml"])
    assert followed(files, listed(files, "dev", entries(files, "dev")[:-1])) is None


# ---- a folder listed anew: an app's base added to an environment's overlay ----------------------

def base(name: str, namespace: str, extra: dict = None, kustomization: str = "") -> dict:
    """{path: text} of `apps/base/<name>`: its kustomization (listing the release, its source and a
    Namespace object discovery never reads), and those files."""
    folder = f"apps/base/{name}"
    files = {f"{folder}/release.yaml": app_file(name, namespace),
             f"{folder}/repository.yaml": repository(namespace),
             f"{folder}/namespace.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
             f"{folder}/kustomization.yaml": kustomization or
             "resources:\n  - namespace.yaml\n  - repository.yaml\n  - release.yaml\n"}
    return {**files, **(extra or {})}


def test_a_folder_listed_anew_is_walked_on_its_own_in_its_place():
    files = fleet(APPS)
    after = listed({**files, **base("new", "fresh")}, "qa", ["../base/new"] + entries(files, "qa"))
    held = followed(files, after)
    assert held is not None
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("qa", "new", "chart")] == ["7.0.0"]
    # the same folder listed by another environment too, which already has it (a promotion)
    both = listed(after, "prod", entries(after, "prod") + ["../base/new"])
    assert followed(after, both) is not None


def test_a_folder_with_a_patch_of_its_own_and_a_namespace():
    files = fleet(APPS)
    patched = base("new", "fresh", {"apps/base/new/values.yaml": (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: new\n  namespace: fresh\n"
        "spec:\n  chart:\n    spec:\n      version: 7.7.7\n")},
        "namespace: team\nresources:\n  - repository.yaml\n  - release.yaml\npatches:\n  - path: values.yaml\n")
    after = listed({**files, **patched}, "qa", entries(files, "qa") + ["../base/new"])
    held = followed(files, after)
    assert held is not None
    assert [(p.app, p.namespace, p.version) for p in held.pins if (p.environment, p.app) == ("qa", "new")][0] == \
        ("new", "team", "7.7.7")


FOLDERS_REFUSED = {
    "a file missing in it": lambda: base("new", "fresh", kustomization="resources:\n  - release.yaml\n  - gone.yaml\n"),
    "a replacement": lambda: base("new", "fresh", kustomization=(
        "resources:\n  - repository.yaml\n  - release.yaml\nreplacements:\n  - source:\n      kind: HelmRelease\n"
        "      name: new\n      fieldPath: spec.values.replicaCount\n    targets: []\n")),
    "an image it sets": lambda: base("new", "fresh", kustomization=(
        "resources:\n  - repository.yaml\n  - release.yaml\nimages:\n  - name: ghcr.io/acme/new\n    newTag: 2.0.0\n")),
    "a variable named": lambda: base("new", "fresh", {"apps/base/new/release.yaml": app_file("new", "fresh").replace(
        "replicaCount: 1", "replicaCount: ${REPLICAS}")}),
    "a Flux Kustomization in it": lambda: base("new", "fresh", {"apps/base/new/namespace.yaml": (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: x\n  namespace: fresh\n"
        "spec:\n  path: ./nowhere\n")}),
    "a source its environment has": lambda: base("new", "app1"),
    "a release its environment has": lambda: base("new", "fresh", {"apps/base/new/release.yaml": app_file("app2", "app2")}),
    "a file the environment reads": lambda: base("new", "fresh", kustomization=(
        "resources:\n  - repository.yaml\n  - release.yaml\n  - ../../qa/app1-app1.yaml\n")),
    "a loop": lambda: base("new", "fresh", kustomization="resources:\n  - repository.yaml\n  - release.yaml\n"
                           "  - ../../qa\n"),
}


@pytest.mark.parametrize("case", sorted(FOLDERS_REFUSED))
def test_what_the_proof_does_not_cover_of_a_folder_builds_it_again(case):
    files = fleet(APPS)
    assert followed(files, listed({**files, **FOLDERS_REFUSED[case]()}, "qa", entries(files, "qa") + ["../base/new"])) is None


def test_a_folder_whose_parent_an_environment_walks_builds_it_again():
    """dev lists `../base` itself, a folder without kustomization: every file under it is dev's,
    and a folder added there is one more for dev."""
    files = fleet(APPS)
    files = listed({**files, **base("old", "old")}, "dev", entries(files, "dev") + ["../base"])
    after = listed({**files, **base("new", "fresh")}, "qa", entries(files, "qa") + ["../base/new"])
    assert followed(files, after) is None


def test_a_folder_taken_away_goes_on_its_own_when_its_route_alone_made_it():
    """qa lists `../base/new`, then no more (the folder stays: prod lists it too)."""
    files = listed({**fleet(APPS), **base("new", "fresh")}, "qa", entries(fleet(APPS), "qa") + ["../base/new"])
    files = listed(files, "prod", entries(files, "prod") + ["../base/new"])
    held = followed(files, listed(files, "qa", entries(fleet(APPS), "qa")))
    assert held is not None and not any(p.app == "new" and p.environment == "qa" for p in held.pins)
    assert "apps/base/new/release.yaml" in held.read  # prod reads it still
    # taken out of both, then deleted: no one reads it any more
    only_qa = listed(files, "prod", entries(fleet(APPS), "prod"))
    deleted = {path: text for path, text in listed(only_qa, "qa", entries(fleet(APPS), "qa")).items()
               if not path.startswith("apps/base/new/")}
    held = followed(only_qa, deleted)
    assert held is not None and not any(path.startswith("apps/base/new/") for path in held.read)
    # deleted while prod still lists it: prod's build changes (a missing resource)
    deleted = {path: text for path, text in listed(files, "qa", entries(fleet(APPS), "qa")).items()
               if not path.startswith("apps/base/new/")}
    assert followed(files, deleted) is None


FOLDERS_TAKEN_REFUSED = {
    # another kustomization of qa reads inside it
    "read by another route": lambda files: {
        "apps/qa/extra/kustomization.yaml": "resources:\n  - ../../base/new/namespace.yaml\n",
        QA: files[QA].replace("resources:\n", "resources:\n  - extra\n")},
    # it reads outside itself: another walk may read that too
    "reading outside": lambda files: {
        "apps/base/common.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: common\n",
        "apps/base/new/kustomization.yaml": files["apps/base/new/kustomization.yaml"] + "  - ../common.yaml\n"},
    # no kustomization: its files may be another walk's too
    "a plain folder": lambda files: {"apps/base/new/kustomization.yaml": None},
}


@pytest.mark.parametrize("case", sorted(FOLDERS_TAKEN_REFUSED))
def test_what_the_proof_does_not_cover_of_a_folder_taken_away_builds_it_again(case):
    files = listed({**fleet(APPS), **base("new", "fresh")}, "qa", entries(fleet(APPS), "qa") + ["../base/new"])
    files = {path: text for path, text in {**files, **FOLDERS_TAKEN_REFUSED[case](files)}.items() if text is not None}
    assert followed(files, listed(files, "qa", [e for e in entries(files, "qa") if e != "../base/new"])) is None


def test_a_folder_s_patches_act_on_its_objects_before_the_overlay_s():
    """qa's overlay pins `new` to 8.0.0 before it exists (a target selecting nothing yet); the
    folder listed then pins it to 7.7.7 in its own kustomization: kustomize applies the folder's
    patch first, the overlay's last."""
    files = fleet(APPS)
    listing = entries(files, "qa")
    files[QA] = "patches:\n" + OVERLAY_PATCH + files[QA]  # before `resources:`, which ``listed`` rewrites
    folder = base("new", "fresh", {"apps/base/new/pin.yaml": "- op: replace\n  path: /spec/chart/spec/version\n"
                                                            "  value: 7.7.7\n"},
                  "resources:\n  - repository.yaml\n  - release.yaml\npatches:\n  - path: pin.yaml\n    target:\n"
                  "      kind: HelmRelease\n      name: new\n")
    held = followed(files, listed({**files, **folder}, "qa", listing + ["../base/new"]))
    assert held is not None
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("qa", "new", "chart")] == ["8.0.0"]


def test_a_folder_s_patches_select_in_its_own_scope():
    """dev's overlay is the first kustomization discovery walks; a folder added there patches
    `app1` by name, which it does not hold: app1, of the overlay, is not patched."""
    files = fleet(APPS)
    folder = base("new", "fresh", {"apps/base/new/pin.yaml": "- op: replace\n  path: /spec/chart/spec/version\n"
                                                            "  value: 9.9.9\n"},
                  "resources:\n  - repository.yaml\n  - release.yaml\npatches:\n  - path: pin.yaml\n    target:\n"
                  "      kind: HelmRelease\n      name: app1\n")
    after = listed({**files, **folder}, "dev", entries(files, "dev") + ["../base/new"])
    assert followed(files, after) is not None
    # app1 read again next (a label): the folder's patch is of the folder's scope, not the overlay's
    labelled = {**after, "apps/dev/app1-app1.yaml": after["apps/dev/app1-app1.yaml"].replace(
        "metadata:\n", "metadata:\n  labels:\n    tier: canary\n", 1)}
    config = settings()
    known = follow(discover(MemTree(files), config), MemTree(files), MemTree(after), config)
    held = reread(known, MemTree(after), MemTree(labelled), config)
    assert held is not None and held.pins == discover(MemTree(labelled), config).pins
    assert [p.version for p in held.pins if (p.environment, p.app, p.part) == ("dev", "app1", "chart")] == ["6.5.0"]


def test_a_folder_whose_release_is_defined_twice_looks_elsewhere_or_source_repeats_builds_it_again():
    fleet_files = fleet(APPS)
    twice = base("new", "fresh", {"apps/base/new/release.yaml": app_file("app2", "app2")})  # qa's app2 again
    # its source only in prod's builds: qa looked for it there
    elsewhere = base("new", "fresh", kustomization="resources:\n  - namespace.yaml\n  - release.yaml\n")
    elsewhere["apps/prod/fresh-source.yaml"] = repository("fresh")
    for folder, prod in ((twice, []), (elsewhere, ["fresh-source.yaml"])):
        files = listed({**fleet_files, **folder}, "qa", entries(fleet_files, "qa") + ["../base/new"])
        files = listed(files, "prod", entries(fleet_files, "prod") + prod)
        assert followed(files, listed(files, "qa", entries(fleet_files, "qa"))) is None


def test_a_folder_another_unit_applies_builds_it_again():
    """qa's Flux Kustomization `new` applies `apps/base/new` itself, into another namespace: its
    files are read by that unit too."""
    from tests.test_patch_lists import flux_fleet
    files, config = flux_fleet()
    files = {**files, **base("new", "fresh")}
    files["clusters/qa/new.yaml"] = files["clusters/qa/apps.yaml"].replace("name: apps", "name: new").replace(
        "path: ./apps/qa", "path: ./apps/base/new\n  targetNamespace: other")
    files = listed(files, "qa", entries(files, "qa") + ["../base/new"])
    assert following.followed(relist, files, listed(files, "qa", entries(files, "qa")[:-1]), config) is None


def test_a_folder_whose_source_is_repeated_or_looked_for_elsewhere_builds_it_again():
    """Its HelmRepository has the key of another qa holds (`spare.yaml`, which no release uses),
    or prod's release in its namespace found it in qa's builds: either answer changes."""
    fleet_files = fleet(APPS)
    spare = {"apps/qa/spare.yaml": repository("fresh")}
    files = listed({**fleet_files, **base("new", "fresh"), **spare}, "qa",
                   entries(fleet_files, "qa") + ["spare.yaml", "../base/new"])
    assert followed(files, listed(files, "qa", entries(fleet_files, "qa") + ["spare.yaml"])) is None
    lonely = {"apps/prod/lonely.yaml": app_file("lonely", "fresh")}  # no source of its own
    files = listed({**fleet_files, **base("new", "fresh"), **lonely}, "qa", entries(fleet_files, "qa") + ["../base/new"])
    files = listed(files, "prod", entries(fleet_files, "prod") + ["lonely.yaml"])
    assert followed(files, listed(files, "qa", entries(fleet_files, "qa"))) is None
