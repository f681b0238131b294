"""`!help` through a real Errbot: Ferry's commands first, by capability, one line each with every
form and examples that the grammar accepts; Errbot's own commands only for those who may run
them, after Ferry's."""
import re
from pathlib import Path

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from ferrychat import grammar
from tests.ferrybot import ask, started_bot

APPS = ("podinfo", "redis", "cert-manager", "web", "api")
# each command's example, run through the grammar as the command itself would
PARSERS = {
    "versions": grammar.parse_versions,
    "diff": grammar.parse_diff,
    "audit": grammar.parse_audit,
    "deploy": grammar.parse_deploy,
    "preview": grammar.parse_preview,
    "promote": grammar.parse_promote,
    "rollback": grammar.parse_rollback,
    "pending": lambda args: grammar.parse_nothing("pending", args),
    "locks": lambda args: grammar.parse_nothing("locks", args),
    "approve": lambda args: grammar.parse_change_id("approve", args),
    "reject": grammar.parse_rejection,
    "lock": lambda args: grammar.parse_lock(args, APPS),
    "unlock": lambda args: grammar.parse_lock(args, APPS, command="unlock"),
}


ADMINS = {"allowusers": ("@alice",)}
# as config.py closes them: Errbot's own commands for admins, `!help` for everyone
ACLS = {"FerryHelp:help": {}, "FerryHelp:apropos": {},
        **{f"{plugin}:*": ADMINS for plugin in ("FerryLocks", "FerryHelp", "Plugins", "Utils", "Health")}}


@pytest.fixture
def bot(tmp_path, registry, charts, bare_remote):
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    with started_bot(tmp_path, demo_settings(url), ACCESS_CONTROLS=ACLS, HIDE_RESTRICTED_COMMANDS=True) as testbot:
        yield testbot


def as_user(bot, user):
    bot.bot.sender = bot.bot.build_identifier(user)


def command_lines(text: str) -> dict:
    """``name`` → its help line, for every bulleted line of `!help` (as the chat shows it)."""
    lines = [line[2:] for line in text.splitlines() if line.startswith("• !")]
    return {re.match(r"!([a-z]+)", line).group(1): line for line in lines}


def headings(text: str) -> list:
    return [line.strip() for line in text.splitlines()[1:] if line.strip() and not line.startswith("• ")]


def examples(line: str) -> list:
    """The arguments of each example after "e.g." on a help line."""
    said = line.partition("; e.g. ")[2]
    return [example.partition(" ")[2] for example in re.split(r"(?:^|, )!", said) if example]


def test_help_lists_ferry_first_by_capability_and_every_example_parses(bot):
    as_user(bot, "@bob")  # not an admin
    text = ask(bot, "!help")[0]
    assert headings(text) == ["See what runs where", "Preview a chart upgrade", "Deploy", "Promote along the chain", "Roll back",
                              "Approvals: changes into guarded environments wait for a second person",
                              "Help"]
    lines = command_lines(text)
    for command in ("versions", "diff", "audit", "preview", "deploy", "promote", "rollback", "pending",
                    "approve", "reject"):
        assert command in lines, command
    assert "lock" not in lines and "plugin" not in lines and "whoami" not in lines  # not bob's to run
    assert "Errbot" not in text
    for forms in ("chart|image|image:<container>", "--outdated", "--env <env>", "--dry-run"):
        assert forms in lines["deploy"] + lines["versions"], forms
    for name, line in lines.items():
        if name == "help":
            continue
        assert examples(line), f"`!{name}` has no example"
        for args in examples(line):
            PARSERS[name](args)  # a UsageError here: the help shows a form the grammar refuses


def test_admins_see_errbots_commands_after_ferrys(bot):
    as_user(bot, "@alice")  # the test bot's admin
    text = ask(bot, "!help")[0]
    lines = command_lines(text)
    assert {"lock", "unlock", "locks"} <= set(lines)
    for name in ("lock", "unlock", "locks"):
        for args in examples(lines[name]):
            PARSERS[name](args)
    assert headings(text)[-2:] == ["Help", "Errbot: the bot itself"]
    errbot_part = text[text.index("Errbot: the bot itself"):]
    assert "• !plugin activate" in errbot_part and "• !whoami" in errbot_part
    assert "!deploy" not in errbot_part and "!versions" not in errbot_part


def test_help_of_one_command_shows_every_form(bot):
    detail = ask(bot, "!help deploy")[0]
    assert "!deploy <app> <version> to <env>" in detail and "image:<container>" in detail
    assert "--dry-run" in detail



def test_the_readme_shows_help_as_it_answers(bot):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme[readme.index(">>> !help\n") + len(">>> !help\n"):readme.index("\n\n>>> !help deploy")]
    as_user(bot, "@bob")
    lines = lambda text: [line.strip() for line in text.splitlines() if line.strip()]
    # Errbot's test backend folds paragraphs, the demo's console keeps them: compare line by line
    assert lines(ask(bot, "!help")[0]) == lines(shown)
