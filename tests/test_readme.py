"""The module map (docs/architecture.md) names every module of the code, once; the README and
docs/ link only to pages that exist (mkdocs checks docs/ itself, `make docs`)."""
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_map() -> str:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = page[page.index("# Architecture"):]
    return section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]


def test_the_module_map_names_every_module_once():
    files = [p for top in ("plugins", "backends", "storage") for p in (ROOT / top).rglob("*.py")]
    have = Counter(p.name for p in files)
    named = Counter(re.findall(r"(?<![\w.])(\w+\.py)\b", module_map()))
    named.pop("config.py", None)  # Errbot's configuration, at the top level
    assert named == have, {"missing": have - named, "not in the code or named twice": named - have}


def test_the_readme_links_to_pages_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in t]
    assert targets, "the README links to its docs pages"
    missing = [t for t in targets if t and not (ROOT / t).exists()]
    assert not missing, missing


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f": {p}" not in nav] == []
