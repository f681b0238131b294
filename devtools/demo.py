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

from devtools.artifacts import push_charts, push_image
from devtools.fluxrepo import DEMO_CHARTS, demo_files, demo_settings, seed_remote
from devtools.registry import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
BANNER = """
Ferry demo: a Flux repository ({remote}) with {apps} over dev → qa → stag → prod,
and a chart registry at {registry}. Try:
  !help            !versions            !versions podinfo        !diff qa prod
  !deploy podinfo 6.6.0 to dev          !promote podinfo to qa   !rollback podinfo on qa
  !versions podinfo qa                  !deploy redis@19.0.0 to prod --dry-run
  !versions web    !deploy web 1.3.0 to dev (its image tag)   !promote web to qa (chart + image)
Ctrl-D quits. Errbot's log lines go to {log}, not to this console.
"""


# web: one more app, on the podinfo chart, whose image tag is what people deploy (apps.web.track).
WEB_CHART = {"dev": "6.5.1", "qa": "6.5.0", "stag": "6.5.0", "prod": "6.5.0"}
WEB_IMAGE = {"dev": "1.2.0", "qa": "1.1.0", "stag": "1.0.0", "prod": "1.0.0"}
WEB_TAGS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]


def web_files(files: dict, registry: LocalRegistry) -> dict:
    """The demo repository with ``web`` added to each environment: a HelmRelease whose values
    name its image (``image: {repository, tag}``)."""
    files = dict(files)
    for env in WEB_CHART:
        files[f"apps/{env}/kustomization.yaml"] = files[f"apps/{env}/kustomization.yaml"].replace(
            "  - cert-manager.yaml\n", "  - cert-manager.yaml\n  - web.yaml\n")
        files[f"apps/{env}/web.yaml"] = WEB_RELEASE.format(
            registry=registry.url, host=registry.host, chart=WEB_CHART[env], tag=WEB_IMAGE[env])
    return files


WEB_RELEASE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: web
spec:
  type: oci
  insecure: true
  interval: 10m
  url: {registry}/charts
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  interval: 30m
  chart:
    spec:
      chart: podinfo
      version: {chart}
      sourceRef:
        kind: HelmRepository
        name: charts
  values:
    image:
      repository: {host}/images/web
      tag: {tag}
"""


def prepare(root: Path, registry: LocalRegistry) -> dict:
    """Push the demo charts and images, seed the Flux remote, write the settings; the bot's
    environment."""
    for chart, versions in DEMO_CHARTS.items():
        push_charts(registry.host, f"charts/{chart}", versions)
    push_image(registry.host, "images/web", WEB_TAGS)
    remote = seed_remote(root, web_files(demo_files(f"{registry.url}/charts"), registry))
    settings = root / "ferry.yaml"
    YAML().dump({**demo_settings(remote), "apps": {"web": {"track": "image"}},
                 "data_dir": str(root / "gitops")}, settings)
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
        print(BANNER.format(remote=env["DEMO_REMOTE"], apps=", ".join([*DEMO_CHARTS, "web"]),
                            registry=registry.url, log=env["FERRY_LOG_FILE"]), flush=True)
        errbot = Path(sys.executable).parent / "errbot"
        log = Path(env["FERRY_LOG_FILE"])
        with log.open("a") as log_file:  # what Errbot logs before its log file is set up goes there too
            code = subprocess.run([str(errbot), "--config", str(ROOT / "config.py")],
                                  env={**os.environ, **env}, cwd=ROOT, stderr=log_file).returncode
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            print(f"The bot stopped (exit {code}); the end of {log}:", *tail, sep="\n", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
