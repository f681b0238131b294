"""What an upgrade brings, in chat: the whole preview (`!preview`, a file in the thread when it
does not fit a message) and the few lines said next to a change (its dry run, its approval
request, its result). Pure functions over ``gitops.preview.compare.Preview`` (a chart) and
``gitops.preview.images.ImagePreview`` (an image tag: ``ferrychat.image_preview`` words it).

Only keys and the charts' own defaults are shown, never the values an environment sets: its
values may be private (``show_values: channels``); schema errors are worded from the schema.
"""
from __future__ import annotations

from typing import Optional

from ferrychat import image_preview
from ferrychat.sizing import Table
from gitops.errors import shown
from gitops.preview.compare import DEFAULT_CHANGED, Preview
from gitops.preview.images import ImagePreview
from gitops.preview.keys import shown_path

MAX_SHORT_NOTES = 3
MAX_SHORT_KEYS = 5


def command(preview: Preview) -> str:
    return f"`!preview {preview.app} {preview.new_version} in {preview.environment}`"


def headline(p: Preview) -> str:
    jump = " (major version jump)" if p.major else ""
    app = f", app {p.old_app_version or '?'} → {p.new_app_version or '?'}" \
        if p.old_app_version != p.new_app_version else ""
    return f"chart {p.old_version} → {p.new_version}{jump}{app}"


def short(p, problem: str = "") -> str:
    """The lines said next to a change: "" when there is nothing to say (no major jump, no
    breaking note, nothing the environment sets at risk, no CRD change; for an image, no compare
    link and no version label jump); one line when the preview could not be made."""
    if p is None:
        return f"Preview: could not be made ({problem.rstrip('.')}). The change itself is not held by it." \
            if problem else ""
    if isinstance(p, ImagePreview):
        return image_preview.short(p)
    lines = []
    if p.major or p.deprecated or p.kube_version:
        extra = [("deprecated" if p.deprecated else ""),
                 (f"kubeVersion {_q(p.kube_version[0])} → {_q(p.kube_version[1])}" if p.kube_version else "")]
        lines.append(f"Preview: {headline(p)}" + "".join(f"; {e}" for e in extra if e) + ".")
    breaking = p.breaking_notes
    if breaking:
        shown_notes = "; ".join(f"[{n.kind or 'note'}] {n.version}: {_cut(n.text)}" for n in breaking[:MAX_SHORT_NOTES])
        more = f" (+{len(breaking) - MAX_SHORT_NOTES} more)" if len(breaking) > MAX_SHORT_NOTES else ""
        lines.append(f"Breaking notes: {shown_notes}{more}.")
    if p.removed_keys:
        keys = ", ".join(f"`{f.key}`" for f in p.removed_keys[:MAX_SHORT_KEYS])
        more = f" (+{len(p.removed_keys) - MAX_SHORT_KEYS} more)" if len(p.removed_keys) > MAX_SHORT_KEYS else ""
        lines.append(f"{p.environment} sets keys that are not in {p.new_version}'s values: {keys}{more}.")
    if p.schema_errors:
        path, problem_text = p.schema_errors[0]
        more = f" (+{len(p.schema_errors) - 1} more)" if len(p.schema_errors) > 1 else ""
        lines.append(f"{p.environment}'s values would fail Helm's schema check of {p.new_version}: "
                     f"`{path}` {problem_text}{more}.")
    crds = [f"{kind} {name}" for name, kind, _ in p.crds]
    if crds:
        lines.append(f"CRDs: {', '.join(crds[:5])}" + (" …" if len(crds) > 5 else "") + ".")
    if not lines:
        return ""
    if not lines[0].startswith("Preview:"):
        lines.insert(0, f"Preview: {headline(p)}.")
    lines.append(f"The whole preview: {command(p)}.")
    return "\n".join(lines)


def pull_request_section(p, problem: str = "") -> str:
    """The upgrade preview in a pull request's description (Markdown): the few lines a reviewer
    reads first, the whole under a fold (an image tag's: its few lines, whole); "" when there is
    nothing to preview."""
    if p is None:
        return f"Upgrade preview: {problem}" if problem else ""
    if isinstance(p, ImagePreview):
        return image_preview.full(p)
    whole = full(p)
    first = short(p) or f"Preview: {headline(p)}."
    return (f"{first}\n\n<details><summary>The whole preview</summary>\n\n{whole.head}\n\n"
            f"{whole.body}\n\n</details>")


def with_short(text: str, note: str) -> str:
    return f"{text}\n{note}" if note else text


def attachment(p, note: str) -> Optional[Table]:
    """The whole preview to attach beside a change's reply: a chart's with something to say; an
    image's is a few lines, all said by `!preview`, its link already in the note."""
    return full(p) if isinstance(p, Preview) and note else None


def full(p):
    """The whole preview: a message when it fits, else a file (``ferrychat.replies.table``); an
    image tag's, a few lines."""
    if isinstance(p, ImagePreview):
        return image_preview.full(p)
    head = f"Preview of `{p.app}` in {p.environment}: {headline(p)}."
    body = []
    if p.deprecated:
        body.append(f"The chart marks {p.new_version} deprecated.")
    if p.kube_version:
        body.append(f"kubeVersion: {_q(p.kube_version[0])} → {_q(p.kube_version[1])}.")
    if p.dependencies:
        body.append("Dependencies: " + ", ".join(
            f"{name} {old or '(none)'} → {new or '(removed)'}" for name, old, new in p.dependencies) + ".")
    body += _your_values(p)
    if p.schema_errors:
        body.append(f"{p.environment}'s values would fail Helm's schema check of {p.new_version}:")
        body += [f"- `{path}` {problem}" for path, problem in p.schema_errors]
    if p.unknown:
        body.append("Unknown to Ferry (Flux merges them; not read, never guessed): " + "; ".join(p.unknown) + ".")
    if p.crds:
        body.append("CRDs (crds/):")
        body += [f"- {kind} `{name}`" + (f" ({detail})" if detail else "") for name, kind, detail in p.crds]
    if p.images:
        body.append("Images (artifacthub.io/images):")
        body += [f"- {name}: {old or '(none)'} → {new or '(removed)'}" for name, old, new in p.images]
    body += _notes(p)
    if p.links:
        body.append("Links: " + " ".join(p.links))
    if p.problems:
        body.append("Not read: " + " ".join(p.problems))
    body.append("Default values (values.yaml):" if p.values_diff else "Default values (values.yaml): unchanged.")
    if p.values_diff:
        body.append(f"```\n{p.values_diff.rstrip()}\n```")
    summary = (f"Preview of `{p.app}` in {p.environment}, {p.old_version} → {p.new_version}: "
               f"{len(p.notes)} change note(s), {len(p.findings)} key(s) {p.environment} sets affected, "
               f"{len(p.schema_errors)} schema error(s)")
    return Table(summary, head, "\n".join(body),
                 f"preview-{_file(p.app)}-{_file(p.old_version)}-{_file(p.new_version)}.txt",
                 f"Preview of {p.app} {p.old_version} → {p.new_version} in {p.environment}",
                 short=with_short(head, short(p)))


def _your_values(p: Preview) -> list:
    if not p.findings:
        return []
    lines = [f"Keys {p.environment} sets:"]
    for f in p.findings:
        if f.kind == DEFAULT_CHANGED:
            lines.append(f"- `{f.key}`: its default changed {_value(f.old)} → {_value(f.new)} "
                         f"({p.environment} sets its own)")
        else:
            moved = f" (a key of that name is now at `{shown_path(f.moved_to)}`)" if f.moved_to else ""
            lines.append(f"- your `{f.key}` is not in {p.new_version}'s values{moved}")
    return lines


def _notes(p: Preview) -> list:
    if not p.notes:
        return ["Change notes: none (no `artifacthub.io/changes` between these versions)."]
    lines = [f"Change notes of every version after {p.old_version} up to {p.new_version}:"]
    for n in p.notes:
        links = "".join(f" ({name}: {url})" for name, url in n.links)
        lines.append(f"- {n.version} [{n.kind or 'note'}] {n.text}{links}")
    return lines


def _value(value) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{shown(text, 40)}`"


def _q(text: str) -> str:
    return f"`{shown(text, 40)}`" if text else "(none)"


def _cut(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _file(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text)[:60]
