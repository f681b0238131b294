"""The core's plan holds: rooms import only rooms below them, no module imports in a circle, and
no module of the repository is past a size a newcomer reads in one sitting."""
import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "plugins" / "gitops"
# Lower first. A room may import its own modules and any room on a lower floor; rooms on one
# floor do not import each other. Each room's __init__ docstring says the same in words.
FLOORS = [
    {"identity", "addresses"},
    {"errors"},
    {"safeyaml"},
    {"model", "state"},
    {"inventory"},
    {"versions"},
    {"guard", "credentials"},
    {"forge_settings"},
    {"settings"},
    {"workspace"},
    {"ops"},
    {"sources"},
    {"forges"},
    {"flux", "feedback", "preview"},
    {"changes", "selection"},
    {"reports", "decisions", "previews", "queueing"},
    {"core"},
    {"check"},
]
MAX_LINES = 400


def floor(room: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room in rooms)


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set:
    """The gitops modules ``path`` imports, as dotted names."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.split(".")[0] != "gitops":
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names
                         if (CORE.parent / f"{target}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                         or (CORE.parent / f"{target}.{a.name}".replace(".", "/")).is_dir())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gitops")
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gitops"


@functools.lru_cache(maxsize=None)
def core_modules() -> dict:
    return {module_name(p): imports(p) for p in CORE.rglob("*.py")}


def test_every_room_of_the_core_is_on_a_floor():
    rooms = {room(m) for m in core_modules()} - {"gitops"}
    assert rooms <= set().union(*FLOORS), rooms - set().union(*FLOORS)


def test_rooms_import_only_rooms_below_them():
    upward = []
    for module, targets in core_modules().items():
        if module == "gitops":
            continue
        for target in targets:
            mine, theirs = room(module), room(target)
            if theirs == "gitops" or mine == theirs:
                continue
            if floor(theirs) >= floor(mine):
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_no_module_imports_in_a_circle():
    modules = core_modules()
    graph = {m: {t for t in ts if t in modules and t != m} for m, ts in modules.items()}
    # a package's __init__ is imported with any of its modules: only module-to-module edges count
    seen, on_path, circles = set(), [], []

    def visit(node):
        if node in on_path:
            circles.append(on_path[on_path.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if not node.startswith(nxt + ".") and not nxt.startswith(node + "."):
                visit(nxt)
        on_path.pop()

    for node in sorted(graph):
        visit(node)
    assert circles == []


def test_no_module_of_the_code_is_past_a_sitting():
    code = [p for top in ("plugins", "backends", "storage", "bench", "devtools") for p in (ROOT / top).rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in code if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
