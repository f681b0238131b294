"""What an image tag upgrade brings, as the registry knows it: each side's OCI labels (version,
revision, creation time, source) and, for a source on GitHub or GitLab, the link comparing the
two (pure: labels in, an ``ImageChange`` out)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit

from ..sources.image_labels import ImageLabels
from .compare import major_jump


@dataclass(frozen=True)
class ImageSide:
    """One tag's facts; "" where the image carries no such label."""

    tag: str
    version: str = ""
    revision: str = ""
    created: str = ""


@dataclass(frozen=True)
class ImageChange:
    image: str
    old: ImageSide
    new: ImageSide
    source: str = ""  # the source repository's web address, "" when the labels name none
    compare: str = ""  # the forge's compare link, "" when there is none to give
    platform: str = ""  # which image of an index was read ("" for a single image)

    @property
    def labelled(self) -> bool:
        """Whether either image carries any of the labels shown."""
        return bool(self.source) or any(fact for side in (self.old, self.new)
                                        for fact in (side.version, side.revision, side.created))


@dataclass(frozen=True)
class ImagePreview:
    """One environment's image tag upgrade of one app (``part``: ``image`` or ``image:<container>``)."""

    app: str
    environment: str
    part: str
    change: ImageChange

    @property
    def old_version(self) -> str:
        return self.change.old.tag

    @property
    def new_version(self) -> str:
        return self.change.new.tag

    @property
    def major(self) -> bool:
        """The version labels change major version (of minor under 0.x)."""
        return major_jump(self.change.old.version, self.change.new.version)

    @property
    def versions_beyond_tags(self) -> bool:
        """The version labels say what the tags do not (a tag ``main-3f2a9c1`` labelled 1.4.0)."""
        sides = (self.change.old, self.change.new)
        return all(s.version for s in sides) and any(s.version != s.tag for s in sides) \
            and sides[0].version != sides[1].version

    @property
    def noteworthy(self) -> bool:
        """Worth a line next to a change: a compare link, or version labels that jump a major
        version or say what the tags do not; else the tags said it all."""
        return bool(self.change.compare) or self.major or self.versions_beyond_tags


def image_change(old: ImageLabels, new: ImageLabels) -> ImageChange:
    """From ``old``'s image to ``new``'s. The compare link needs one source for both (the new
    image's, or the old one's when only it says) on GitHub or GitLab, and two different refs:
    the revisions when both images have one, else the version labels, else the tags."""
    sides = [ImageSide(i.tag, i.label("version"), i.label("revision"), i.label("created"))
             for i in (old, new)]
    sources = [web_address(i.label("source")) for i in (old, new)]
    source = sources[1] or sources[0]
    both_from_it = all(s in ("", source) for s in sources)
    refs = next(((a, b) for a, b in ((sides[0].revision, sides[1].revision),
                                     (sides[0].version, sides[1].version),
                                     (sides[0].tag, sides[1].tag)) if a and b), ("", ""))
    link = compare_link(source, *refs) if both_from_it and refs[0] != refs[1] else ""
    return ImageChange(new.image, sides[0], sides[1], source, link,
                       f"{new.platform} ({new.from_index})" if new.from_index else "")


_HOST_ALIASES = {"www.github.com": "github.com", "ssh.github.com": "github.com",
                 "altssh.gitlab.com": "gitlab.com", "www.gitlab.com": "gitlab.com"}
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?!//)(?P<path>[^\s]+)$")


def web_address(source: str) -> str:
    """The https (or http) address of a source repository as its label writes it: ``git@host:o/r``,
    ``ssh://git@host[:port]/o/r``, ``git+https://…``, ``git://…``, with or without ``.git``, a
    trailing slash, a user or a path into the tree; "" when it is not a repository's address."""
    text = (source or "").strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        return ""  # one address or none: urlsplit would quietly drop a line break
    scp = _SCP_LIKE.match(text)
    if scp and "://" not in text:
        scheme, host, path = "https", scp["host"], scp["path"]
    else:
        parts = urlsplit(text.removeprefix("git+"))
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return ""
        scheme = parts.scheme if parts.scheme in ("https", "http") else "https"
        host = parts.hostname if parts.scheme in ("ssh", "git") or parts.port is None \
            else f"{parts.hostname}:{parts.port}"
        path = parts.path
    host = _HOST_ALIASES.get(host.lower(), host.lower())
    segments = [s for s in path.split("/") if s]
    if _forge(host) == "github":
        segments = segments[:2]
    elif "-" in segments:  # GitLab: the project's path ends where /-/ (tree, blob, …) starts
        segments = segments[:segments.index("-")]
    if segments:
        segments[-1] = segments[-1].removesuffix(".git")
    if len(segments) < 2 or not all(re.fullmatch(r"[A-Za-z0-9_.~-]+", s) for s in segments):
        return ""
    return f"{scheme}://{host}/{'/'.join(segments)}"


def compare_link(source: str, old: str, new: str) -> str:
    """GitHub's ``/compare/<old>...<new>`` or GitLab's ``/-/compare/<old>...<new>`` of the
    repository at ``source`` (a ``web_address``), "" for any other host."""
    forge = _forge(urlsplit(source).hostname or "") if source else None
    if forge is None or not old or not new:
        return ""
    between = f"{quote(old, safe='/._-')}...{quote(new, safe='/._-')}"
    return f"{source}/compare/{between}" if forge == "github" else f"{source}/-/compare/{between}"


def _forge(host: str) -> Optional[str]:
    """``github`` for github.com, ``gitlab`` for gitlab.com and self-managed hosts named so."""
    if host == "github.com":
        return "github"
    if "gitlab" in host.split(":")[0]:
        return "gitlab"
    return None
