"""Signed commits with OpenPGP (a throw-away key in a temporary GnuPG home, ``gpg --quick-gen-key``)
and through a real Errbot: a deploy from chat lands signed; a commit that cannot be signed is one
line in chat, and the remote is untouched."""
from __future__ import annotations

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.core import GitOps
from gitops.settings import parse_settings
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_log, remote_tip
from tests.ops import deploy, rollback
from tests.signing_keys import GnuPG, raw_commit, ssh_key, verify_ssh
from tests.test_signing import ALICE, BOB


@pytest.fixture
def demo_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def gnupg(tmp_path):
    keyring = GnuPG(tmp_path / "gnupg")
    yield keyring
    keyring.close()


def test_openpgp_signs_each_commit_with_the_key_of_the_gnupg_home(demo_url, tmp_path, gnupg):
    raw = {**demo_settings(demo_url), "data_dir": str(tmp_path / "data"),
           "commit": {"sign": {"format": "openpgp", "key": gnupg.fingerprint, "gnupg_home": str(gnupg.home)}}}
    core = GitOps(parse_settings(raw, environ={}), fetch_interval=0)
    deploy(core, "podinfo", "qa", "6.5.3", ALICE)
    rollback(core, "podinfo", "qa", BOB)
    for sha in remote_log(demo_url)[:2]:
        assert "-----BEGIN PGP SIGNATURE-----" in raw_commit(demo_url, sha)
        checked = gnupg.verify(demo_url, sha)
        assert checked.returncode == 0, checked.stderr
        assert f"VALIDSIG {gnupg.fingerprint}" in checked.stderr
    assert remote_log(demo_url, fmt="%an|%cn")[:2] == ["Bob Roe|Ferry", "Alice Doe|Ferry"]


def test_a_deploy_from_chat_lands_signed(demo_url, tmp_path):
    private, allowed = ssh_key(tmp_path / "keys")
    settings = {**demo_settings(demo_url), "commit": {"sign": {"format": "ssh", "key_file": str(private)}}}
    with started_bot(tmp_path, settings) as bot:
        intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
        assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa: commit ")
        sha = remote_tip(demo_url)
        assert sha[:10] in result
        checked = verify_ssh(demo_url, sha, allowed)
        assert checked.returncode == 0, checked.stderr
        assert remote_log(demo_url, fmt="%an|%cn")[0] == "@alice|Ferry"

        private.chmod(0o644)  # the key's volume changed under the running bot
        before = remote_log(demo_url)
        intent, refused = ask(bot, "!deploy podinfo 6.5.2 to qa", replies=2)
        assert "Deploying podinfo 6.5.3 → 6.5.2 in qa" in intent
        assert refused == (f"The commit could not be signed (commit.sign, SSH key {private}): Permissions "
                           f"0644 for '{private}' are too open. Nothing was pushed.")
        assert remote_log(demo_url) == before
