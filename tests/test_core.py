"""The GitOps core end to end: a real bare remote, a real registry, the demo fleet's layouts."""
import threading

import pytest

from devtools.fluxrepo import DEMO_PINS, demo_files, demo_settings
from gitops.core import GitOps
from gitops.errors import (GitUnavailable, InvalidVersion, NothingToRollback, PromotionRefused,
                           RegistryUnavailable, RolledBackVersion, SharedPin, UnknownApp,
                           UnknownEnvironment, VersionNotFound)
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.fixtures_git import git, remote_file, remote_log, remote_path, remote_tip
from tests.ops import deploy, promote, rollback, rolled_back

ALICE = Requester("U0ALICE", "Alice Doe", "alice@example.com")
BOB = Requester("U0BOB")


@pytest.fixture
def fleet(tmp_path, registry, charts, bare_remote):
    """A GitOps core over the demo fleet: its remote URL and the core."""
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    return url, make_core(url, tmp_path)


def make_core(url, tmp_path, **overrides):
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data"), **overrides}
    return GitOps(parse_settings(raw, environ={}), fetch_interval=0)


def clean(url, core):
    """The clone is clean and at the remote's tip: nothing half-done is left behind."""
    clone = next(iter(core._workspaces.values())).directory
    if not clone.exists():
        return  # refused before Git was even asked
    if git("ls-files", cwd=clone) == "":
        return  # never checked out: reads come from Git objects, only a change checks files out
    assert git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
    assert git("rev-parse", "HEAD", cwd=clone) == remote_tip(url)


def test_inventory_finds_every_app_in_every_environment(fleet, registry):
    url, core = fleet
    inv = core.inventory()
    assert inv.apps() == ["cert-manager", "podinfo", "redis"]
    for app, pins in DEMO_PINS.items():
        for env, version in pins.items():
            pin = inv.find(app, env)
            assert pin.version == version and not pin.is_range and not pin.shared
    assert inv.find("podinfo", "qa").kind == "patch"
    assert inv.find("podinfo", "qa").location.file == "apps/qa/podinfo-values.yaml"
    assert inv.find("redis", "qa").kind == "helmrelease"
    assert inv.find("cert-manager", "qa").kind == "ocirepository"
    assert str(inv.find("cert-manager", "qa").source) == f"{registry.url}/charts/cert-manager"


def test_deploy_commits_one_line_as_the_requester(fleet):
    url, core = fleet
    before = remote_tip(url)
    change = deploy(core, "PodInfo", "QA", "6.5.3", ALICE)
    assert (change.old, change.new, change.environment, change.noop) == ("6.5.2", "6.5.3", "qa", False)
    assert remote_tip(url) == change.commit.sha
    author = git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%an <%ae>|%cn|%s")
    assert author == "Alice Doe <alice@example.com>|Ferry|deploy podinfo 6.5.2 → 6.5.3 to qa"
    body = git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%b")
    assert "Requested-by: Alice Doe <U0ALICE>" in body and "To-Version: 6.5.3" in body
    diff = git("--git-dir", str(remote_path(url)), "diff", "--unified=0", before, change.commit.sha)
    changed = [l for l in diff.splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---")]
    assert changed == ['-      version: "6.5.2" # pinned by Ferry', '+      version: "6.5.3" # pinned by Ferry']
    assert core.inventory().find("podinfo", "qa").version == "6.5.3"
    clean(url, core)


def test_dry_run_shows_the_diff_and_pushes_nothing(fleet):
    url, core = fleet
    before = remote_tip(url)
    change = deploy(core, "redis", "prod", "19.0.0", ALICE, dry_run=True)
    assert change.dry_run and change.commit is None
    assert "-      version: 18.0.0\n+      version: 19.0.0" in change.diff
    assert change.diff.startswith("--- a/apps/prod/redis.yaml\n+++ b/apps/prod/redis.yaml")
    assert remote_tip(url) == before


def test_deploying_the_pinned_version_is_a_noop(fleet):
    url, core = fleet
    before = remote_tip(url)
    change = deploy(core, "podinfo", "qa", "6.5.2", ALICE)
    assert change.noop and change.commit is None and remote_tip(url) == before


@pytest.mark.parametrize("call, error, message", [
    (lambda c: deploy(c, "podinfp", "qa", "6.5.3", ALICE), UnknownApp, "did you mean `podinfo`"),
    (lambda c: deploy(c, "podinfo", "qaa", "6.5.3", ALICE), UnknownEnvironment, "did you mean `qa`"),
    (lambda c: deploy(c, "podinfo", "qa", "6.5.4", ALICE), VersionNotFound, "Nearest: 6.5.3, 6.5.2"),
    (lambda c: deploy(c, "podinfo", "qa", "../../etc/passwd", ALICE), InvalidVersion, "not a chart version"),
    (lambda c: deploy(c, "podinfo", "qa", "6.5.3\n", ALICE), InvalidVersion, "no spaces"),
    (lambda c: deploy(c, "podinfo", "qa", "latest2", ALICE), VersionNotFound, "no version `latest2`"),
])
def test_refusals_leave_remote_and_clone_untouched(fleet, call, error, message):
    url, core = fleet
    before = remote_tip(url)
    with pytest.raises(error, match=message):
        call(core)
    assert remote_tip(url) == before
    clean(url, core)


def test_registry_down_refuses_before_writing(fleet, tmp_path, bare_remote):
    files = demo_files("oci://127.0.0.1:9/charts")  # discard port: nothing listens
    url = bare_remote(files)
    core = make_core(url, tmp_path)
    with pytest.raises(RegistryUnavailable, match="127.0.0.1:9"):
        deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    assert len(remote_log(url)) == 1


def test_unreachable_remote_is_a_clear_error(tmp_path):
    core = make_core((tmp_path / "nowhere.git").as_uri(), tmp_path)
    with pytest.raises(GitUnavailable):
        core.inventory()


def test_shared_pin_is_refused_naming_file_and_environments(tmp_path, registry, charts, bare_remote):
    files = demo_files(f"{registry.url}/charts")
    files["shared/redis.yaml"] = files.pop("apps/dev/redis.yaml")
    for env in ("dev", "qa"):
        files[f"apps/{env}/kustomization.yaml"] = files[f"apps/{env}/kustomization.yaml"].replace(
            "  - redis.yaml\n", "")
    url = bare_remote(files)
    raw = demo_settings(url)
    raw["environments"][0]["path"] = ["apps/dev", "shared"]
    raw["environments"][1]["path"] = ["apps/qa", "shared"]
    core = GitOps(parse_settings({**raw, "data_dir": str(tmp_path / "d")}, environ={}))
    pin = core.pin("redis", "qa")
    assert pin.shared_with == ("dev", "qa")
    with pytest.raises(SharedPin, match=r"`shared/redis.yaml`, which is shared by dev, qa"):
        deploy(core, "redis", "qa", "19.0.0", ALICE)
    assert len(remote_log(url)) == 1


def test_a_range_becomes_an_exact_version(tmp_path, registry, charts, bare_remote):
    files = demo_files(f"{registry.url}/charts")
    files["apps/dev/redis.yaml"] = files["apps/dev/redis.yaml"].replace("version: 19.0.0", 'version: ">=18.0.0"')
    url = bare_remote(files)
    core = make_core(url, tmp_path)
    assert core.pin("redis", "dev").is_range
    change = deploy(core, "redis", "dev", "18.1.0", ALICE)
    assert change.replaced_range and change.old == ">=18.0.0"
    assert 'version: "18.1.0"' in remote_file(url, "apps/dev/redis.yaml") or \
        "version: 18.1.0" in remote_file(url, "apps/dev/redis.yaml")


def test_promote_takes_the_previous_environment_and_lists_what_it_brings(fleet):
    url, core = fleet
    change = promote(core, "podinfo", "stag", ALICE)
    assert (change.old, change.new, change.source_environment) == ("6.5.1", "6.5.2", "qa")
    assert change.between == ("6.5.2",)
    change = promote(core, "podinfo", "qa", ALICE, from_environment="dev")
    assert change.new == "6.5.3" and change.between == ("6.5.3",)
    subject = remote_log(url, fmt="%s")[0]
    assert subject == "promote podinfo 6.5.2 → 6.5.3 from dev to qa"


def test_promotion_does_not_skip_stages(fleet):
    url, core = fleet
    with pytest.raises(PromotionRefused, match="promote it to stag first"):
        promote(core, "podinfo", "prod", ALICE, from_environment="dev")
    with pytest.raises(PromotionRefused, match="promote it to qa first"):
        promote(core, "podinfo", "stag", ALICE, version="6.5.3")
    with pytest.raises(PromotionRefused, match="`dev` is the first environment"):
        promote(core, "podinfo", "dev", ALICE)
    assert len(remote_log(url)) == 1


def test_promote_refuses_an_app_absent_from_the_source(tmp_path, registry, charts, bare_remote):
    files = demo_files(f"{registry.url}/charts")
    del files["apps/dev/redis.yaml"]
    files["apps/dev/kustomization.yaml"] = files["apps/dev/kustomization.yaml"].replace("  - redis.yaml\n", "")
    core = make_core(bare_remote(files), tmp_path)
    with pytest.raises(PromotionRefused, match="`redis` is not in dev"):
        promote(core, "redis", "qa", ALICE)


def test_rollback_goes_back_and_remembers(fleet):
    url, core = fleet
    with pytest.raises(NothingToRollback, match="only `6.5.2`"):
        rollback(core, "podinfo", "qa", ALICE)
    deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    history = core.history("podinfo", "qa")
    assert [h.version for h in history] == ["6.5.3", "6.5.2"]
    assert history[0].requested_by == "Alice Doe <U0ALICE>"
    change = rollback(core, "podinfo", "qa", BOB)
    assert (change.old, change.new) == ("6.5.3", "6.5.2")
    assert remote_log(url, fmt="%an|%s")[0] == "U0BOB|rollback podinfo 6.5.3 → 6.5.2 to qa"
    with pytest.raises(RolledBackVersion, match="rolled back from qa by U0BOB.*--force"):
        deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    with pytest.raises(RolledBackVersion):
        promote(core, "podinfo", "qa", ALICE)
    assert deploy(core, "podinfo", "qa", "6.5.3", ALICE, force=True).commit is not None
    assert rolled_back(core, "podinfo", "qa") is None


def test_rollback_to_a_version_it_ran(fleet):
    url, core = fleet
    deploy(core, "redis", "dev", "18.0.0", ALICE)
    deploy(core, "redis", "dev", "18.1.0", ALICE)
    with pytest.raises(NothingToRollback, match="never ran `17.0.0`"):
        rollback(core, "redis", "dev", ALICE, to="17.0.0")
    change = rollback(core, "redis", "dev", ALICE, to="19.0.0")
    assert (change.old, change.new) == ("18.1.0", "19.0.0")


def test_external_push_in_between_is_retried_on_the_new_tip(fleet, external_commit):
    url, core = fleet
    core.inventory()  # clone and cache before someone else pushes
    theirs = external_commit(url, {"README.md": "# Flux fleet\n\nSomeone else was here.\n"})
    change = deploy(core, "podinfo", "dev", "6.6.0", ALICE)
    log = remote_log(url)
    assert log[:2] == [change.commit.sha, theirs]  # linear: theirs is kept, ours on top


def test_concurrent_deploys_serialise_and_the_second_says_what_happened(fleet):
    url, core = fleet
    results, errors = {}, []

    def deploy_as(name, app, version):
        try:
            results[name] = deploy(core, app, "dev", version, ALICE)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=deploy_as, args=a) for a in
               [("a", "podinfo", "6.6.0"), ("b", "redis", "18.1.0"), ("c", "podinfo", "6.6.0")]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    podinfo = sorted([results["a"], results["c"]], key=lambda c: c.noop)
    assert podinfo[0].commit is not None and podinfo[1].noop
    assert results["b"].commit is not None
    assert len(remote_log(url)) == 3


def test_environment_and_values_diff(fleet):
    url, core = fleet
    rows = core.environment_diff("stag", "prod")
    assert rows == [("podinfo", "6.5.1", "6.5.0")]
    pa, pb, diff = core.values_diff("podinfo", "qa", "prod")
    assert (pa.version, pb.version) == ("6.5.2", "6.5.0")
    assert "-  replicaCount: 1\n+  replicaCount: 3" in diff or ("-replicaCount: 1" in diff and "+replicaCount: 3" in diff)
    assert "podinfo on qa" in diff and "podinfo on prod" in diff


def test_pins_derived_after_a_deploy_equal_a_fresh_discovery(fleet):
    """After its own commit the core derives the new inventory instead of re-reading the fleet;
    what it derives must be exactly what discovery finds at that commit."""
    url, core = fleet
    core.inventory()
    change = deploy(core, "redis", "qa", "19.0.0", ALICE)
    derived = core.inventory(refresh=False)
    assert derived.commit.startswith(change.commit.sha[:12])
    core._pins._by_commit.clear()
    assert core.inventory(refresh=False) == derived


def test_a_colleagues_version_bump_is_carried_forward_exactly(fleet, external_commit):
    url, core = fleet
    core.inventory()
    text = remote_file(url, "apps/stag/redis.yaml")
    external_commit(url, {"apps/stag/redis.yaml": text.replace("version: 18.0.0", "version: 18.1.0") + "\n"})
    carried = core.inventory()
    assert carried.find("redis", "stag").version == "18.1.0"
    core._pins._by_commit.clear()
    assert core.inventory(refresh=False) == carried
