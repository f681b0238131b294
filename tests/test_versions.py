"""Version text: hostile input refused before it reaches YAML, Git or HTTP; tags sorted for people."""
import pytest

from gitops.errors import InvalidVersion
from gitops.versions import (between, check_version, is_range, nearest_versions, registry_tag,
                             same_version, sort_tags)


@pytest.mark.parametrize("text", ["6.5.3", "v1.2.0", "1.0.0-rc.1", "1.2.3+build.5", "latest", "main_abc"])
def test_valid_versions_pass(text):
    assert check_version(text) == text


@pytest.mark.parametrize("text, why", [
    ("", "A version is needed"),
    ("../../etc/passwd", "not a chart version"),
    ("1.2.3/x", "not a chart version"),
    ("1..2", "not a chart version"),
    ("1.2.3\n", "no spaces"),
    ("1.2 3", "no spaces"),
    ("x" * 500, "at most 128"),
    ("６.５.３", "only ASCII"),  # full-width digits look like 6.5.3
    ("1.2.3\u200b", "only ASCII"),  # zero-width space
    (">=1.0.0", "is a range"),
    ("1.x", "is a range"),
    ("-rf", "not a chart version"),
    (".hidden", "not a chart version"),
])
def test_hostile_versions_refused(text, why):
    with pytest.raises(InvalidVersion, match=why) as e:
        check_version(text)
    assert "\n" not in str(e.value)
    assert len(str(e.value)) < 200


@pytest.mark.parametrize("text, expected", [
    (">=1.0.0", True), (">=1.0.0-alpha", True), ("1.x", True), ("1.2.*", True), ("*", True),
    ("~1.2", True), ("^2", True), (">= 1.8.0-rc.0", True), ("1.0 - 2.0", True),
    ("1.2.3", False), ("v1.2.3", False), ("latest", False), ("1.2", False),
])
def test_ranges(text, expected):
    assert is_range(text) is expected


def test_sort_newest_first_with_prereleases_and_others_apart():
    v = sort_tags(["1.0.0", "v1.2.0", "1.10.0", "1.9.0", "1.2.0-rc.1", "latest", "2.0.0-alpha", "main"])
    assert v.releases == ("1.10.0", "1.9.0", "v1.2.0", "1.0.0")
    assert v.prereleases == ("2.0.0-alpha", "1.2.0-rc.1")
    assert v.other == ("latest", "main")
    assert v.newest == "1.10.0"


def test_nearest_and_between():
    v = sort_tags(["6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.6.0", "7.0.0"])
    assert nearest_versions("6.5.4", v) == ["6.5.3", "6.5.2", "6.5.1"]
    assert nearest_versions("lates", sort_tags(["latest", "main"])) == ["latest"]
    assert between("6.5.0", "6.6.0", v) == ["6.6.0", "6.5.3", "6.5.2", "6.5.1"]
    assert between("6.6.0", "6.5.0", v) == []


def test_registry_tag_and_same_version():
    assert registry_tag("1.2.3+build") == "1.2.3_build"
    assert same_version("v1.2.3", "1.2.3")
    assert not same_version("1.2.3", "1.2.4")
    assert same_version("latest", "latest")


def test_nearest_prefers_releases_unless_a_prerelease_was_asked():
    v = sort_tags(["6.5.3", "6.6.0", "6.7.0-rc.1"])
    assert nearest_versions("9.9.9", v)[:2] == ["6.6.0", "6.5.3"]
    assert nearest_versions("6.7.0-rc.2", v)[0] == "6.7.0-rc.1"
