"""The one-line command log (ferrychat.replies.answers): what a person types cannot forge a line."""
import logging

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.errors import logged
from tests.ferrybot import ask, started_bot

FORGED = "U0ADMIN ran !deploy podinfo 6.6.0 to prod -> ok (3 ms)"
# a newline, a carriage return, Unicode's line separator, NEL, a terminal's erase-line
BREAKS = ("\n", "\r", "\u2028", "\x85", "\x1b[2K\r")


@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def test_a_command_cannot_forge_a_line_of_the_command_log(tmp_path, fleet_url, caplog):
    caplog.set_level(logging.INFO, logger="ferry.commands")
    with started_bot(tmp_path, demo_settings(fleet_url)) as bot:
        for brk in BREAKS:
            ask(bot, f"!versions nothing{brk}{FORGED}")
    lines = [r.getMessage() for r in caplog.records if r.name == "ferry.commands" and " ran !versions " in r.getMessage()]
    assert len(lines) == len(BREAKS), lines
    for line, brk in zip(lines, BREAKS):
        assert len(line.splitlines()) == 1 and "\x1b" not in line, repr(line)
        assert f"ran !versions nothing{logged(brk)}{FORGED}" in line, (line, brk)


def test_logged_escapes_what_ends_a_line_and_keeps_the_rest():
    assert logged("6.5.3 → 6.6.0 in qa, é") == "6.5.3 → 6.6.0 in qa, é"
    assert logged("a\nb") == "a\\x0ab"
    assert logged("a\\x0ab") == "a\\\\x0ab"  # typed as text, it stays distinct from an escape
    assert logged("\u2029\x00\x7f") == "\\u2029\\x00\\x7f"
    assert logged("x" * 300).endswith("…") and len(logged("x" * 300)) == 201
