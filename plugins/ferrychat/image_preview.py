"""What an image tag upgrade brings (``gitops.preview.images.ImageChange``), in a few lines: the
whole of it for `!preview`, one line next to a change when there is something to say."""
from __future__ import annotations

from gitops.preview.images import ImageChange, ImagePreview

NOT_LABELLED = "not labelled"


def image_change(change: ImageChange) -> str:
    """The tags first, then each label both ways, the source and the compare link."""
    old, new = change.old, change.new
    head = f"Image `{change.image}`: {old.tag} → {new.tag}"
    if change.platform:
        head += f" (labels of {change.platform})"
    if not change.labelled:
        return (f"{head}.\nNeither image carries OCI labels (org.opencontainers.image.version, "
                ".revision, .created, .source): the registry says nothing more than the tags.")
    lines = [head + ":"]
    for name, before, after in (("version", old.version, new.version),
                                ("revision", old.revision, new.revision),
                                ("created", old.created, new.created)):
        if before or after:
            lines.append(f"• {name}: {_short(name, before)} → {_short(name, after)}")
    if change.source:
        lines.append(f"• source: {change.source}")
    if change.compare:
        lines.append(f"• changes: {change.compare}")
    elif change.source and old.revision and old.revision == new.revision:
        lines.append("• same revision: the source did not change.")
    return "\n".join(lines)


def full(p: ImagePreview) -> str:
    """`!preview` of an app tracked by its image tag: which app, part and environment, then the change."""
    return f"Preview of `{p.app}` {p.part} in {p.environment}:\n{image_change(p.change)}"


def short(p: ImagePreview) -> str:
    """One line next to a change, "" when the tags said it all: the version labels when they jump
    a major version or say what the tags do not, and the compare link."""
    if not p.noteworthy:
        return ""
    old, new = p.change.old, p.change.new
    line = f"Preview: image {_short('tag', old.tag)} → {_short('tag', new.tag)}"
    if p.major or p.versions_beyond_tags:
        line += f", version {_short('version', old.version)} → {_short('version', new.version)}"
        line += " (major version jump)" if p.major else ""
    if p.change.compare:
        line += f"; changes: {p.change.compare}"
    return line + "."


def _short(name: str, value: str) -> str:
    if not value:
        return NOT_LABELLED
    if name == "revision" and len(value) == 40 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return " ".join(value.split())[:80]
