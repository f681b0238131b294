"""Signed commits (``commit.sign``): every commit Ferry writes is signed by git itself, checked on
the bare remote by ``git verify-commit`` with an allowed-signers file, as Flux's verification
would: a deploy, a group commit (several commits, one push), a rollback. A commit that cannot be
signed is not pushed and says why in one line; a key the settings cannot use is refused at load.
Keys are made by the test with ``ssh-keygen -t ed25519 -N ''``."""
from __future__ import annotations

import subprocess

import pytest

from devtools.fluxrepo import demo_files, demo_settings, fleet_apps, fleet_files
from gitops.core import GitOps
from gitops.errors import CommitNotSigned, SettingsError
from gitops.model import Requester
from gitops.settings import parse_settings
from tests.fixtures_git import remote_log, remote_tip
from tests.held_push import Gate
from tests.ops import deploy, rollback
from tests.signing_keys import raw_commit, ssh_key, verify_ssh
from tests.test_batch import APPS, PEOPLE, VERSIONS, deploys, queued_behind_a_held_push

ALICE = Requester("U0ALICE", "Alice Doe", "alice@example.com")
BOB = Requester("U0BOB", "Bob Roe", "bob@example.com")


def signed_core(url, tmp_path, sign, environ=None, **overrides) -> GitOps:
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data"), "commit": {"sign": sign}, **overrides}
    return GitOps(parse_settings(raw, environ=environ or {}, base=tmp_path), fetch_interval=0)


@pytest.fixture
def demo_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def key(tmp_path):
    return ssh_key(tmp_path / "keys")


def assert_signed_by(url, sha, allowed):
    checked = verify_ssh(url, sha, allowed)
    assert checked.returncode == 0, checked.stderr
    assert 'Good "git" signature for ferry@localhost with ED25519 key' in checked.stderr


def test_a_deploy_is_signed_by_git_with_the_ssh_key(demo_url, tmp_path, key):
    private, allowed = key
    core = signed_core(demo_url, tmp_path, {"format": "ssh", "key_file": str(private)})
    change = deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    sha = change.commit.sha
    assert remote_tip(demo_url) == sha
    assert_signed_by(demo_url, sha, allowed)
    # The author stays the requester, the committer is Ferry; the message and trailers as unsigned.
    assert remote_log(demo_url, fmt="%an <%ae>|%cn <%ce>|%s")[0] == \
        "Alice Doe <alice@example.com>|Ferry <ferry@localhost>|deploy podinfo 6.5.2 → 6.5.3 to qa"
    assert "\n\nRequested-by: Alice Doe <U0ALICE>\n" in raw_commit(demo_url, sha)
    # Only this key is trusted: another key's allowed-signers file refuses the commit.
    _, stranger = ssh_key(tmp_path / "stranger")
    assert verify_ssh(demo_url, sha, stranger).returncode != 0


def test_without_commit_sign_commits_stay_unsigned(demo_url, tmp_path):
    raw = {**demo_settings(demo_url), "data_dir": str(tmp_path / "data")}
    core = GitOps(parse_settings(raw, environ={}), fetch_interval=0)
    sha = deploy(core, "podinfo", "qa", "6.5.3", ALICE).commit.sha
    assert "gpgsig" not in raw_commit(demo_url, sha)


def test_a_rollback_is_signed(demo_url, tmp_path, key):
    private, allowed = key
    core = signed_core(demo_url, tmp_path, {"format": "ssh", "key_file": str(private)})
    deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    change = rollback(core, "podinfo", "qa", BOB)
    assert (change.old, change.new) == ("6.5.3", "6.5.2")
    assert remote_log(demo_url, fmt="%an|%s")[0] == "Bob Roe|rollback podinfo 6.5.3 → 6.5.2 to qa"
    for sha in remote_log(demo_url)[:2]:
        assert_signed_by(demo_url, sha, allowed)


def test_a_group_commit_signs_each_commit_and_pushes_once(registry, charts, bare_remote, tmp_path, key):
    private, allowed = key
    apps = fleet_apps(APPS, VERSIONS)
    pins = {(name, env): VERSIONS[chart][0] for name, _, chart in apps for env in ("dev", "qa", "stag", "prod")}
    url = bare_remote(fleet_files(f"{registry.url}/charts", apps, pins))
    raw = {**demo_settings(url), "data_dir": str(tmp_path / "data"),
           "commit": {"sign": {"format": "ssh", "key_file": str(private)}}}
    core = GitOps(parse_settings(raw, environ={}), fetch_interval=300)
    core.inventory()
    gate, seed = Gate(url, tmp_path / "gate"), remote_tip(url)
    first = lambda: deploy(core, apps[0][0], "dev", VERSIONS[apps[0][2]][1], PEOPLE[0])  # noqa: E731
    results = queued_behind_a_held_push(core, gate, first, deploys(core, apps))

    assert gate.pushes() == [1, APPS - 1]  # the first alone, then every other change in one push
    history = remote_log(url)
    assert history[-1] == seed and len(history) == APPS + 1
    assert sorted(r.commit.sha for r in results.values()) == sorted(history[:-1])
    for i, sha in enumerate(r.commit.sha for r in [results["first"], *(results[a] for a, _, _ in apps[1:])]):
        assert_signed_by(url, sha, allowed)
        assert remote_log(url, fmt="%H|%an")[history.index(sha)] == f"{sha}|Person {i}"


@pytest.mark.parametrize("spoiled, reason", [
    ("opened", "Permissions 0644 for '{key}' are too open"),
    ("removed", "the key file cannot be read (No such file or directory)"),
])
def test_a_key_git_cannot_sign_with_pushes_nothing_and_says_why_in_one_line(demo_url, tmp_path, key,
                                                                            spoiled, reason):
    private, _ = key
    core = signed_core(demo_url, tmp_path, {"format": "ssh", "key_file": str(private)})
    core.inventory()
    # The key was good when the settings were read; the volume holding it changed since.
    private.chmod(0o644) if spoiled == "opened" else private.unlink()
    before, log_before = remote_tip(demo_url), remote_log(demo_url)
    with pytest.raises(CommitNotSigned) as refused:
        deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    assert refused.value.message == (f"The commit could not be signed (`commit.sign`, SSH key {private}): "
                                     f"{reason.format(key=private)}. Nothing was pushed.")
    assert remote_tip(demo_url) == before and remote_log(demo_url) == log_before
    # The clone's branch is where it was: the next change plans on the remote's tip.
    assert next(iter(core.workspaces.values())).head(refresh=False) == before


def test_the_key_may_come_from_the_environment(demo_url, tmp_path, key):
    private, allowed = key
    core = signed_core(demo_url, tmp_path, {"format": "ssh"},
                       environ={"GITOPS_COMMIT_SIGNING_KEY_FILE": str(private)})
    assert core.settings.commit.sign.key_file == str(private)
    assert_signed_by(demo_url, deploy(core, "podinfo", "qa", "6.5.3", ALICE).commit.sha, allowed)


def test_a_relative_key_file_is_read_beside_the_settings_file(demo_url, tmp_path, key):
    raw = {**demo_settings(demo_url), "commit": {"sign": {"format": "ssh", "key_file": "keys/ferry-signing"}}}
    assert parse_settings(raw, environ={}, base=tmp_path).commit.sign.key_file == str(key[0])


def refusal(tmp_path, sign, environ=None) -> str:
    raw = {**demo_settings("file:///nowhere"), "commit": {"sign": sign}}
    with pytest.raises(SettingsError) as refused:
        parse_settings(raw, environ=environ or {}, base=tmp_path)
    assert "\n" not in refused.value.message
    return refused.value.message


def test_an_unreadable_key_file_is_refused_at_load(tmp_path):
    message = refusal(tmp_path, {"format": "ssh", "key_file": "missing-key"})
    assert message == (f"`commit.sign.key_file` names {tmp_path / 'missing-key'}, which cannot be read "
                       "(No such file or directory): the private SSH key Ferry signs commits with.")
    message = refusal(tmp_path, {"format": "ssh"}, {"GITOPS_COMMIT_SIGNING_KEY_FILE": "/nowhere/key"})
    assert message.startswith("GITOPS_COMMIT_SIGNING_KEY_FILE names /nowhere/key, which cannot be read")


def test_a_key_file_others_may_read_is_refused_at_load(tmp_path, key):
    key[0].chmod(0o644)
    assert refusal(tmp_path, {"format": "ssh", "key_file": str(key[0])}) == (
        f"`commit.sign.key_file` names {key[0]}, which others may read (mode 0644): ssh-keygen refuses "
        "such a key. Make it 0600 (a Secret volume: defaultMode 0400).")


def test_a_key_ssh_keygen_cannot_use_unattended_is_refused_at_load(tmp_path):
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(locked)],
                   check=True, capture_output=True, timeout=30)
    garbage = tmp_path / "garbage"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    for path in (locked, garbage):
        assert refusal(tmp_path, {"format": "ssh", "key_file": str(path)}) == (
            f"`commit.sign.key_file` names {path}, which ssh-keygen cannot read without a passphrase: "
            "Ferry signs unattended, with a key made by `ssh-keygen -t ed25519 -N ''`.")


def test_a_public_key_or_a_missing_key_is_refused_at_load(tmp_path, key):
    public = tmp_path / "ferry.pub"
    public.write_text(subprocess.run(["ssh-keygen", "-y", "-f", str(key[0])], capture_output=True, text=True,
                                     check=True, timeout=30).stdout)
    assert refusal(tmp_path, {"format": "ssh", "key_file": str(public)}).startswith(
        f"`commit.sign.key_file` names {public}, which is not a private SSH key")
    assert refusal(tmp_path, {"format": "ssh"}) == ("`commit.sign` with `format: ssh` needs the private key: "
                                                    "`commit.sign.key_file` or GITOPS_COMMIT_SIGNING_KEY_FILE.")


@pytest.mark.parametrize("sign, expected", [
    ({"format": "x509"}, "`commit.sign.format` must be `ssh` (a private key file) or `openpgp`"),
    ({"format": "ssh", "key_file": "k", "gnupg_home": "g"}, "`commit.sign.key` and `gnupg_home` are for"),
    ({"format": "openpgp", "key_file": "k"}, "`commit.sign.key_file` is for `format: ssh`"),
    ({"format": "openpgp", "key": "ABC"}, "`commit.sign.gnupg_home` must be a non-empty string."),
    ({"format": "openpgp", "key": "ABC", "gnupg_home": "nowhere"}, "`commit.sign.gnupg_home` names "),
    ({"format": "ssh", "passphrase": "x"}, "`commit.sign` has an unknown key `passphrase`"),
])
def test_a_signing_setting_that_cannot_work_is_refused_in_one_line(tmp_path, sign, expected):
    assert refusal(tmp_path, sign).startswith(expected)
