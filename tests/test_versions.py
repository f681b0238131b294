"""Version text: hostile input refused before it reaches YAML, Git or HTTP; tags sorted for people."""
import pytest
import semver
from hypothesis import given, settings, strategies as st

from gitops.errors import InvalidVersion
from gitops.versions import (between, check_version, is_range, nearest_versions, parse,
                             _precedence_key, registry_tag, same_version, sort_tags)


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


# ---- the sort key against semver's own ordering ------------------------------------------------

_numeric = st.integers(0, 30).map(str) | st.integers(0, 10**20).map(str)
_alphanumeric = st.from_regex(r"\A[0-9]{0,2}[a-zA-Z-][0-9a-zA-Z-]{0,3}\Z")
_identifiers = st.lists(_numeric | _alphanumeric | st.sampled_from(["alpha", "beta", "rc", "0"]),
                        min_size=1, max_size=4).map(".".join)
_versions = st.builds(
    lambda core, pre, build: "%d.%d.%d" % core + (f"-{pre}" if pre else "") + (f"+{build}" if build else ""),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 12)),
    st.none() | _identifiers,
    st.none() | st.sampled_from(["build.5", "sha-1f2e", "7"]))


def _sign(x) -> int:
    return (x > 0) - (x < 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(_versions, min_size=2, max_size=40))
def test_precedence_key_orders_exactly_like_semver_compare(texts):
    versions = [semver.Version.parse(t) for t in texts]
    for a in versions:
        for b in versions:
            ka, kb = _precedence_key(a), _precedence_key(b)
            assert _sign((ka > kb) - (ka < kb)) == _sign(a.compare(b)), (str(a), str(b))


def _sort_tags_by_semver(tags):
    """What sort_tags returned before the key: semver.Version comparisons, ties by tag text."""
    releases, pre, other = [], [], []
    for tag in set(tags):
        v = parse(tag)
        if v is None:
            other.append(tag)
        else:
            (pre if v.prerelease else releases).append((v, tag))
    ordered = lambda pairs: tuple(t for _, t in sorted(pairs, key=lambda p: (p[0], p[1]), reverse=True))
    return ordered(releases), ordered(pre), tuple(sorted(other))


_tags = st.lists(st.one_of(
    _versions,
    _versions.map(lambda t: "v" + t.replace("+", "_")),
    st.sampled_from(["latest", "main", "1.2", "01.2.3", "1.2.3-01", "stable", "V1.0.0"])),
    min_size=1, max_size=300)


@settings(max_examples=40, deadline=None)
@given(_tags)
def test_sort_tags_gives_what_semver_comparisons_gave(tags):
    v = sort_tags(tags)
    assert (v.releases, v.prereleases, v.other) == _sort_tags_by_semver(tags)


def test_sort_tags_ties_and_identifier_rules():
    v = sort_tags(["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                   "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0-2", "1.0.0-10", "1.0.0-rc.1+b"])
    assert v.prereleases == ("1.0.0-rc.1+b", "1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-beta.2",
                             "1.0.0-beta", "1.0.0-alpha.beta", "1.0.0-alpha.1", "1.0.0-alpha",
                             "1.0.0-10", "1.0.0-2")
    assert sort_tags(["1.2.0", "v1.2.0", "1.2.0_b"]).releases == ("v1.2.0", "1.2.0_b", "1.2.0")
