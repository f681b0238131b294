"""Chart version text: what a person may type, what Git holds, and how tags sort."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Optional

import semver

from .errors import InvalidVersion, nearest
from .model import ChartVersions

MAX_TAG = 128
# An OCI tag (distribution spec) with `+` allowed: Helm writes `1.2.3+build` as the tag `1.2.3_build`.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
_RANGE_CHARS = re.compile(r"[<>=~^*|,\s]")
_WILDCARD = re.compile(r"^v?\d+(\.(\d+|[xX*]))*$")


def check_version(text: str) -> str:
    """The version a person asked for, or ``InvalidVersion`` saying what is wrong with it."""
    if not isinstance(text, str) or not text:
        raise InvalidVersion("A version is needed, for example `6.5.3`.")
    shown = text if len(text) <= 40 and text.isprintable() else repr(text[:40]) + "…"
    if len(text) > MAX_TAG:
        raise InvalidVersion(f"`{shown}` is not a chart version: at most {MAX_TAG} characters.")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise InvalidVersion(
            f"`{shown}` is not a chart version: only ASCII letters, digits and `._+-`, no spaces."
        )
    if is_range(text):
        raise InvalidVersion(
            f"`{shown}` is a range: give one exact version, for example `6.5.3`."
        )
    if ".." in text or not _TAG.fullmatch(text):
        raise InvalidVersion(
            f"`{shown}` is not a chart version: use letters, digits and `._+-`, "
            "starting with a letter or digit, for example `6.5.3`."
        )
    return text


def registry_tag(version: str) -> str:
    """The OCI tag Helm stores a chart version under."""
    return version.replace("+", "_")


def is_range(text: str) -> bool:
    """True for a semver constraint (``>=1.0.0``, ``1.x``, ``*``), false for one version."""
    text = text.strip()
    if _RANGE_CHARS.search(text):
        return True
    return bool(_WILDCARD.match(text)) and any(c in text for c in "xX*")


@lru_cache(maxsize=65536)  # a table of a large fleet compares the same few hundred versions often
def parse(tag: str) -> Optional[semver.Version]:
    """The semantic version of a tag (``v`` prefix and Helm's ``_`` for ``+`` allowed), or None.
    ``semver.Version`` is immutable, so one parse may serve every caller."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    text = text.replace("_", "+")
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


@lru_cache(maxsize=65536)
def older(version: Optional[str], than: Optional[str]) -> bool:
    """``version`` is a semantic version older than ``than`` (False when either is not one)."""
    a, b = parse(version) if version else None, parse(than) if than else None
    return a is not None and b is not None and a < b


def same_version(a: str, b: str) -> bool:
    """``6.5.3`` and ``v6.5.3`` name the same chart version; other tags compare as text."""
    pa, pb = parse(a), parse(b)
    if pa is not None and pb is not None:
        return pa == pb and pa.build == pb.build
    return a == b


def sort_tags(tags: Iterable[str]) -> ChartVersions:
    """Releases and pre-releases newest first; tags that are not semver apart, by name.

    Each tag is parsed once and sorted by ``_precedence_key`` (plain tuples) rather than by comparing
    ``semver.Version`` objects pairwise, which costs a Python-level ``compare`` per comparison.
    Equal precedence (``1.2.0`` and ``v1.2.0``, or builds) ties by tag text, newest-first order
    reversing it like the rest.
    """
    releases, pre, other = [], [], []
    for tag in set(tags):
        v = parse(tag)
        if v is None:
            other.append(tag)
        else:
            (pre if v.prerelease else releases).append((_precedence_key(v), tag))
    releases.sort(reverse=True)
    pre.sort(reverse=True)
    return ChartVersions(tuple(t for _, t in releases), tuple(t for _, t in pre), tuple(sorted(other)))


def _precedence_key(v: semver.Version) -> tuple:
    """A tuple that orders like semver precedence (SemVer 2.0.0 §11; build metadata ignored).

    ``(major, minor, patch, is_release, identifiers)``: a pre-release sorts before its release;
    its dot-separated identifiers compare one by one, numeric ones numerically and below
    alphanumeric ones, which compare as text; when one list is a prefix of the other, the shorter
    sorts first (tuple comparison does exactly that)."""
    if not v.prerelease:
        return (v.major, v.minor, v.patch, 1, ())
    return (v.major, v.minor, v.patch, 0,
            tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in v.prerelease.split(".")))


def nearest_versions(wanted: str, available: ChartVersions, n: int = 3) -> list[str]:
    """The existing versions closest to one that does not exist."""
    target = parse(wanted)
    semver_tags = available.releases + available.prereleases
    if target is not None and semver_tags:
        def distance(tag: str):
            v = parse(tag)
            # A release is nearer than a pre-release unless a pre-release was asked for.
            return (bool(v.prerelease) != bool(target.prerelease), abs(v.major - target.major),
                    abs(v.minor - target.minor), abs(v.patch - target.patch))
        return sorted(semver_tags, key=distance)[:n]
    return nearest(wanted, available.all_tags, n)


def between(old: str, new: str, available: ChartVersions) -> list[str]:
    """Released versions newer than ``old`` up to and including ``new``, newest first."""
    lo, hi = parse(old or ""), parse(new)
    if hi is None:
        return []
    found = []
    for tag in available.releases:
        v = parse(tag)
        if v <= hi and (lo is None or v > lo):
            found.append(tag)
    return found
