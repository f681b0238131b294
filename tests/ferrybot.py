"""A real Errbot (its test backend) on Ferry's real plugins folder, for the end-to-end tests."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from errbot.backends.test import TestBot as ErrbotTestBot
from ruamel.yaml import YAML

PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
CORE_PLUGINS = ("ACLs", "Help", "Health", "Plugins", "Utils", "CommandNotFoundFilter")


def start_bot(tmp_path: Path, settings: dict, name: str = "ferry.yaml", **config) -> ErrbotTestBot:
    """Write ``settings`` as the GitOps settings file and start a bot on it; ``config`` is merged
    over Errbot's (BOT_ADMINS defaults to @alice; STORAGE/BOT_DATA_DIR for a restartable bot)."""
    path = tmp_path / name
    YAML().dump({"data_dir": str(tmp_path / "gitops"), **settings}, path)
    bot = ErrbotTestBot(extra_plugin_dir=PLUGINS, extra_config={
        "GITOPS_CONFIG": str(path), "BOT_ADMINS": ("@alice",), "AUTOINSTALL_DEPS": False,
        "CORE_PLUGINS": CORE_PLUGINS, **config})
    bot.start(timeout=10)
    return bot


@contextmanager
def started_bot(tmp_path: Path, settings: dict, **config):
    bot = start_bot(tmp_path, settings, **config)
    try:
        yield bot
    finally:
        bot.stop()
