"""What an image tag upgrade brings: each image's config labels read from the real registry
(``docker-registry``; images pushed as ``docker buildx`` pushes them, one platform or an index of
two), a hostile config blob refused in one line, and the compare link for each way a source label
writes its repository."""
import json

import pytest

from devtools.artifacts import push_image
from ferrychat.image_preview import image_change as rendered
from gitops.errors import ImageTagNotFound, UnreadableDocument
from gitops.model import ChartLocation
from gitops.preview.images import compare_link, image_change, web_address
from gitops.settings import RegistryCredentials
from gitops.sources.image_labels import MAX_CONFIG_BYTES
from gitops.sources.registry import RegistryClient

OLD_REVISION = "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
NEW_REVISION = "9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c"


def oci_labels(version, revision, source, created="2024-05-01T12:00:00Z"):
    return {"org.opencontainers.image.version": version, "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.source": source, "org.opencontainers.image.created": created}


@pytest.fixture
def client():
    client = RegistryClient(timeout=5.0)
    yield client
    client.close()


def location(registry, repository):
    return ChartLocation(registry.host, repository, insecure=True)


def test_an_upgrade_between_two_labelled_images_links_the_revisions_on_github(registry, client):
    push_image(registry.host, "preview/web", ["1.1.0", "1.2.0"], labels={
        "1.1.0": oci_labels("1.1.0", OLD_REVISION, "git@github.com:acme/web.git"),
        "1.2.0": oci_labels("1.2.0", NEW_REVISION, "https://github.com/acme/web",
                            "2024-06-02T08:30:00Z")})
    where = location(registry, "preview/web")
    old, new = client.image_labels(where, "1.1.0"), client.image_labels(where, "1.2.0")
    assert (old.label("version"), old.label("revision")) == ("1.1.0", OLD_REVISION)
    assert new.platform == "linux/amd64" and new.from_index == ""
    change = image_change(old, new)
    assert (change.old.version, change.new.version) == ("1.1.0", "1.2.0")
    assert change.new.created == "2024-06-02T08:30:00Z"
    assert change.source == "https://github.com/acme/web"
    assert change.compare == f"https://github.com/acme/web/compare/{OLD_REVISION}...{NEW_REVISION}"
    text = rendered(change)
    assert text.splitlines()[0] == f"Image `{registry.host}/preview/web`: 1.1.0 → 1.2.0:"
    assert f"• revision: {OLD_REVISION[:12]} → {NEW_REVISION[:12]}" in text
    assert f"• changes: {change.compare}" in text


def test_an_image_index_is_read_for_linux_amd64_and_says_so(registry, client):
    digests = push_image(registry.host, "preview/multi", ["2.0.0"], platforms=("linux/arm64", "linux/amd64"),
                         labels={"2.0.0": oci_labels("2.0.0", NEW_REVISION, "https://gitlab.com/acme/multi")})
    found = client.image_labels(location(registry, "preview/multi"), "2.0.0")
    assert found.platform == "linux/amd64"
    assert found.from_index == "linux/amd64 of 2 platforms"
    assert found.digest != digests["2.0.0"]  # the amd64 image's own manifest, not the index
    assert found.label("revision") == NEW_REVISION


def test_an_index_without_linux_amd64_is_read_for_its_first_image(registry, client):
    push_image(registry.host, "preview/arm", ["1.0.0"], platforms=("linux/arm64", "linux/s390x"),
               labels={"1.0.0": oci_labels("1.0.0", OLD_REVISION, "https://gitlab.com/acme/arm")})
    found = client.image_labels(location(registry, "preview/arm"), "1.0.0")
    assert found.platform == "linux/arm64"
    assert found.from_index == "the first of 2 platforms (none is linux/amd64)"
    change = image_change(found, found)
    assert change.platform == "linux/arm64 (the first of 2 platforms (none is linux/amd64))"
    assert change.compare == ""  # the same revision: nothing to compare
    assert "same revision" in rendered(change)


def test_images_without_labels_say_the_registry_knows_only_the_tags(registry, client):
    push_image(registry.host, "preview/bare", ["1.0", "1.1"], labels={"1.0": {}, "1.1": {}})
    where = location(registry, "preview/bare")
    change = image_change(client.image_labels(where, "1.0"), client.image_labels(where, "1.1"))
    assert (change.source, change.compare, change.new.revision) == ("", "", "")
    assert not change.labelled
    assert rendered(change).splitlines()[1].startswith("Neither image carries OCI labels")


def test_one_side_without_a_revision_compares_the_version_labels(registry, client):
    push_image(registry.host, "preview/half", ["v1.0.0", "v1.1.0"], labels={
        "v1.0.0": {"org.opencontainers.image.version": "v1.0.0",
                   "org.opencontainers.image.source": "https://github.com/acme/half"},
        "v1.1.0": oci_labels("v1.1.0", NEW_REVISION, "https://github.com/acme/half")})
    where = location(registry, "preview/half")
    change = image_change(client.image_labels(where, "v1.0.0"), client.image_labels(where, "v1.1.0"))
    assert change.compare == "https://github.com/acme/half/compare/v1.0.0...v1.1.0"
    assert "• revision: not labelled → 9b8c7d6e5f4a" in rendered(change)


def test_a_huge_config_blob_is_refused_in_one_line(registry, client):
    huge = json.dumps({"config": {"Labels": {"x": "y" * (2 * MAX_CONFIG_BYTES)}}}).encode()
    push_image(registry.host, "preview/huge", ["1.0.0"], config={"1.0.0": huge})
    with pytest.raises(UnreadableDocument) as refused:
        client.image_labels(location(registry, "preview/huge"), "1.0.0")
    message = refused.value.message
    assert message == (f"The config of image {registry.host}/preview/huge:1.0.0 is 2.0 MiB, past "
                       "Ferry's bound of 1.0 MiB: Ferry cannot read it.")
    assert "\n" not in message


def test_a_config_blob_larger_than_its_descriptor_says_is_cut_off_while_read(registry, client):
    huge = json.dumps({"config": {"Labels": {"x": "y" * (MAX_CONFIG_BYTES + 10)}}}).encode()
    push_image(registry.host, "preview/liar", ["1.0.0"], config={"1.0.0": huge}, config_size=200)
    with pytest.raises(UnreadableDocument) as refused:
        client.image_labels(location(registry, "preview/liar"), "1.0.0")
    assert refused.value.message == (f"The config of image {registry.host}/preview/liar:1.0.0 is past "
                                     "Ferry's bound of 1.0 MiB: Ferry cannot read it.")


def test_a_config_blob_that_is_not_json_is_refused_in_one_line(registry, client):
    push_image(registry.host, "preview/garbage", ["1.0.0"], config={"1.0.0": b"\x00not json{"})
    with pytest.raises(UnreadableDocument) as refused:
        client.image_labels(location(registry, "preview/garbage"), "1.0.0")
    assert refused.value.message.startswith(f"The config of image {registry.host}/preview/garbage:1.0.0 ")
    assert "\n" not in refused.value.message


def test_a_missing_tag_names_the_nearest_ones(registry, client, images):
    with pytest.raises(ImageTagNotFound) as missing:
        client.image_labels(location(registry, "images/web"), "1.3.0")
    assert "1.2.0" in missing.value.message


def test_labels_behind_credentials_are_read_with_that_host_s_own(registry_auth):
    push_image(registry_auth.host, "preview/private", ["1.0.0"], username=registry_auth.username,
               password=registry_auth.password,
               labels={"1.0.0": oci_labels("1.0.0", OLD_REVISION, "https://github.com/acme/private")})
    credentials = RegistryCredentials(registry_auth.host, registry_auth.username, registry_auth.password,
                                      (), "GITOPS_REGISTRY_TEST_USERNAME/PASSWORD", plain_http=True)
    client = RegistryClient([credentials], timeout=5.0)
    try:
        found = client.image_labels(location(registry_auth, "preview/private"), "1.0.0")
    finally:
        client.close()
    assert found.label("source") == "https://github.com/acme/private"


@pytest.mark.parametrize("source, address", [
    ("https://github.com/acme/web", "https://github.com/acme/web"),
    ("https://github.com/acme/web.git", "https://github.com/acme/web"),
    ("git@github.com:acme/web.git", "https://github.com/acme/web"),
    ("git+https://github.com/acme/web.git", "https://github.com/acme/web"),
    ("git+ssh://git@github.com/acme/web.git", "https://github.com/acme/web"),
    ("git://github.com/acme/web", "https://github.com/acme/web"),
    ("https://github.com/acme/web/tree/main/services/api", "https://github.com/acme/web"),
    ("https://ci:secret@github.com/acme/web", "https://github.com/acme/web"),
    ("ssh://git@ssh.github.com:443/acme/web.git", "https://github.com/acme/web"),
    ("https://gitlab.com/group/sub/project", "https://gitlab.com/group/sub/project"),
    ("git@gitlab.com:group/project.git", "https://gitlab.com/group/project"),
    ("https://gitlab.com/group/project/-/tree/main", "https://gitlab.com/group/project"),
    ("ssh://git@gitlab.example.com:2222/platform/web.git", "https://gitlab.example.com/platform/web"),
    ("http://gitlab.internal:8080/platform/web", "http://gitlab.internal:8080/platform/web"),
    ("https://bitbucket.org/acme/web", "https://bitbucket.org/acme/web"),
    ("", ""), ("not a url", ""), ("https://github.com/acme", ""), ("file:///src/web", ""),
    ("javascript:alert(1)//x", ""), ("https://github.com/acme/<!channel>", ""),
])
def test_a_source_label_in_each_form_becomes_its_web_address(source, address):
    assert web_address(source) == address


@pytest.mark.parametrize("source, link", [
    ("git@github.com:acme/web.git", "https://github.com/acme/web/compare/v1.0...v1.1"),
    ("git+https://gitlab.com/group/sub/project.git",
     "https://gitlab.com/group/sub/project/-/compare/v1.0...v1.1"),
    ("ssh://git@gitlab.example.com:2222/platform/web.git",
     "https://gitlab.example.com/platform/web/-/compare/v1.0...v1.1"),
    ("https://bitbucket.org/acme/web", ""),
    ("https://code.example.com/acme/web", ""),
])
def test_the_compare_link_is_github_s_or_gitlab_s_else_none(source, link):
    assert compare_link(web_address(source), "v1.0", "v1.1") == link


def test_a_ref_with_odd_characters_is_quoted_in_the_link():
    assert compare_link("https://github.com/acme/web", "release/1.0", "a b>c") == \
        "https://github.com/acme/web/compare/release/1.0...a%20b%3Ec"


def test_hostile_label_values_stay_on_their_line_and_short():
    from gitops.sources.image_labels import ImageLabels
    hostile = (("org.opencontainers.image.version", "1.0\n• changes: https://evil.example/" + "x" * 500),
               ("org.opencontainers.image.source", "https://github.com/acme/web\nhttps://evil.example"))
    old = ImageLabels("ghcr.io/acme/web", "1.0", "sha256:" + "a" * 64, "linux/amd64", "", hostile)
    new = ImageLabels("ghcr.io/acme/web", "1.1", "sha256:" + "b" * 64, "linux/amd64", "", ())
    change = image_change(old, new)
    assert change.source == "" and change.compare == ""  # a source with a line break is no address
    lines = rendered(change).splitlines()
    assert len(lines) == 2 and len(lines[1]) < 120
    assert lines[1].startswith("• version: 1.0 • changes: https://evil.example/xxx")


def test_a_pull_request_s_description_carries_an_image_tag_s_whole_preview():
    from ferrychat.previews import pull_request_section
    from gitops.preview.images import ImagePreview
    from gitops.sources.image_labels import ImageLabels
    sides = [ImageLabels("ghcr.io/acme/api", tag, "sha256:" + c * 64, "linux/amd64", "",
                         tuple(sorted(oci_labels(tag, revision, "https://github.com/acme/api").items())))
             for tag, revision, c in (("1.0.0", OLD_REVISION, "a"), ("1.1.0", NEW_REVISION, "b"))]
    found = ImagePreview("api", "qa", "image:app", image_change(*sides))
    section = pull_request_section(found).splitlines()
    assert section[:2] == ["Preview of `api` image:app in qa:", "Image `ghcr.io/acme/api`: 1.0.0 → 1.1.0:"]
    assert section[-1] == f"• changes: https://github.com/acme/api/compare/{OLD_REVISION}...{NEW_REVISION}"
