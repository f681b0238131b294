"""The README's module map ("How it is built") names every module of the code, once."""
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## How it is built"):]
    return section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]


def test_the_module_map_names_every_module_once():
    files = [p for top in ("plugins", "backends", "storage") for p in (ROOT / top).rglob("*.py")]
    have = Counter(p.name for p in files)
    named = Counter(re.findall(r"(?<![\w.])(\w+\.py)\b", module_map()))
    named.pop("config.py", None)  # Errbot's configuration, at the top level
    assert named == have, {"missing": have - named, "not in the code or named twice": named - have}
