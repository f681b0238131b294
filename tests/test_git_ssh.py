"""SSH remotes check host keys against the settings' ``known_hosts`` (issue 19, item 3): a real
sshd on a loopback port, git over SSH with Ferry's deploy key, no trust on first use unless the
settings ask for it. A refused host changes nothing on the remote."""
from __future__ import annotations

import pytest

from gitops.core import GitOps
from gitops.errors import GitUnavailable
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.fixtures_git import remote_file, remote_path, remote_tip
from tests.ssh_server import ssh_server  # noqa: F401 (a fixture)

ALICE = Requester("U024BE7LH", "Alice Liddell", "alice@example.com")
FILES = {"apps/dev/podinfo.yaml": "version: 6.5.0\n"}


def core_on(server, bare, tmp_path, ssh: dict) -> GitOps:
    settings = {"repo": {"url": server.url(bare), "branch": "main"}, "data_dir": str(tmp_path / "data"),
                "environments": [{"name": "dev", "path": "apps/dev"}], "ssh": ssh}
    return GitOps(parse_settings(settings, {"GITOPS_GIT_SSH_KEY_FILE": str(server.client_key)}, tmp_path),
                  fetch_interval=0)


def deploy(core: GitOps):
    ws = next(iter(core.workspaces.values()))
    try:
        return ws.change(lambda tree: {"apps/dev/podinfo.yaml": "version: 6.5.3\n"}, author=ALICE,
                         message="deploy podinfo 6.5.0 → 6.5.3 to dev\n")
    finally:
        ws.close()


def test_a_known_host_key_lets_ferry_push(ssh_server, bare_remote, tmp_path):  # noqa: F811
    bare = remote_path(bare_remote(FILES))
    (tmp_path / "known_hosts").write_text(ssh_server.known_hosts_line())
    assert deploy(core_on(ssh_server, bare, tmp_path, {"known_hosts": "known_hosts"}))
    assert remote_file(f"file://{bare}", "apps/dev/podinfo.yaml").strip() == "version: 6.5.3"


@pytest.mark.parametrize("known", ["", "other"], ids=["unknown-host", "changed-key"])
def test_an_unknown_or_changed_host_key_is_refused_in_one_line(ssh_server, bare_remote, tmp_path, known):  # noqa: F811
    bare = remote_path(bare_remote(FILES))
    before = remote_tip(f"file://{bare}")
    line = ""
    if known == "other":  # the same host and port, another key: a man in the middle
        import subprocess
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
        line = f"[127.0.0.1]:{ssh_server.port} " + " ".join((tmp_path / "other.pub").read_text().split()[:2]) + "\n"
    (tmp_path / "known_hosts").write_text(line)
    with pytest.raises(GitUnavailable) as e:
        deploy(core_on(ssh_server, bare, tmp_path, {"known_hosts": "known_hosts"}))
    assert "\n" not in str(e.value) and "`ssh.known_hosts`" in str(e.value)
    assert remote_tip(f"file://{bare}") == before
    assert (tmp_path / "known_hosts").read_text() == line  # nothing learnt


def test_trust_on_first_use_only_when_the_settings_ask(ssh_server, bare_remote, tmp_path):  # noqa: F811
    bare = remote_path(bare_remote(FILES))
    (tmp_path / "known_hosts").write_text("")
    assert deploy(core_on(ssh_server, bare, tmp_path, {"known_hosts": "known_hosts",
                                                        "accept_new_host_keys": True}))
    learnt = (tmp_path / "known_hosts").read_text()
    assert ssh_server.known_hosts_line().split()[2] in learnt  # checked against it from now on
