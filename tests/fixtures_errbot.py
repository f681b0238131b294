"""Errbot's test bot cleaned up after each test.

``errbot.backends.test.TestBot`` makes a data folder with ``mkdtemp()`` and adds a file handler
for its ``log.txt`` there to the root logger, and takes neither away: every later test's bot then
logged into every earlier bot's file too (up to 20 MB each), and a few hundred runs of the suite
left 13,000 such folders, 80 GB, until the disk was full. After each test the handlers it added
for such a file are closed and taken off, and their folders removed."""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def errbot_log_files():
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        if not isinstance(handler, logging.FileHandler):
            continue
        path = Path(handler.baseFilename)
        root.removeHandler(handler)
        handler.close()
        folder = path.parent
        # Only a folder mkdtemp() made for a test bot: the system's temporary folder, "tmp…".
        if path.name == "log.txt" and folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("tmp"):
            shutil.rmtree(folder, ignore_errors=True)
