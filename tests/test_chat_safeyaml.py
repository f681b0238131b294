"""YAML and JSON from outside through a real Errbot, a real bare remote, a real registry and Helm
repositories served over HTTP (issue 19, item 2): an alias bomb or a deeply nested index is one
line about its source, and the rest of the answer stands.

Each bot runs in a Python of its own with a memory limit (tests/bounded.py): before the loader,
these inputs ran the bot out of memory, and would take the test run with them.
"""
from __future__ import annotations

from devtools.fluxrepo import demo_files, demo_settings
from devtools.helmrepo import HelmRepoServer, repository_files
from tests.bounded import run_bounded
from tests.test_chat_helm_index import ENVIRONMENTS, app_file
from tests.fixtures_git import remote_tip

# A "billion laughs" of about 0.6 KB: nine levels of nine aliases each, 387 million strings.
LEVELS = "abcdefghi"
BOMB_LINES = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'] + [
    f"{name}: &{name} [{', '.join([f'*{LEVELS[i]}'] * 9)}]" for i, name in enumerate(LEVELS[1:])]


def indented(lines: list, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in lines)


def bot_replies(tmp: str, settings: dict, environ: dict, commands: list) -> list:
    """The replies to ``commands`` ([command, number of replies]) of a bot started on ``settings``."""
    import os
    from pathlib import Path

    from tests.ferrybot import ask, started_bot
    os.environ.update(environ)
    with started_bot(Path(tmp), settings) as bot:
        return [ask(bot, command, replies=n) for command, n in commands]


def test_an_alias_bomb_index_is_one_line_about_its_repository_and_the_rest_answers(bare_remote, tmp_path):
    bomb_index = ("apiVersion: v1\n" + "".join(line + "\n" for line in BOMB_LINES) +
                  "entries:\n  web:\n  - version: 1.0.0\n    urls: [web-1.0.0.tgz]\n"
                  "    description: *i\n").encode()
    assert len(bomb_index) < 700
    with HelmRepoServer({"index.yaml": bomb_index}) as bombed, \
            HelmRepoServer(repository_files({"api": ["2.0.0", "2.1.0"]})) as sound:
        files = {f"apps/{env}/{app}.yaml": app_file(app, url, version)
                 for app, url, version in (("web", bombed.url, "1.0.0"), ("api", sound.url, "2.0.0"))
                 for env in ENVIRONMENTS}
        url = bare_remote(files)
        settings = {"repo": {"url": url, "branch": "main"},
                    "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}
        before = remote_tip(url)
        overview, versions, deploy = run_bounded(
            "tests.test_chat_safeyaml:bot_replies", str(tmp_path), settings, {},
            [["!versions", 1], ["!versions web", 1], ["!deploy web 1.0.1 to dev", 1]])
    problem = (f"The index of {bombed.url} repeats more than 1,000,000 nodes and characters "
               "through YAML aliases (Ferry's bound: an alias bomb?): Ferry cannot read its versions.")
    assert problem in overview[0], overview
    assert [line.split()[:4] for line in overview[0].splitlines() if line.startswith("api")] == \
        [["api", "2.0.0*", "2.0.0*", "2.1.0"]], overview  # the other repository still answers
    assert problem in versions[0] and "\n" not in deploy[0] and problem in deploy[0], (versions, deploy)
    assert "sorry" not in (overview[0] + versions[0] + deploy[0]).lower()
    assert remote_tip(url) == before


def test_a_deeply_nested_json_index_is_one_line_about_its_repository(bare_remote, tmp_path):
    deep = b'{"apiVersion": "v1", "entries": {"web": [{"version": "1.0.0", "x": ' + \
        b"[" * 100_000 + b"]" * 100_000 + b"}]}}"
    with HelmRepoServer({"index.yaml": deep}) as nested, \
            HelmRepoServer(repository_files({"api": ["2.0.0", "2.1.0"]})) as sound:
        files = {f"apps/{env}/{app}.yaml": app_file(app, url, "1.0.0" if app == "web" else "2.0.0")
                 for app, url in (("web", nested.url), ("api", sound.url)) for env in ENVIRONMENTS}
        settings = {"repo": {"url": bare_remote(files), "branch": "main"},
                    "environments": [{"name": e, "path": f"apps/{e}"} for e in ENVIRONMENTS]}
        (overview,), = run_bounded("tests.test_chat_safeyaml:bot_replies", str(tmp_path), settings,
                                   {}, [["!versions", 1]])
    assert (f"The index of {nested.url} nests deeper than 100 levels (Ferry's bound): Ferry cannot "
            "read its versions.") in overview, overview
    assert any(line.split()[:4] == ["api", "2.0.0*", "2.0.0*", "2.1.0"]
               for line in overview.splitlines()), overview
    assert "sorry" not in overview.lower()


def test_a_values_alias_bomb_through_diff_is_one_line(registry, charts, bare_remote, tmp_path):
    """The bomb is a second patch of the release in prod's values file: discovery keeps the first
    (the version) and says it skipped the rest; the values, which need both, are one line."""
    files = demo_files(f"{registry.url}/charts")
    path = "apps/prod/podinfo-values.yaml"
    files[path] += ("---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
                    "  name: podinfo\n  namespace: podinfo\nspec:\n  values:\n" + indented(BOMB_LINES, 4))
    url = bare_remote(files)
    before = remote_tip(url)
    (diff,), (versions,) = run_bounded("tests.test_chat_safeyaml:bot_replies", str(tmp_path),
                                       demo_settings(url), {},
                                       [["!diff podinfo stag prod", 1], ["!versions podinfo", 1]])
    assert diff == (f"{path} repeats more than 1,000,000 nodes and characters through YAML aliases "
                    "(Ferry's bound: an alias bomb?): the Helm values it sets cannot be read. Fix it, "
                    "then ask again."), diff
    assert "\n" not in diff and "sorry" not in diff.lower()
    assert "6.5.1" in versions, versions  # stag, and the other apps, still answer
    assert remote_tip(url) == before
