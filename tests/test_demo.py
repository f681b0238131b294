"""`make demo` for real: the errbot process on the text backend with config.py, fed by a person's
keystrokes on stdin, against the demo registry and Flux remote it builds."""
import re
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

from errbot.backends.base import Message
from errbot.bootstrap import bot_config_defaults

from tests.backends import backend_module
from tests.fixtures_git import remote_log
from tests.races import all_at_once

ROOT = Path(__file__).resolve().parent.parent
SESSION = "\n".join([
    "!versions",
    "!deploy web 1.3.0 to dev",
    "!promote web to qa",
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
    assert "4 apps across dev, qa, stag, prod" in out
    assert re.search(r"web +1\.2\.0\* +1\.1\.0\* +1\.0\.0\* +1\.0\.0\* +1\.3\.0 +image", out), out
    # web is tracked by its image tag: a deploy changes the tag; a promotion the whole app
    assert "Deployed web image 1.2.0 → 1.3.0 in dev: commit" in out
    assert "Moves 2 part(s) in one commit: image 1.1.0 → 1.3.0, chart 6.5.0 → 6.5.1." in out
    assert "Deployed podinfo 6.5.3 → 6.6.0 in dev: commit" in out
    assert "Promoted podinfo 6.5.2 → 6.6.0 in qa (from dev)" in out
    assert "Rolled back podinfo 6.6.0 → 6.5.2 in qa" in out
    assert "Chart podinfo has no version 9.9.9 in the registry. Nearest: 6.6.0" in out
    assert "Traceback" not in out
    subjects = remote_log((data / "remote.git").as_uri(), fmt="%s")
    assert subjects[:3] == ["rollback podinfo 6.6.0 → 6.5.2 to qa",
                            "promote podinfo 6.5.2 → 6.6.0 from dev to qa",
                            "deploy podinfo 6.5.3 → 6.6.0 to dev"]


def test_the_console_keeps_line_breaks_and_paragraphs(tmp_path):
    """Errbot's own console renderer printed the approval request as "…(not demo).!approve …"
    and ran the paragraphs of `!help deploy` together; Ferry's console backend keeps both."""
    session = "!deploy podinfo 6.5.1 to prod\n!help deploy\n"
    run = subprocess.run([sys.executable, "-m", "devtools.demo", "--data", str(tmp_path / "demo")],
                         cwd=ROOT, input=session, capture_output=True, text=True, timeout=180)
    out = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line.rstrip() for line in out.splitlines()]
    # the approval request: its head, then the commands on their own line, then the diff
    head = next(i for i, line in enumerate(lines) if "prod needs a second person" in line)
    assert lines[head].endswith("(not demo).")
    assert re.fullmatch(r"!approve ([0-9a-f]{10}) or !reject \1:", lines[head + 1])
    assert lines[head + 2].strip() == "--- a/apps/prod/podinfo-values.yaml"
    # !help deploy: the docstring's paragraphs and line breaks
    first = next(i for i, line in enumerate(lines) if "pin a chart version or an image tag" in line)
    assert lines[first].endswith("!deploy web image 1.4.2 to qa")
    assert lines[first + 1] == ""
    assert lines[first + 2].startswith("Forms: ")
    assert lines[first + 3].startswith("The version must exist in the chart's registry.")
    assert "Traceback" not in out
    # Errbot's log lines go to the log file the banner names, never to the console
    assert "not to this console" in out
    assert not re.search(r"\b(INFO|WARNING|DEBUG)\b", out + run.stderr), (out + run.stderr)[-2000:]
    assert "Found Storage plugin" in (tmp_path / "demo" / "ferry.log").read_text()


def test_the_console_prints_replies_sent_at_once_whole(capsys):
    """Errbot's pool threads reply at once; the console's Markdown converter keeps the text it
    converts on itself: each reply must be printed whole, with its own text (FerryText prints one
    reply at a time)."""
    FerryText = backend_module("ferrytext").FerryText
    config = types.SimpleNamespace(BOT_ADMINS=("@alice",), BOT_IDENTITY={"username": "@ferry"},
                                   TEXT_DEMO_MODE=True, BOT_ASYNC=False)
    bot_config_defaults(config)
    console = FerryText(config)
    texts = [f"Deployed `app-{i:04d}` **6.5.{i}** to dev (commit `{i:07x}`)." for i in range(8)]
    printed = {}
    for text in texts:
        console.send_message(Message(text))
        printed[text] = capsys.readouterr().out
    errors = all_at_once(lambda text: console.send_message(Message(text)), texts)
    lines = Counter(capsys.readouterr().out.splitlines(keepends=True))
    assert not errors and lines == Counter({printed[t]: 100 for t in texts}), (
        errors[:3], [(line, n) for line, n in lines.items() if n != 100][:5])
