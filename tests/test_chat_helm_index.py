"""Apps whose chart comes from a classic (HTTPS) Helm repository, through a real Errbot, a real
bare remote and real chart repositories served over HTTP (issue 13, item 1):

- ``web`` from an open repository on 127.0.0.1;
- ``api`` from a repository on 127.0.0.2 behind Basic auth, with credentials in the settings for
  that host only.

``!versions`` shows their newest versions from the index, deploys and promotions are checked
against the index before anything is written, and the refusals leave the remote as it was.
"""
from __future__ import annotations

import base64

import pytest

from devtools.helmrepo import HelmRepoServer, repository_files
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import git, remote_file, remote_path, remote_tip

PASSWORD = "private-charts-secret-77c1"
ENVIRONMENTS = ("dev", "qa")
PINS = {"web": {"dev": "1.0.0", "qa": "1.0.0"}, "api": {"dev": "2.0.0", "qa": "2.0.0"}}


def app_file(app: str, repository_url: str, version: str) -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: {app}-charts
  namespace: {app}
spec:
  interval: 1h
  url: {repository_url}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app}
  namespace: {app}
spec:
  interval: 30m
  chart:
    spec:
      chart: {app}
      version: {version}
      sourceRef:
        kind: HelmRepository
        name: {app}-charts
"""


@pytest.fixture(scope="module")
def repositories():
    with HelmRepoServer(repository_files({"web": ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"]})) as open_repo, \
            HelmRepoServer(repository_files({"api": ["2.0.0", "2.1.0"]}), address="127.0.0.2",
                           users={"ci": PASSWORD}) as private:
        yield open_repo, private


@pytest.fixture
def fleet(repositories, bare_remote, tmp_path, monkeypatch):
    open_repo, private = repositories
    urls = {"web": open_repo.url, "api": private.url}
    files = {f"apps/{env}/{app}.yaml": app_file(app, urls[app], PINS[app][env])
             for app in PINS for env in ENVIRONMENTS}
    url = bare_remote(files)
    monkeypatch.setenv("GITOPS_REGISTRY_CHARTS_USERNAME", "ci")
    monkeypatch.setenv("GITOPS_REGISTRY_CHARTS_PASSWORD", PASSWORD)
    settings = {"repo": {"url": url, "branch": "main"},
                "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS],
                "registry_credentials": [{"host": private.host, "env": "CHARTS", "plain_http": True}]}
    open_repo.received.clear()
    private.received.clear()
    with started_bot(tmp_path, settings) as bot:
        yield bot, url


def rows(text: str) -> dict:
    return {line.split()[0]: line.split()[1:] for line in text.splitlines()
            if line.split() and line.split()[0] in PINS}


def test_versions_show_the_newest_from_each_index(fleet, repositories):
    bot, url = fleet
    open_repo, private = repositories
    overview = ask(bot, "!versions")[0]
    table = rows(overview)
    assert table["web"] == ["1.0.0*", "1.0.0*", "1.2.0"], overview
    assert table["api"] == ["2.0.0*", "2.0.0*", "2.1.0"], overview
    one = ask(bot, "!versions web")[0]
    assert "1.2.0" in one and "2.0.0-rc.1" in one and "2024-05-01" in one, one
    # Credentials went to the private host only, and not in any reply.
    assert open_repo.credentials_received() == []
    assert set(private.credentials_received()) == {"Basic " + base64.b64encode(f"ci:{PASSWORD}".encode()).decode()}
    assert PASSWORD not in overview + one


def test_deploy_and_promote_are_checked_against_the_index(fleet):
    bot, url = fleet
    intent, result = ask(bot, "!deploy web 1.1.0 to dev", replies=2)
    assert result.startswith("Deployed web 1.0.0 → 1.1.0 in dev"), result
    diff = git("--git-dir", str(remote_path(url)), "show", "--format=", "--unified=0", "HEAD")
    assert [l for l in diff.splitlines() if l[:1] in "+-" and not l.startswith(("+++", "---"))] == [
        "-      version: 1.0.0", "+      version: 1.1.0"]
    intent, result = ask(bot, "!promote web to qa", replies=2)
    assert result.startswith("Promoted web 1.0.0 → 1.1.0 in qa (from dev)"), result
    assert "version: 1.1.0" in remote_file(url, "apps/qa/web.yaml")
    intent, result = ask(bot, "!deploy api 2.1.0 to dev", replies=2)
    assert result.startswith("Deployed api 2.0.0 → 2.1.0 in dev"), result


def test_a_version_missing_from_the_index_is_refused_and_the_remote_untouched(fleet, repositories):
    bot, url = fleet
    open_repo, private = repositories
    before = remote_tip(url)
    text = ask(bot, "!deploy web 1.3.0 to dev")[0]
    assert text == (f"Chart web has no version 1.3.0 in the Helm repository {open_repo.url}. "
                    "Nearest: 1.2.0, 1.1.0, 1.0.0."), text
    text = ask(bot, "!deploy api 9.0.0 to qa --dry-run")[0]
    assert f"Chart api has no version 9.0.0 in the Helm repository {private.url}." in text, text
    assert remote_tip(url) == before


def test_an_unreachable_repository_is_one_line_and_changes_nothing(bare_remote, tmp_path):
    with HelmRepoServer({}) as gone:
        dead = gone.url
    url = bare_remote({f"apps/{env}/web.yaml": app_file("web", dead, "1.0.0") for env in ENVIRONMENTS})
    settings = {"repo": {"url": url, "branch": "main"}, "registry_timeout": 2,
                "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}
    before = remote_tip(url)
    with started_bot(tmp_path, settings) as bot:
        overview = ask(bot, "!versions")[0]
        text = ask(bot, "!deploy web 1.1.0 to dev")[0]
    assert f"Helm repository {dead} cannot be reached: connection refused." in overview, overview
    assert text == f"Helm repository {dead} cannot be reached: connection refused.", text
    assert remote_tip(url) == before


def test_the_size_bound_comes_from_the_settings(repositories, bare_remote, tmp_path):
    open_repo, _ = repositories
    url = bare_remote({f"apps/{env}/web.yaml": app_file("web", open_repo.url, "1.0.0") for env in ENVIRONMENTS})
    settings = {"repo": {"url": url, "branch": "main"}, "helm_index": {"max_mb": 0.001},
                "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}
    before = remote_tip(url)
    with started_bot(tmp_path, settings) as bot:
        text = ask(bot, "!deploy web 1.1.0 to dev")[0]
    assert text == (f"The index of Helm repository {open_repo.url} is larger than 1,048 bytes: raise "
                    "helm_index.max_mb in the settings if that is expected."), text
    assert remote_tip(url) == before
