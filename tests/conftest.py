"""Test set-up: the plugins folder and the repository root are importable, as under Errbot."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "plugins", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# Fixtures that start real parts (a registry, a bare Git remote) live in their own modules.
pytest_plugins = ["tests.fixtures_registry", "tests.fixtures_git", "tests.fixtures_prometheus",
                  "tests.fixtures_errbot"]
