"""The Git token over real smart HTTP (git http-backend behind a local server): it goes to the
remote's own host only, and a redirect to another host gets nothing and changes nothing."""
from __future__ import annotations

import logging
import shutil
import subprocess

import pytest

from gitops.errors import GitUnavailable
from gitops.model import Requester
from gitops.workspace import Workspace, git_environment
from gitops.workspace.process import process_env
from tests.fixtures_git import remote_file, remote_log, remote_path, remote_tip
from tests.git_http_server import git_http  # noqa: F401 (a fixture)

TOKEN = "ghp_T0kenForTheRealHostOnly"
ALICE = Requester("U024BE7LH", "Alice Liddell", "alice@example.com")
FILES = {"apps/dev/podinfo.yaml": "version: 6.5.0\n", "README.md": "flux repo\n"}
MESSAGE = "deploy podinfo 6.5.0 → 6.5.3 to dev\n\nEnvironment: dev\n"


def edit(tree):
    return {"apps/dev/podinfo.yaml": "version: 6.5.3\n"}


@pytest.fixture
def workspace(tmp_path):
    made = []

    def make(url: str, name: str = "clone") -> Workspace:
        made.append(Workspace(url, "main", tmp_path / "repos" / name, fetch_interval=0,
                              git_env=git_environment(TOKEN, helper_dir=tmp_path / "helper"),
                              secrets=[TOKEN], timeout=30))
        return made[-1]

    yield make
    for ws in made:
        ws.close()


@pytest.fixture
def two_hosts(bare_remote, git_http, tmp_path):  # noqa: F811
    """Ferry's remote on 127.0.0.1 and a copy of it on another host (127.0.0.2), each asking
    for the token; (real server, other server, Ferry's URL, the other's bare repository)."""
    url = bare_remote(FILES)
    bare = remote_path(url)
    other_root = tmp_path / "other-host"
    shutil.copytree(bare, other_root / bare.name)
    real = git_http(bare.parent, TOKEN, "127.0.0.1")
    other = git_http(other_root, TOKEN, "127.0.0.2")
    return real, other, real.url(bare.name), other_root / bare.name


def askpass(prompt: str, remote: str) -> subprocess.CompletedProcess:
    env = process_env(git_environment(TOKEN), remote)
    return subprocess.run([env["GIT_ASKPASS"], prompt], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("prompt, answer", [
    ("Username for 'https://git.example.com': ", "x-access-token\n"),
    ("Password for 'https://x-access-token@git.example.com': ", TOKEN + "\n"),
    ("Password for 'https://git.example.com': ", TOKEN + "\n"),
    ("Password for 'https://Git.Example.COM': ", TOKEN + "\n"),  # as the settings spell it
])
def test_askpass_answers_the_remote_s_own_host(prompt, answer):
    res = askpass(prompt, "https://git.EXAMPLE.com/acme/flux.git")
    assert (res.returncode, res.stdout) == (0, answer)


@pytest.mark.parametrize("prompt, remote", [
    ("Password for 'https://x-access-token@evil.example.net': ", "https://git.example.com/flux.git"),
    ("Username for 'https://evil.example.net': ", "https://git.example.com/flux.git"),
    ("Password for 'https://git.example.com.evil.net': ", "https://git.example.com/flux.git"),
    ("Password for 'https://git.example.com@evil.net': ", "https://git.example.com/flux.git"),
    ("Password for 'https://git.example.com:8443': ", "https://git.example.com/flux.git"),
    ("Password for 'http://git.example.com': ", "https://git.example.com/flux.git"),  # in clear
    ("Password for 'https://127.0.0.2:8080': ", "https://127.0.0.1:8080/flux.git"),
    ("Password for 'https://git.example.com': ", "git@git.example.com:flux.git"),  # an SSH remote
    ("Password for 'https://git.example.com': ", "file:///srv/flux.git"),
    ("Enter passphrase for key '/root/.ssh/id_ed25519': ", "https://git.example.com/flux.git"),
    ("git.example.com", "https://git.example.com/flux.git"),
])
def test_askpass_gives_nothing_to_any_other_host_or_prompt(prompt, remote):
    res = askpass(prompt, remote)
    assert res.returncode != 0 and res.stdout == ""


def test_the_token_reaches_the_remote_s_own_host_over_smart_http(two_hosts, workspace, caplog):
    real, other, url, _ = two_hosts
    ws = workspace(url)
    with caplog.at_level(logging.DEBUG):
        assert ws.head() == remote_tip(url.replace(real.base, "file://" + str(real.root)))
        sha, _ = ws.change(edit, author=ALICE, message=MESSAGE)
    bare = f"file://{real.root}/{url.rsplit('/', 1)[1]}"
    assert remote_tip(bare) == sha and remote_file(bare, "apps/dev/podinfo.yaml") == "version: 6.5.3"
    assert real.received(TOKEN) and not other.paths
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("when", ["first contact", "after a clone"])
def test_a_redirect_to_another_host_gets_no_token_and_changes_nothing(
        two_hosts, workspace, caplog, status, when):
    real, other, url, other_bare = two_hosts
    bare = f"file://{real.root}/{url.rsplit('/', 1)[1]}"
    ws = workspace(url)
    if when == "after a clone":
        ws.head()
    before, other_before = remote_log(bare), remote_log(f"file://{other_bare}")
    real.redirect_to, real.redirect_status = other.base, status
    with caplog.at_level(logging.DEBUG):
        for attempt in (lambda: ws.head(), lambda: ws.change(edit, author=ALICE, message=MESSAGE)):
            with pytest.raises(GitUnavailable) as caught:
                attempt()
            text = str(caught.value)
            assert "\n" not in text and "redirect" in text and url in text and TOKEN not in text
    assert not other.received(TOKEN) and not other.paths  # never even asked
    assert remote_log(bare) == before and remote_log(f"file://{other_bare}") == other_before
    assert TOKEN not in caplog.text


def test_through_the_bot_a_redirected_remote_answers_one_line_and_gets_no_token(
        tmp_path, registry, charts, bare_remote, git_http, monkeypatch, caplog):  # noqa: F811
    """The real plugins on Errbot's test backend, the token from the environment as in
    production: a deploy over smart HTTP lands; once the remote redirects to another host, the
    next deploy is one line, the token goes nowhere else, and neither remote moves."""
    from devtools.fluxrepo import demo_files, demo_settings
    from tests.ferrybot import ask, started_bot

    bare = remote_path(bare_remote(demo_files(f"{registry.url}/charts")))
    other_root = tmp_path / "other-host"
    shutil.copytree(bare, other_root / bare.name)
    real = git_http(bare.parent, TOKEN, "127.0.0.1")
    other = git_http(other_root, TOKEN, "127.0.0.2")
    monkeypatch.setenv("GITOPS_GIT_TOKEN", TOKEN)
    with caplog.at_level(logging.DEBUG), started_bot(tmp_path, demo_settings(real.url(bare.name))) as bot:
        intent, done = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        assert done.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa"), done
        assert real.received(TOKEN)
        before = remote_log(f"file://{bare}")
        real.redirect_to = other.base
        replies = ask(bot, "!deploy podinfo 6.5.2 to stag", replies=2)  # the intent, the refusal
        text = replies[-1]
        assert "\n" not in text.strip() and "redirect" in text and TOKEN not in text, text
    assert not other.paths and not other.received(TOKEN)
    assert remote_log(f"file://{bare}") == before
    assert remote_log(f"file://{other_root / bare.name}") == before[1:]
    assert TOKEN not in caplog.text


# ---- issue 19, item 3: the Git token goes to repo.url's host only ------------------------------

OTHER_TOKEN = "glpat-EdgeHostsOwnToken"


def two_host_settings(tmp_path, main_url: str, edge_url: str, **extra) -> dict:
    return {"repo": {"url": main_url, "branch": "main"}, "data_dir": str(tmp_path / "data"),
            "environments": [{"name": "dev", "path": "apps/dev"},
                             {"name": "edge", "path": "apps/dev", "repo": edge_url}], **extra}


def test_an_environment_on_another_git_host_never_gets_repo_url_s_token(two_hosts, tmp_path):
    """`repo.url` on 127.0.0.1, an environment's repository on 127.0.0.2 (which would take the
    token): without credentials of its own it is asked with none, and says so in one line."""
    from gitops.core import GitOps
    from gitops.errors import GitUnauthorized
    from gitops.settings import parse_settings

    real, other, url, other_bare = two_hosts
    edge = other.url(other_bare.name)
    core = GitOps(parse_settings(two_host_settings(tmp_path, url, edge), {"GITOPS_GIT_TOKEN": TOKEN}),
                  fetch_interval=0)
    try:
        assert core.workspaces[core.settings.environment("dev").repo].head()
        with pytest.raises(GitUnauthorized) as e:
            core.workspaces[core.settings.environment("edge").repo].head()
    finally:
        for ws in core.workspaces.values():
            ws.close()
    assert "\n" not in str(e.value) and TOKEN not in str(e.value)
    assert real.received(TOKEN)
    assert other.paths and not other.received(TOKEN)


def test_another_git_host_gets_its_own_token_and_only_it(bare_remote, git_http, tmp_path):  # noqa: F811
    from gitops.core import GitOps
    from gitops.settings import parse_settings

    bare = remote_path(bare_remote(FILES))
    edge_root = tmp_path / "edge-host"
    shutil.copytree(bare, edge_root / bare.name)
    real = git_http(bare.parent, TOKEN, "127.0.0.1")
    other = git_http(edge_root, OTHER_TOKEN, "127.0.0.2")
    settings = two_host_settings(tmp_path, real.url(bare.name), other.url(bare.name),
                                 git_credentials=[{"host": f"127.0.0.2:{other.port}", "env": "EDGE"}])
    core = GitOps(parse_settings(settings, {"GITOPS_GIT_TOKEN": TOKEN, "GITOPS_GIT_EDGE_TOKEN": OTHER_TOKEN}),
                  fetch_interval=0)
    try:
        for env in ("dev", "edge"):
            ws = core.workspaces[core.settings.environment(env).repo]
            assert ws.head()
            ws.change(edit, author=ALICE, message=MESSAGE.replace("dev", env))
    finally:
        for ws in core.workspaces.values():
            ws.close()
    assert remote_file(f"file://{edge_root / bare.name}", "apps/dev/podinfo.yaml").strip() == "version: 6.5.3"
    assert remote_file(f"file://{bare}", "apps/dev/podinfo.yaml").strip() == "version: 6.5.3"
    assert real.received(TOKEN) and not real.received(OTHER_TOKEN)
    assert other.received(OTHER_TOKEN) and not other.received(TOKEN)


@pytest.mark.parametrize("remote", ["http://169.254.169.254/acme/flux.git", "git@169.254.169.254:flux.git",
                                    "ssh://git@[fd00:ec2::254]/flux.git"])
def test_a_remote_at_a_metadata_address_is_never_asked(workspace, remote):
    with pytest.raises(GitUnavailable, match="link-local address") as e:
        workspace(remote).head()
    assert TOKEN not in str(e.value)
