"""A real Errbot (its test backend) on Ferry's real plugins folder, for the end-to-end tests."""
from __future__ import annotations

import queue
from contextlib import contextmanager
from pathlib import Path

from errbot.backends.test import TestBot as ErrbotTestBot
from ruamel.yaml import YAML

from devtools.serial_replies import one_reply_at_a_time
from gitops.identity import plain

PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
STORAGE_PLUGINS = str(Path(__file__).resolve().parent.parent / "storage")  # STORAGE="FerryShelf"
CORE_PLUGINS = ("ACLs", "Health", "Plugins", "Utils")  # FerryCommandNotFound answers unknown commands


def start_bot(tmp_path: Path, settings: dict, name: str = "ferry.yaml", **config) -> ErrbotTestBot:
    """Write ``settings`` as the GitOps settings file and start a bot on it; ``config`` is merged
    over Errbot's (BOT_ADMINS defaults to @alice; STORAGE/BOT_DATA_DIR for a restartable bot)."""
    path = tmp_path / name
    YAML().dump({"data_dir": str(tmp_path / "gitops"), **settings}, path)
    bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
        "GITOPS_CONFIG": str(path), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
        "CORE_PLUGINS": CORE_PLUGINS, "BOT_EXTRA_STORAGE_PLUGINS_DIR": STORAGE_PLUGINS, **config})
    bot.start(timeout=10)
    one_reply_at_a_time(bot)  # Errbot's test backend converts replies sent at once unsafely
    bot.bot.md = PlainMentions(bot.bot.md)
    return bot


class PlainMentions:
    """The test backend's converter, with Ferry's mentions as the bare ID, as every
    backend but Slack shows them: the tests read replies as a person would."""

    def __init__(self, markdown):
        self.markdown = markdown

    def convert(self, text: str) -> str:
        return self.markdown.convert(plain(text))


def ask(bot, command: str, replies: int = 1, timeout: float = 30) -> list:
    """Send a command, return its ``replies`` messages, and check nothing else was said."""
    bot.push_message(command)
    answers = [bot.pop_message(timeout=timeout) for _ in range(replies)]
    try:
        extra = bot.pop_message(timeout=0.3)
    except queue.Empty:
        return answers
    raise AssertionError(f"an unexpected extra reply to {command!r}: {extra!r}")


@contextmanager
def started_bot(tmp_path: Path, settings: dict, **config):
    bot = start_bot(tmp_path, settings, **config)
    try:
        yield bot
    finally:
        bot.stop()
