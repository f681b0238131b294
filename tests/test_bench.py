"""The benchmark holds together: every measured area of ``bench/`` is run and has its rows in the
table, and a small run of ``python -m bench.run`` passes its own checks (every pin found, every
deploy pushed) and writes a full table. Nothing here is about how long anything took."""
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import bench
from bench import run

ROOT = Path(__file__).resolve().parent.parent


def measured_areas() -> set:
    """The modules of bench/ that measure an area (``measure(world)`` and ``rows(world)``)."""
    modules = (importlib.import_module(f"bench.{m.name}") for m in pkgutil.iter_modules(bench.__path__))
    return {m.__name__ for m in modules
            if callable(getattr(m, "measure", None)) and callable(getattr(m, "rows", None))}


def test_every_area_is_run_once_and_has_rows_in_the_table():
    ran = [area.__name__ for area in run.RUN]
    assert len(ran) == len(set(ran))
    assert set(ran) == measured_areas()
    assert {rows.__module__ for rows in run.TABLE} == set(ran)


def test_a_small_run_passes_its_checks_and_writes_every_row(tmp_path):
    output = tmp_path / "results.md"
    res = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--apps", "20", "--commits", "40",
                          "--tags", "5", "--runs", "1", "--deploys", "1", "--output", str(output)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert output.read_text(encoding="utf-8") == res.stdout.rstrip("\n") + "\n"
    lines = output.read_text(encoding="utf-8").splitlines()
    header = lines.index("| measurement | result (ms) | target | baseline / ratio |")
    rows = [line.strip("|").split(" | ") for line in lines[header + 2:] if line.startswith("|")]
    assert len(rows) > 30
    assert len({row[0] for row in rows}) == len(rows), "two rows measure the same thing"
    for measurement, result, target, baseline in rows:
        assert measurement.strip() and target.strip() and baseline.strip()
        float(result.replace(",", ""))  # a number, whatever it is
    # The README's side-by-side table finds each of issue 21's figures among these rows.
    from bench.sidebyside import FIGURES, table
    side = table(output, output).splitlines()[2:]
    assert len(side) == len(FIGURES) and not any("| — |" in line for line in side), side


def test_the_scale_preset_is_issue_21s_fleet_with_a_table_of_its_own():
    args = run.parse_args(["--scale"])
    assert (args.apps, args.commits, args.runs, args.deploys) == (10000, 20000, 2, 6)
    assert args.output == run.SCALE_RESULTS != run.RESULTS
    assert run.parse_args(["--scale", "--apps", "3000"]).apps == 3000  # a smaller run of the same rows
