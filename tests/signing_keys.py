"""Signing keys made by the tests (``ssh-keygen``, ``gpg``) and the checks Flux's verification
makes, done by git on the bare remote: ``git verify-commit`` with an allowed-signers file (SSH)
or a keyring (OpenPGP)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.fixtures_git import git, remote_path


def ssh_key(folder: Path, name: str = "ferry-signing") -> tuple[Path, Path]:
    """(private key, allowed-signers file naming its public half) made by ``ssh-keygen``; the
    private key is left alone in its folder, as a Secret volume holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry", "-f", str(key)],
                   check=True, capture_output=True, timeout=30)
    allowed = folder / f"{name}.allowed_signers"
    public = folder / f"{name}.pub"
    allowed.write_text(f'ferry@localhost namespaces="git" {public.read_text().strip()}\n')
    public.unlink()  # as a Secret mounts it: the private key alone
    return key, allowed


def verify_ssh(url: str, sha: str, allowed: Path) -> subprocess.CompletedProcess:
    """``git verify-commit`` on the bare remote, trusting the keys ``allowed`` names."""
    return subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "--git-dir",
                           str(remote_path(url)), "verify-commit", "--raw", sha],
                          capture_output=True, text=True, timeout=30,
                          env={**_clean_env(), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})


def raw_commit(url: str, sha: str) -> str:
    """The commit object as stored on the remote (its ``gpgsig`` header, when signed)."""
    return git("--git-dir", str(remote_path(url)), "cat-file", "commit", sha)


class GnuPG:
    """A throw-away GnuPG home with one passphrase-less signing key; ``close`` stops its agent."""

    def __init__(self, home: Path):
        if shutil.which("gpg") is None:
            raise AssertionError("gpg is not installed: `make system-deps` installs gnupg")
        self.home = home
        home.mkdir(mode=0o700, parents=True)
        self.run("--quick-gen-key", "Ferry <ferry@localhost>", "ed25519", "sign", "never")
        listing = self.run("--list-secret-keys", "--with-colons")
        self.fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))

    def run(self, *args: str) -> str:
        res = subprocess.run(["gpg", "--batch", "--passphrase", "", "--pinentry-mode", "loopback", *args],
                             capture_output=True, text=True, timeout=60,
                             env={**_clean_env(), "GNUPGHOME": str(self.home)})
        assert res.returncode == 0, res.stderr
        return res.stdout

    def verify(self, url: str, sha: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "--git-dir", str(remote_path(url)), "verify-commit", "--raw", sha],
                              capture_output=True, text=True, timeout=30,
                              env={**_clean_env(), "GNUPGHOME": str(self.home),
                                   "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env={**_clean_env(), "GNUPGHOME": str(self.home)},
                       capture_output=True, timeout=30)


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
