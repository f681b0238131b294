"""The chat grammar as pure functions: command arguments in, a plain request out.

Every refusal is a ``UsageError`` whose message is the command's usage line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from gitops.errors import UnknownEnvironment, UsageError, shown

USAGE = {
    "versions": "`!versions [<app> | <glob>] [--outdated] [--env <env>]` or `!versions <app> <env>`",
    "diff": "`!diff <envA> <envB>` or `!diff <app> <envA> <envB>`",
    "deploy": "`!deploy <app> <version> to <env>` or `!deploy <app>@<version> to <env>` "
              "[--dry-run] [--force] [--queue]; `!deploy <app> chart|image|image:<container> <version> to <env>` "
              "names the part",
    "promote": "`!promote <app> [from <env>] to <env>` or `!promote <app>@<version> to <env>` "
               "[--dry-run] [--force] [--queue]; `!promote <app> chart|image|image:<container> to <env>` "
               "names the part",
    "rollback": "`!rollback <app> on <env> [to <version>]` [--dry-run] [--queue]; "
                "`!rollback <app> chart|image|image:<container> on <env>` names the part",
    "preview": "`!preview <app> <version> [in <env>]`, `!preview <app>@<version> [in <env>]` or "
               "`!preview <app> to <env>`",
    "approve": "`!approve <change id>` (`!pending` lists them)",
    "reject": "`!reject <change id> [reason]`",
    "pending": "`!pending`",
    "lock": "`!lock <env> [<app>] [reason]`",
    "unlock": "`!unlock <env> [<app>]`",
    "locks": "`!locks`",
    "audit": "`!audit [<env>] [N]`",
}
_CHANGE_ID = re.compile(r"^[0-9a-fA-F]{6,16}$")
# Which part of an app a command changes: its chart version, or the tag of (one container's) image.
_PART = re.compile(r"^(chart|image(:[A-Za-z0-9][A-Za-z0-9_./-]{0,62})?)$", re.IGNORECASE)
_FLAGS = {"--dry-run": "dry_run", "--force": "force", "--queue": "queue"}
MAX_AUDIT = 1000  # `!audit N`: a long list goes in a file (ferrychat.sizing); Git reads N commits


def usage_error(command: str, problem: str) -> UsageError:
    return UsageError(problem, USAGE[command])


def known_environment(command: str, name: str, settings):
    """The environment ``name`` names in ``settings`` (aliases too), or its one-line refusal with
    the command's usage."""
    try:
        return settings.environment(name)
    except UnknownEnvironment as e:
        raise usage_error(command, str(e)) from None


@dataclass(frozen=True)
class Request:
    app: str
    environment: str
    version: Optional[str] = None
    source: Optional[str] = None  # promote: the environment to take the version from
    dry_run: bool = False
    force: bool = False
    part: Optional[str] = None  # "chart", "image", "image:<container>"; None: what the app is tracked by
    queue: bool = False  # outside the environment's promotion windows: wait for the next opening


def part_word(word: str) -> Optional[str]:
    """``chart``, ``image`` or ``image:<container>`` as the core names parts, else None."""
    if not _PART.match(word):
        return None
    kind, sep, container = word.partition(":")
    return kind.lower() + sep + container


def _take_part(rest: list[str]) -> tuple[Optional[str], list[str]]:
    """The part named right after the app (``<app> image:web …``), and the words after it."""
    if len(rest) >= 2 and part_word(rest[1]) is not None:
        return part_word(rest[1]), [rest[0]] + rest[2:]
    return None, rest


def words(command: str, args: str) -> tuple[list[str], dict]:
    """Split arguments on whitespace and take the flags out."""
    flags, rest = {}, []
    for word in (args or "").split():
        if word.startswith("--"):
            if word.lower() not in _FLAGS:
                raise usage_error(command, f"Unknown option `{shown(word)}`.")
            flags[_FLAGS[word.lower()]] = True
        else:
            rest.append(word)
    if flags.get("queue") and (flags.get("dry_run") or flags.get("force")):
        other = "--dry-run" if flags.get("dry_run") else "--force"
        raise usage_error(command, f"`--queue` waits for the next window, `{other}` does not: give one of them.")
    return rest, flags


@dataclass(frozen=True)
class VersionsQuery:
    """What ``!versions`` asks for: one app (its environments, or with ``environment`` its history
    there), or the table of every app, narrowed by a glob over app names, to the apps behind,
    and to one environment's column."""

    app: Optional[str] = None
    environment: Optional[str] = None  # with ``app``: its history in that environment
    pattern: Optional[str] = None  # fnmatch glob over app names (a plain name with a filter: that app)
    outdated: bool = False
    column: Optional[str] = None  # --env: the one environment shown

    @property
    def table(self) -> bool:
        return self.app is None


_GLOB = re.compile(r"[*?\[]")


def parse_versions(args: str) -> VersionsQuery:
    """``[<app> | <glob>] [--outdated] [--env <env>]`` or ``<app> <env>``; flags anywhere."""
    rest, outdated, column = [], False, None
    tokens = (args or "").split()
    i = 0
    while i < len(tokens):
        word, lower = tokens[i], tokens[i].lower()
        if lower == "--outdated":
            outdated = True
        elif lower == "--env" or lower.startswith("--env="):
            if "=" in word:
                value = word.partition("=")[2]
            else:  # the next word is the environment
                i += 1
                value = tokens[i] if i < len(tokens) else ""
            if not value or value.startswith("--"):
                raise usage_error("versions", "Say which environment after `--env`.")
            if column is not None:
                raise usage_error("versions", "Give `--env` once.")
            column = value
        elif word.startswith("--"):
            raise usage_error("versions", f"Unknown option `{shown(word)}`.")
        else:
            rest.append(word)
        i += 1
    if len(rest) > 2:
        raise usage_error("versions", "Too many arguments.")
    filtered = outdated or column is not None
    if len(rest) == 2:
        if filtered or _GLOB.search(rest[0]):
            raise usage_error("versions", f"`{shown(rest[1])}` after a pattern or a filter: "
                                          "name the environment with `--env`.")
        return VersionsQuery(app=rest[0], environment=rest[1])
    if rest and not filtered and not _GLOB.search(rest[0]):
        return VersionsQuery(app=rest[0])
    return VersionsQuery(pattern=rest[0] if rest else None, outdated=outdated, column=column)


def parse_diff(args: str) -> list[str]:
    rest, flags = words("diff", args)
    if flags or len(rest) not in (2, 3):
        raise usage_error("diff", "Give two environments, and optionally an app before them.")
    return rest


def parse_deploy(args: str) -> Request:
    rest, flags = words("deploy", args)
    part, rest = _take_part(rest)
    if part is not None and "@" in rest[0]:
        raise usage_error("deploy", f"Give either `<app>@<version>` or `<app> {part} <version>`, not both.")
    app, version, rest = _app_and_version(rest, "deploy", version_word=True)
    env = _keyword(rest, "to", "deploy", "Say which environment: `to <env>`.")
    return Request(app, env, version, part=part, **flags)


def parse_promote(args: str) -> Request:
    rest, flags = words("promote", args)
    part, rest = _take_part(rest)
    app, version, rest = _app_and_version(rest, "promote", version_word=False)
    source = None
    if len(rest) >= 2 and rest[0].lower() == "from":
        source, rest = rest[1], rest[2:]
    env = _keyword(rest, "to", "promote", "Say which environment to promote to: `to <env>`.")
    if source and version:
        raise usage_error("promote", "Give either `<app>@<version>` or `from <env>`, not both.")
    return Request(app, env, version, source=source, part=part, **flags)


def parse_preview(args: str) -> Request:
    """``<app> <version> [in <env>]``, ``<app>@<version> [in <env>]`` or ``<app> to <env>`` (the
    promotion's version); ``environment`` None: the first environment running the app."""
    rest, flags = words("preview", args)
    if flags:
        raise usage_error("preview", "`!preview` takes no options.")
    if len(rest) >= 1 and "@" not in rest[0] and len(rest) >= 2 and rest[1].lower() == "to":
        return Request(rest[0], _keyword(rest[1:], "to", "preview", "Say which environment: `to <env>`."))
    app, version, rest = _app_and_version(rest, "preview", version_word=True)
    if not rest:
        return Request(app, None, version)
    return Request(app, _keyword(rest, "in", "preview", "Say which environment: `in <env>`."), version)


def parse_rollback(args: str) -> Request:
    rest, flags = words("rollback", args)
    if flags.get("force"):
        raise usage_error("rollback", "`--force` does not apply to a rollback.")
    if not rest:
        raise usage_error("rollback", "Say which app to roll back.")
    part, rest = _take_part(rest)
    app, rest = rest[0], rest[1:]
    if len(rest) < 2 or rest[0].lower() not in ("on", "in"):
        raise usage_error("rollback", "Say which environment: `on <env>`.")
    env, rest = rest[1], rest[2:]
    version = None
    if rest:
        if len(rest) != 2 or rest[0].lower() != "to":
            raise usage_error("rollback", f"Unexpected `{shown(' '.join(rest))}`.")
        version = rest[1]
    return Request(app, env, version, part=part, **flags)


def _app_and_version(rest: list[str], command: str, version_word: bool):
    if not rest:
        raise usage_error(command, "Say which app.")
    first = rest[0]
    if "@" in first:
        app, _, version = first.partition("@")
        if not app or not version:
            raise usage_error(command, f"`{shown(first)}` is not `<app>@<version>`.")
        return app, version, rest[1:]
    if version_word:
        if len(rest) < 2 or rest[1].lower() == "to":
            raise usage_error(command, "Say which version.")
        return first, rest[1], rest[2:]
    return first, None, rest[1:]


def _keyword(rest: list[str], keyword: str, command: str, missing: str) -> str:
    if len(rest) < 2 or rest[0].lower() != keyword:
        raise usage_error(command, missing)
    if len(rest) > 2:
        raise usage_error(command, f"Unexpected `{shown(' '.join(rest[2:]))}` after the environment.")
    return rest[1]


def parse_nothing(command: str, args: str) -> None:
    if (args or "").strip():
        raise usage_error(command, f"`!{command}` takes no arguments.")


def parse_change_id(command: str, args: str) -> str:
    rest, flags = words(command, args)
    if flags or len(rest) != 1:
        raise usage_error(command, "Give one change id.")
    if not _CHANGE_ID.match(rest[0]):
        raise usage_error(command, f"`{shown(rest[0])}` is not a change id (hex digits, as `!pending` shows it).")
    return rest[0].lower()


def parse_rejection(args: str) -> tuple[str, str]:
    first, _, reason = (args or "").strip().partition(" ")
    return parse_change_id("reject", first), " ".join(reason.split())[:200]


def parse_lock(args: str, apps, command: str = "lock") -> tuple[str, Optional[str], str]:
    """``<env> [<app>] [reason]``: the second word is an app when it names one."""
    rest = (args or "").split()
    if not rest:
        raise usage_error(command, "Say which environment.")
    env, rest = rest[0], rest[1:]
    known = {a.lower(): a for a in apps}
    app = known.get(rest[0].lower()) if rest else None
    if app:
        rest = rest[1:]
    reason = " ".join(rest)[:200]
    if command == "unlock" and reason:
        raise usage_error(command, f"Unexpected `{shown(reason)}`: no app by that name.")
    return env, app, reason


def parse_audit(args: str) -> tuple[Optional[str], int]:
    rest, flags = words("audit", args)
    env, count = None, 10
    if flags or len(rest) > 2:
        raise usage_error("audit", "Too many arguments.")
    for word in rest:
        if word.isdigit():
            count = int(word)
        elif env is None:
            env = word
        else:
            raise usage_error("audit", f"Unexpected `{shown(word)}`.")
    if not 1 <= count <= MAX_AUDIT:
        raise usage_error("audit", f"Give a count from 1 to {MAX_AUDIT:,}.")
    return env, count
