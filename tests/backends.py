"""Ferry's chat backends, imported as Errbot loads them: from their own folder under ``backends/``
(SlackV3's loader wants the backend's module alone in its file, so helpers sit beside it)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

BACKENDS = Path(__file__).resolve().parent.parent / "backends"


def backend_module(backend: str, module: str = ""):
    """``module`` (default: the backend's own) from ``backends/<backend>/``."""
    folder = str(BACKENDS / backend)
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(module or backend)
    finally:
        sys.path.remove(folder)
