"""`make demo`: a demo Flux repository and a local chart registry, then Ferry on Errbot's text
backend so a newcomer can type commands. Everything lives under ./demo-data and is made anew."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from devtools.fluxrepo import DEMO_CHARTS, demo_files, demo_settings, seed_remote
from devtools.registry import LocalRegistry, push_charts

ROOT = Path(__file__).resolve().parent.parent
BANNER = """
Ferry demo: a Flux repository ({remote}) with {apps} over dev → qa → stag → prod,
and a chart registry at {registry}. Try:
  !help            !versions            !versions podinfo        !diff qa prod
  !deploy podinfo 6.6.0 to dev          !promote podinfo to qa   !rollback podinfo on qa
  !versions podinfo qa                  !deploy redis@19.0.0 to prod --dry-run
Ctrl-D quits. The bot's log is {log}.
"""


def prepare(root: Path, registry: LocalRegistry) -> dict:
    """Push the demo charts, seed the Flux remote, write the settings; the bot's environment."""
    for chart, versions in DEMO_CHARTS.items():
        push_charts(registry.host, f"charts/{chart}", versions)
    remote = seed_remote(root, demo_files(f"{registry.url}/charts"))
    settings = root / "ferry.yaml"
    YAML().dump({**demo_settings(remote), "data_dir": str(root / "gitops")}, settings)
    (root / "errbot").mkdir()
    return {"FERRY_BACKEND": "Text", "GITOPS_CONFIG": str(settings), "FERRY_ADMINS": "@demo",
            "FERRY_DATA_DIR": str(root / "errbot"), "FERRY_LOG_FILE": str(root / "ferry.log"),
            "DEMO_REMOTE": remote}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT / "demo-data"), help="where the demo lives")
    args = parser.parse_args(argv)
    root = Path(args.data).resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with LocalRegistry(root / "registry") as registry:
        env = prepare(root, registry)
        print(BANNER.format(remote=env["DEMO_REMOTE"], apps=", ".join(DEMO_CHARTS),
                            registry=registry.url, log=env["FERRY_LOG_FILE"]), flush=True)
        errbot = Path(sys.executable).parent / "errbot"
        return subprocess.run([str(errbot), "--config", str(ROOT / "config.py")],
                              env={**os.environ, **env}, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
