"""Image tags as pins, end to end: a real Errbot (its test backend), a real bare remote, and the
real registry holding real image manifests (``images`` fixture). Each pin kind (values
``image.tag``, app-template containers, a ``$imagepolicy``-marked line, kustomize ``newTag``) is
shown, deployed with a one-line diff, promoted and rolled back; every refusal leaves the remote
as it was."""
import pytest

from gitops.flux import images
from gitops.flux.discovery import discover
from gitops.flux.manifests import DirTree
from gitops.settings import parse_settings
from tests import image_fleet
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import changed_lines, git, remote_file, remote_path, remote_tip


@pytest.fixture
def fleet_url(registry, charts, images, bare_remote):
    return bare_remote(image_fleet.files(registry.host, registry.url))


@pytest.fixture
def bot(tmp_path, fleet_url):
    with started_bot(tmp_path, image_fleet.settings(fleet_url)) as testbot:
        yield testbot


def head_message(url):
    return git("--git-dir", str(remote_path(url)), "log", "-1", "--format=%B")


# ---- discovery and what an app is tracked by (pure) ------------------------------------------

def _pins(tmp_path, **apps):
    for path, text in image_fleet.files("127.0.0.1:5000", "oci://127.0.0.1:5000").items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    settings = parse_settings(image_fleet.settings("file:///fleet.git", **apps))
    return settings, discover(DirTree(tmp_path), settings, with_images=True)


def test_each_image_shape_is_a_pin_and_shared_charts_track_by_image(tmp_path):
    settings, pins = _pins(tmp_path)
    dev = {(p.app, p.part): p for p in pins if p.environment == "dev"}
    assert dev[("web", "image")].location.path == ("spec", "values", "image", "tag")
    assert dev[("api", "image:app")].version == "1.1.0"
    assert dev[("api", "image:sidecar")].source.ref == "127.0.0.1:5000/images/sidecar"
    worker = dev[("worker", "image")]
    assert (worker.version, worker.written_prefix) == ("1.1.0", "127.0.0.1:5000/images/worker:")
    assert dev[("cron", "image")].location.path[-1] == "version"  # found by its setter marker
    assert dev[("cron", "image")].source.ref == "127.0.0.1:5000/images/web"  # from the `:name` marker
    assert dev[("static", "image")].location.path == ("images", 0, "newTag")
    assert dev[("api", "chart")].shared_by  # one patch line sets every app-template release
    tracked, _ = images.split(pins, settings)
    assert {(p.app, p.part) for p in tracked if p.environment == "dev"} == {
        ("web", "chart"), ("api", "image:app"), ("worker", "image"), ("cron", "image"),
        ("static", "image")}
    settings, pins = _pins(tmp_path, web={"track": "image"}, api={"track": "image:sidecar"})
    tracked, _ = images.split(pins, settings)
    assert {(p.app, p.part) for p in tracked if p.environment == "qa" and p.app in ("web", "api")} == {
        ("web", "image"), ("api", "image:sidecar")}


def test_docker_hub_names_follow_dockers_conventions():
    assert images.location("nginx").ref == "registry-1.docker.io/library/nginx"
    assert images.location("docker.io/bitnami/redis").ref == "registry-1.docker.io/bitnami/redis"
    assert images.location("ghcr.io/acme/web").ref == "ghcr.io/acme/web"
    assert images.location("localhost:5000/web").insecure
    assert images.split_reference("ghcr.io/acme/web:1.2@sha256:ab") == ("ghcr.io/acme/web", "1.2", "sha256:ab")
    assert images.split_reference("127.0.0.1:5000/web") == ("127.0.0.1:5000/web", "", "")


# ---- through chat ----------------------------------------------------------------------------

def test_versions_say_what_each_app_is_tracked_by(bot):
    text = ask(bot, "!versions")[0]
    rows = {l.split()[0]: l.split() for l in text.splitlines() if l.split() and l.split()[0] in
            ("web", "api", "worker", "cron", "static")}
    assert rows["web"][-1] == "chart" and rows["web"][1:3] == ["6.5.1*", "6.5.0*"]
    assert rows["api"][-1] == "image:app" and rows["api"][1:4] == ["1.1.0*", "1.0.0*", "1.2.0"]
    assert rows["static"][-1] == "image"
    text = ask(bot, "!versions api")[0]
    assert "▸ image:app (127.0.0.1" in text and "image:sidecar" in text and "chart" in text
    # api is tracked by its image: the registry's newest are that image's tags, not the chart's
    assert "Newest in the registry (image 127.0.0.1" in text and "/images/api): 1.2.0 (" in text
    assert "6.7.0-rc.1" not in text
    assert "the pin is shared with dev/worker, dev/cron" in text


@pytest.mark.parametrize("command, file, old, new", [
    ("!deploy web image 1.2.0 to dev", "apps/dev/web.yaml", "      tag: 1.1.0", "      tag: 1.2.0"),
    ("!deploy api 1.2.0 to dev", "apps/dev/api.yaml", "              tag: 1.1.0", "              tag: 1.2.0"),
    ("!deploy api image:sidecar 1.1.0 to dev", "apps/dev/api.yaml", "              tag: 1.0.0",
     "              tag: 1.1.0"),
    ("!deploy worker 1.2.0 to dev", "apps/dev/worker.yaml",
     '            image: HOST/images/worker:1.1.0 # {"$imagepolicy": "flux-system:worker"}',
     '            image: HOST/images/worker:1.2.0 # {"$imagepolicy": "flux-system:worker"}'),
    ("!deploy cron 1.2.0 to dev", "apps/dev/cron.yaml",
     '        version: 1.1.0 # {"$imagepolicy": "flux-system:cron:tag"}',
     '        version: 1.2.0 # {"$imagepolicy": "flux-system:cron:tag"}'),
    ("!deploy static 1.2.0 to dev", "apps/dev/static/kustomization.yaml", "    newTag: 1.1.0",
     "    newTag: 1.2.0"),
    ("!deploy web 6.5.3 to dev", "apps/dev/web.yaml", "      version: 6.5.1", "      version: 6.5.3"),
])
def test_each_pin_kind_deploys_with_one_line(bot, fleet_url, registry, command, file, old, new):
    intent, result = ask(bot, command, replies=2)
    assert "→" in result and file in result, result
    stat, lines = changed_lines(fleet_url)
    assert stat == f"1\t1\t{file}"
    assert lines == [f"-{old}".replace("HOST", registry.host), f"+{new}".replace("HOST", registry.host)]
    app = command.split()[1]
    assert f"App: {app}" in head_message(fleet_url)


def test_image_deploy_says_the_part_and_records_it(bot, fleet_url):
    intent, result = ask(bot, "!deploy api image:sidecar 1.2.0 to dev", replies=2)
    assert intent.startswith("Deploying api image:sidecar 1.0.0 → 1.2.0")
    assert result.startswith("Deployed api image:sidecar 1.0.0 → 1.2.0 in dev")
    message = head_message(fleet_url)
    assert message.startswith("deploy api image:sidecar 1.0.0 → 1.2.0 to dev") and "Part: image:sidecar" in message
    text = ask(bot, "!versions api dev")[0]  # its history: the tracked pin (image:app)
    assert "now 1.1.0" in text


def test_refusals_leave_the_remote_as_it_was(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy api 9.9.9 to dev")[0]
    assert text.startswith("Image ") and "has no tag 9.9.9" in text and "1.2.0" in text
    text = ask(bot, "!deploy worker v1.2.0 to dev")[0]  # a tag is exact: v1.2.0 is not 1.2.0
    assert "has no tag v1.2.0" in text
    text = ask(bot, "!deploy api image:nope 1.0.0 to dev")[0]
    assert "api has no image:nope pinned in dev; it has image:app, chart, image:sidecar" in text
    text = ask(bot, "!deploy api chart 6.5.3 to dev")[0]
    assert "also read by" in text and "dev/worker" in text
    text = ask(bot, "!deploy api sha256:0123abcd to dev")[0]
    assert "sha256:0123abcd" in text and "not a chart version" in text
    text = ask(bot, "!deploy api image to dev")[0]
    assert text.startswith("Say which version. Usage:")
    assert remote_tip(fleet_url) == before


def test_digests_and_values_from_are_refused_with_where_to_edit(tmp_path, registry, charts, images,
                                                                bare_remote):
    files = image_fleet.files(registry.host, registry.url)
    files["apps/dev/web.yaml"] = files["apps/dev/web.yaml"].replace(
        "  values:\n", "  valuesFrom:\n    - kind: Secret\n      name: web-values\n  values:\n")
    files["apps/qa/static/kustomization.yaml"] = files["apps/qa/static/kustomization.yaml"].replace(
        "newTag: 1.0.0", "digest: sha256:" + "a" * 64)
    url = bare_remote(files)
    before = remote_tip(url)
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        text = ask(bot, "!deploy web image 1.2.0 to dev")[0]
        assert "Ferry cannot know the version of web in dev" in text and "Secret web-values" in text
        text = ask(bot, "!deploy static 1.2.0 to qa")[0]
        assert "a digest" in text and "apps/qa/static/kustomization.yaml" in text
    assert remote_tip(url) == before


def test_promote_and_rollback_move_the_tracked_image(bot, fleet_url):
    intent, result = ask(bot, "!promote api to qa", replies=2)
    assert "Promoted api image:app 1.0.0 → 1.1.0 in qa (from dev)" in result
    stat, lines = changed_lines(fleet_url)
    assert stat == "1\t1\tapps/qa/api.yaml"
    text = ask(bot, "!promote api image:sidecar to qa")[0]
    assert "already at 1.0.0" in text
    intent, result = ask(bot, "!rollback api on qa", replies=2)
    assert "Rolled back api image:app 1.1.0 → 1.0.0 in qa" in result
    stat, lines = changed_lines(fleet_url)
    assert lines == ["-              tag: 1.1.0", "+              tag: 1.0.0"]
    text = ask(bot, "!deploy api 1.1.0 to qa")[0]  # rolled back from: needs --force
    assert "--force" in text


# ---- grammar and settings --------------------------------------------------------------------

def test_the_part_is_named_after_the_app():
    from ferrychat.grammar import parse_deploy, parse_promote, parse_rollback
    assert parse_deploy("api image:Sidecar 1.2.0 to qa").part == "image:Sidecar"
    assert parse_deploy("api IMAGE 1.2.0 to qa").part == "image"
    assert parse_deploy("api chart 6.5.3 to qa").version == "6.5.3"
    assert parse_deploy("api 1.2.0 to qa").part is None
    assert parse_promote("api image:app from dev to qa").part == "image:app"
    assert parse_rollback("api chart on qa to 6.5.0").part == "chart"


def test_a_part_with_app_at_version_is_a_usage_error():
    from ferrychat.grammar import parse_deploy
    from gitops.errors import SettingsError, UsageError
    with pytest.raises(UsageError, match="not both. Usage: `!deploy"):
        parse_deploy("api@1.2.0 image to qa")
    with pytest.raises(SettingsError, match="apps.api.track` must be `chart`, `image` or `image:<container>`"):
        parse_settings(image_fleet.settings("file:///x.git", api={"track": "tag"}))


# ---- chart and image as one unit ------------------------------------------------------------

def test_promote_carries_chart_and_image_in_one_commit_and_rollback_restores_both(bot, fleet_url):
    commits = len(git("--git-dir", str(remote_path(fleet_url)), "rev-list", "main").split())
    intent, result = ask(bot, "!promote web to qa", replies=2)
    assert intent.startswith("Promoting web (chart 6.5.0 → 6.5.1, image 1.0.0 → 1.1.0) from dev in qa")
    assert "Moves 2 part(s) in one commit: chart 6.5.0 → 6.5.1, image 1.0.0 → 1.1.0." in result
    stat, lines = changed_lines(fleet_url)
    assert stat == "2\t2\tapps/qa/web.yaml"
    assert sorted(lines) == sorted(["-      version: 6.5.0", "+      version: 6.5.1", "-      tag: 1.0.0",
                                    "+      tag: 1.1.0"])
    assert len(git("--git-dir", str(remote_path(fleet_url)), "rev-list", "main").split()) == commits + 1
    message = head_message(fleet_url)
    assert message.startswith("promote web chart 6.5.0 → 6.5.1, image 1.0.0 → 1.1.0 from dev to qa")
    assert "Moves: image 1.0.0 → 1.1.0" in message

    intent, result = ask(bot, "!rollback web on qa", replies=2)
    assert "chart 6.5.1 → 6.5.0, image 1.1.0 → 1.0.0" in result
    stat, _ = changed_lines(fleet_url)
    assert stat == "2\t2\tapps/qa/web.yaml"
    assert "tag: 1.0.0" in remote_file(fleet_url, "apps/qa/web.yaml")


def test_a_whole_promotion_checks_every_part_first(tmp_path, registry, charts, images, bare_remote):
    files = image_fleet.files(registry.host, registry.url)
    files["apps/dev/api.yaml"] = files["apps/dev/api.yaml"].replace("tag: 1.0.0", "tag: 9.9.9")  # the sidecar
    fleet_url = bare_remote(files)
    before = remote_tip(fleet_url)
    with started_bot(tmp_path, image_fleet.settings(fleet_url)) as bot:
        _promote_refused_then_one_part(bot, fleet_url, before)


def _promote_refused_then_one_part(bot, fleet_url, before):
    text = ask(bot, "!promote api to qa")[0]
    assert "images/sidecar has no tag 9.9.9" in text
    assert remote_tip(fleet_url) == before
    text = ask(bot, "!promote api to qa --dry-run")[0]
    assert "images/sidecar has no tag 9.9.9" in text
    intent, result = ask(bot, "!promote api image:app to qa", replies=2)  # one part: the sidecar stays
    stat, lines = changed_lines(fleet_url)
    assert lines == ["-              tag: 1.0.0", "+              tag: 1.1.0"]


def test_a_whole_promotion_waiting_for_approval_is_applied_whole(tmp_path, fleet_url):
    from gitops.core import GitOps
    from gitops.model import Requester
    raw = image_fleet.settings(fleet_url)
    raw["environments"][1]["policy"] = {"approval": True}
    core = GitOps(parse_settings({**raw, "data_dir": str(tmp_path / "data")}, {}))
    alice, bob = Requester("@alice", "Alice"), Requester("@bob", "Bob")
    before = remote_tip(fleet_url)
    waiting = core.apply(core.plan_promotion("web", "qa"), alice).pending
    assert waiting is not None and [tuple(a) for a in waiting.also] == [("image", "1.0.0", "1.1.0")]
    assert remote_tip(fleet_url) == before
    done = core.approve(waiting.id, bob)
    assert done.moves == (("chart", "6.5.0", "6.5.1"), ("image", "1.0.0", "1.1.0"))
    stat, _ = changed_lines(fleet_url)
    assert stat == "2\t2\tapps/qa/web.yaml"
    assert "Approved-by: Bob <@bob>" in head_message(fleet_url)
