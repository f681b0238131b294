"""`!preview` of an app tracked by its image tag, and the short form next to its changes (issue 23,
items 2 and 4), end to end: a real Errbot, a real bare remote (tests/image_fleet.py: dev runs api
1.1.0, qa 1.0.0) and the real registry holding api's images under ``labelled/api``, labelled as
CI labels them (``org.opencontainers.image.*``), one tag an index of two platforms.

Something to say next to a change: a compare link, or version labels that jump a major version
or say what the tags do not; otherwise the reply is as it always was. A preview that cannot be
made (the registry down, a config blob past its bound) is one line, and the change still goes.
"""
from __future__ import annotations

import json
import re

import pytest

from devtools.artifacts import push_image
from devtools.registry import LocalRegistry, RegistryStartError
from gitops.sources.image_labels import MAX_CONFIG_BYTES
from tests import image_fleet
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_tip

OLD, NEW, NEWER = ("3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c",
                   "0123456789abcdef0123456789abcdef01234567")


def labels(version, revision="", source="", created="2024-05-01T12:00:00Z") -> dict:
    found = {"org.opencontainers.image.version": version, "org.opencontainers.image.revision": revision,
             "org.opencontainers.image.source": source, "org.opencontainers.image.created": created}
    return {k: v for k, v in found.items() if v}


LABELS = {
    "1.0.0": labels("1.0.0", OLD, "git@github.com:acme/api.git"),
    "1.1.0": labels("1.1.0", NEW, "https://github.com/acme/api", "2024-06-02T08:30:00Z"),
    "1.2.0": labels("1.2.0"),  # CI that labels the version only: the tags say it all
    "1.2.1": labels("1.2.1"),
    "2.0.0": labels("2.0.0", NEWER, "https://github.com/acme/api"),
    "main-0123456": labels("1.3.0"),  # a branch build: its version label says what its tag does not
}


def push_labelled(host: str, repository: str = "labelled/api") -> None:
    push_image(host, repository, [t for t in LABELS if t != "2.0.0"], labels=LABELS)
    push_image(host, repository, ["2.0.0"], labels=LABELS, platforms=("linux/arm64", "linux/amd64"))


def fleet_files(host: str, registry_url: str, repository: str = "labelled/api") -> dict:
    return {path: text.replace(f"{host}/images/api", f"{host}/{repository}")
            for path, text in image_fleet.files(host, registry_url).items()}


@pytest.fixture(scope="module")
def labelled(registry):
    push_labelled(registry.host)
    return f"{registry.host}/labelled/api"


@pytest.fixture
def fleet(registry, charts, images, labelled, bare_remote, tmp_path):
    url = bare_remote(fleet_files(registry.host, registry.url))
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        yield bot, url


def compare(old: str, new: str) -> str:
    return f"https://github.com/acme/api/compare/{old}...{new}"


def test_preview_of_an_image_tag_shows_both_images_labels_and_the_compare_link(fleet, labelled):
    bot, url = fleet
    text = ask(bot, "!preview api 1.1.0 in qa")[0]
    assert text.splitlines() == [
        "Preview of api image:app in qa:",
        f"Image {labelled}: 1.0.0 → 1.1.0:",
        "• version: 1.0.0 → 1.1.0",
        f"• revision: {OLD[:12]} → {NEW[:12]}",
        "• created: 2024-05-01T12:00:00Z → 2024-06-02T08:30:00Z",
        "• source: https://github.com/acme/api",
        f"• changes: {compare(OLD, NEW)}"], text
    # the promotion's tag (dev's), and without an environment the first one it would change
    assert ask(bot, "!preview api to qa")[0] == text
    assert ask(bot, "!preview api@1.1.0")[0] == text
    assert ask(bot, "!preview api 1.1.0 in dev")[0] == "api is already at 1.1.0 in dev: there is nothing to preview."


def test_an_image_index_is_read_for_linux_amd64_and_says_so(fleet, labelled):
    bot, url = fleet
    text = ask(bot, "!preview api 2.0.0 in dev")[0]
    assert text.splitlines()[1] == (f"Image {labelled}: 1.1.0 → 2.0.0 (labels of linux/amd64 "
                                    "(linux/amd64 of 2 platforms)):"), text
    assert f"• changes: {compare(NEW, NEWER)}" in text


def test_bad_input_for_an_image_tag_is_one_line(fleet):
    bot, url = fleet
    before = remote_tip(url)
    text = ask(bot, "!preview api 9.9.9 in qa")[0]
    assert text.startswith(f"Image ") and "has no tag 9.9.9" in text and "\n" not in text, text
    assert ask(bot, "!preview api v1.1.0 in qa")[0].count("has no tag v1.1.0") == 1  # tags are exact
    assert remote_tip(url) == before


def test_an_image_pinned_by_a_digest_has_no_preview(registry, charts, images, labelled,
                                                                      bare_remote, tmp_path):
    files = fleet_files(registry.host, registry.url)
    files["apps/qa/static/kustomization.yaml"] = files["apps/qa/static/kustomization.yaml"].replace(
        "newTag: 1.0.0", "digest: sha256:" + "a" * 64)
    url = bare_remote(files)
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        text = ask(bot, "!preview static 1.2.0 in qa")[0]
        assert text.startswith("static image in qa has no one image tag Ferry can read (a digest "), text
        assert text.endswith(": there is nothing to compare from."), text
        text = ask(bot, "!preview api 1.1.0 in qa")[0]  # the others still are
        assert f"changes: {compare(OLD, NEW)}" in text, text


def test_dry_run_and_deploy_carry_the_compare_link(fleet):
    bot, url = fleet
    before = remote_tip(url)
    dry = ask(bot, "!deploy api 1.1.0 to qa --dry-run")[0]
    assert "Dry run, nothing pushed" in dry
    assert dry.splitlines()[-1].strip() == f"Preview: image 1.0.0 → 1.1.0; changes: {compare(OLD, NEW)}.", dry
    assert remote_tip(url) == before
    intent, result = ask(bot, "!deploy api 1.1.0 to qa", replies=2)
    assert result.startswith("Deployed api image:app 1.0.0 → 1.1.0 in qa"), result
    assert result.splitlines()[-1] == f"Preview: image 1.0.0 → 1.1.0; changes: {compare(OLD, NEW)}.", result
    assert "tag: 1.1.0" in remote_file(url, "apps/qa/api.yaml")


def test_a_major_version_jump_and_a_version_the_tag_does_not_say_are_said(fleet):
    bot, url = fleet
    text = ask(bot, "!deploy api 2.0.0 to dev --dry-run")[0]
    assert text.splitlines()[-1].strip() == ("Preview: image 1.1.0 → 2.0.0, version 1.1.0 → 2.0.0 (major "
                                     f"version jump); changes: {compare(NEW, NEWER)}."), text
    text = ask(bot, "!promote api to qa --dry-run")[0]  # dev's 1.1.0
    assert text.splitlines()[-1].strip() == f"Preview: image 1.0.0 → 1.1.0; changes: {compare(OLD, NEW)}.", text
    text = ask(bot, "!deploy api main-0123456 to dev --dry-run")[0]
    # the old image's source, the only one named: its versions compared
    assert text.splitlines()[-1].strip() == ("Preview: image 1.1.0 → main-0123456, version 1.1.0 → 1.3.0; "
                                             "changes: https://github.com/acme/api/compare/1.1.0...1.3.0."), text


def test_nothing_to_say_leaves_the_reply_as_it_was(fleet):
    bot, url = fleet
    intent, result = ask(bot, "!deploy api 1.2.0 to dev", replies=2)  # from 1.1.0: its source links
    assert result.splitlines()[-1].strip() == \
        "Preview: image 1.1.0 → 1.2.0; changes: https://github.com/acme/api/compare/1.1.0...1.2.0.", result
    # 1.2.0 → 1.2.1: no source on either (no link), the versions as the tags say them
    intent, result = ask(bot, "!deploy api 1.2.1 to dev", replies=2)
    assert result.startswith("Deployed api image:app 1.2.0 → 1.2.1 in dev"), result
    assert "Preview" not in result, result
    # the sidecar: the shared images, labelled with their version only
    intent, result = ask(bot, "!deploy api image:sidecar 1.1.0 to dev", replies=2)
    assert "Preview" not in result, result


def test_the_approval_request_and_the_approval_carry_the_preview(registry, charts, images, labelled,
                                                                 bare_remote, tmp_path):
    url = bare_remote(fleet_files(registry.host, registry.url))
    raw = image_fleet.settings(url)
    raw["environments"][1]["policy"] = {"approval": True}
    before = remote_tip(url)
    with started_bot(tmp_path, raw) as bot:
        asked = ask(bot, "!deploy api 1.1.0 to qa")[0]
        assert "qa needs a second person" in asked, asked
        note = f"Preview: image 1.0.0 → 1.1.0; changes: {compare(OLD, NEW)}."
        assert note in [line.strip() for line in asked.splitlines()], asked
        assert remote_tip(url) == before
        change_id = re.search(r"is change `?(\w+)`?", asked).group(1)
        bot.bot.sender = bot.bot.build_identifier("@bob")
        done = ask(bot, f"!approve {change_id}")[0]
        assert done.startswith("Deployed api image:app 1.0.0 → 1.1.0 in qa"), done
        assert done.splitlines()[-1].strip() == note, done
    assert "tag: 1.1.0" in remote_file(url, "apps/qa/api.yaml")


# ---- a preview that cannot be made ---------------------------------------------------------

@pytest.fixture
def own_registry(tmp_path):
    registry = LocalRegistry(tmp_path / "registry", access_log=True)
    try:
        registry.start()
    except (RegistryStartError, OSError) as e:
        pytest.fail(f"docker-registry did not start: {e}", pytrace=False)
    push_labelled(registry.host)
    yield registry
    registry.stop()


def test_each_config_is_read_once_for_preview_dry_run_and_change(own_registry, charts, registry,
                                                                 bare_remote, tmp_path):
    url = bare_remote(fleet_files(own_registry.host, registry.url))
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        before = own_registry.requests("GET", "/blobs/")
        text = ask(bot, "!preview api 1.1.0 in qa")[0]
        assert f"changes: {compare(OLD, NEW)}" in text, text
        ask(bot, "!preview api 1.1.0 in qa")
        ask(bot, "!deploy api 1.1.0 to qa --dry-run")
        intent, result = ask(bot, "!deploy api 1.1.0 to qa", replies=2)
        assert result.splitlines()[-1].strip().startswith("Preview: image 1.0.0 → 1.1.0; changes:"), result
        assert own_registry.requests("GET", "/blobs/") - before == 2  # 1.0.0's config and 1.1.0's


def test_registry_down_the_image_change_still_goes_with_one_line(own_registry, charts, registry,
                                                                bare_remote, tmp_path):
    url = bare_remote(fleet_files(own_registry.host, registry.url))
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        # dev's dry run: 1.2.0 known to be in the registry for a while (its cache); qa's 1.0.0 never read
        assert "Dry run" in ask(bot, "!deploy api 1.2.0 to dev --dry-run")[0]
        own_registry.stop()
        intent, result = ask(bot, "!deploy api 1.2.0 to qa", replies=2)
        assert result.startswith("Deployed api image:app 1.0.0 → 1.2.0 in qa"), result
        assert result.splitlines()[-1] == (
            f"Preview: could not be made (Registry {own_registry.host} cannot be reached: connection "
            "refused). The change itself is not held by it."), result
        assert "tag: 1.2.0" in remote_file(url, "apps/qa/api.yaml")


def test_a_config_blob_past_its_bound_is_one_line_and_the_change_goes(registry, charts, images, labelled,
                                                                      bare_remote, tmp_path):
    huge = json.dumps({"config": {"Labels": {"x": "y" * (2 * MAX_CONFIG_BYTES)}}}).encode()
    push_image(registry.host, "labelled/api", ["3.0.0"], config={"3.0.0": huge})
    url = bare_remote(fleet_files(registry.host, registry.url))
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        text = ask(bot, "!preview api 3.0.0 in qa")[0]
        assert text == (f"The config of image {registry.host}/labelled/api:3.0.0 is 2.0 MiB, past "
                        "Ferry's bound of 1.0 MiB: Ferry cannot read it."), text
        intent, result = ask(bot, "!deploy api 3.0.0 to qa", replies=2)
        assert result.splitlines()[-1] == (
            f"Preview: could not be made (The config of image {registry.host}/labelled/api:3.0.0 is "
            "2.0 MiB, past Ferry's bound of 1.0 MiB: Ferry cannot read it). The change itself is not "
            "held by it."), result
        assert "tag: 3.0.0" in remote_file(url, "apps/qa/api.yaml")
