"""`make demo` for real: the errbot process on the text backend with config.py, fed by a person's
keystrokes on stdin, against the demo registry and Flux remote it builds."""
import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures_git import remote_log

ROOT = Path(__file__).resolve().parent.parent
SESSION = "\n".join([
    "!versions",
    "!deploy podinfo 6.6.0 to dev",
    "!promote podinfo to qa",
    "!rollback podinfo on qa",
    "!deploy podinfo 9.9.9 to dev",
]) + "\n"


def test_demo_session(tmp_path):
    data = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "devtools.demo", "--data", str(data)], cwd=ROOT,
                         input=SESSION, capture_output=True, text=True, timeout=180)
    out = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "3 apps across dev, qa, stag, prod" in out
    assert "Deployed podinfo 6.5.3 → 6.6.0 in dev: commit" in out
    assert "Promoted podinfo 6.5.2 → 6.6.0 in qa (from dev)" in out
    assert "Rolled back podinfo 6.6.0 → 6.5.2 in qa" in out
    assert "Chart podinfo has no version 9.9.9 in the registry. Nearest: 6.6.0" in out
    assert "Traceback" not in out
    subjects = remote_log((data / "remote.git").as_uri(), fmt="%s")
    assert subjects[:3] == ["rollback podinfo 6.6.0 → 6.5.2 to qa",
                            "promote podinfo 6.5.2 → 6.6.0 from dev to qa",
                            "deploy podinfo 6.5.3 → 6.6.0 to dev"]
