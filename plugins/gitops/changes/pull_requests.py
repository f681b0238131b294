"""What a pull request of Ferry's says, as pure functions: its branch name, title and body."""
from __future__ import annotations

import re
import secrets
from typing import Optional

from ..identity import plain
from ..model import Plan, Requester

MAX_DIFF = 20_000  # characters of diff in a body (GitHub takes 65,536 in all)


def branch_name(environment: str, app: str, version: str, suffix: Optional[str] = None) -> str:
    """``ferry/<env>/<app>-<version>-<id>``: one per change, a valid ref name whatever the app
    or version holds (``+``, ``@`` and the like become ``-``)."""
    def part(text: str) -> str:
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-") or "x"
        return re.sub(r"\.{2,}", ".", cleaned)[:60].removesuffix(".lock")
    return f"ferry/{part(environment)}/{part(app)}-{part(version)}-{suffix or secrets.token_hex(4)}"


def title_and_body(plan: Plan, message: str, requester: Requester, diff: str, preview: str = "",
                   approver: Optional[Requester] = None) -> tuple[str, str]:
    """The title (the commit's subject) and the Markdown body: what moves, who asked (and
    approved), the diff, the upgrade preview where there is one (``preview``: Markdown from the
    preview room, "" when none), the chat thread; last, the commit's trailers, so that a merge
    whose message is the pull request's description carries them into Git (history, `!audit`)."""
    title, _, trailers = message.partition("\n\n")
    who = _text(requester.name or requester.id)
    lines = [f"**{_text(title)}**", "", f"Asked by {who} in chat"
             + (f" ([the thread]({requester.link}))" if _safe_link(requester.link) else "") + "."]
    if approver is not None:
        lines.append(f"Approved in chat by {_text(approver.name or approver.id)}.")
    moved = [f"{p.part} {p.version or 'unpinned'} → {new}" for p, new in plan.also if p.version != new]
    if moved:
        lines.append("Also moves: " + ", ".join(moved) + ".")
    shown = diff if len(diff) <= MAX_DIFF else diff[:MAX_DIFF] + "\n… (cut)"
    lines += ["", "```diff", shown.rstrip().replace("```", "'''"), "```"]
    if preview.strip():
        lines += ["", "### Upgrade preview", "", preview.strip()]
    lines += ["", "---", "Opened by Ferry: merging it lands the change, and Ferry follows it in the chat "
              "thread. What is merged is what Flux applies.", "", trailers.strip()]
    return title, "\n".join(lines)


def _text(value: str) -> str:
    """A person's text in Markdown: one line, no markup or mention (``@``) it could make."""
    return re.sub(r"[\\`*_\[\]<>#|~@!]", lambda m: "\\" + m.group(0), " ".join(plain(value).split()))[:100]


def _safe_link(link: str) -> bool:
    return bool(re.fullmatch(r"https://[^\s()<>\[\]]{1,500}", link or ""))
