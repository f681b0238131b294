"""Signed commits (``commit.sign``): git 2.39's fast-import cannot sign, so the commit it wrote is
written again by ``git commit-tree -S`` over the same tree, and git signs it with the settings'
key (``gpg.format=ssh``: ssh-keygen; ``openpgp``: gpg in the settings' GnuPG home). Same parent,
author (the requester), committer (Ferry) and message; the dates are now, as fast-import's were.
The unsigned commit stays behind unreferenced, for ``gc`` to drop."""
from __future__ import annotations

import logging
import re

from ..credentials import CommitSigning
from ..errors import CommitNotSigned
from ..model import Requester
from .commit import _clean_message, author_identity, commit_ident
from .failures import signing_failure
from .process import Timeout, scrub

log = logging.getLogger(__name__)

SIGNING_TIMEOUT = 30.0  # seconds git and its signing program may take for one commit


def signing_command(signing: CommitSigning, base: str, unsigned: str, author: Requester,
                    committer: tuple[str, str], message: str) -> tuple[list, dict, bytes]:
    """(git arguments, environment, stdin) of the ``git commit-tree`` that writes the commit
    ``unsigned`` (fast-import's, on ``base``) again, signed: same tree, parent, author, committer
    and message; the dates are now, as fast-import's were."""
    programs = ["-c", "gpg.program=gpg", "-c", "gpg.ssh.program=ssh-keygen"]
    if signing.format == "ssh":
        args = [*programs, "-c", "gpg.format=ssh", "commit-tree", f"-S{signing.key_file}"]
        env = {}
    else:
        args = [*programs, "-c", "gpg.format=openpgp", "commit-tree", f"-S{signing.key}"]
        env = {"GNUPGHOME": signing.gnupg_home}
    author_name, author_email = commit_ident(*author_identity(author))
    committer_name, committer_email = commit_ident(*committer)
    env.update({"GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email,
                "GIT_COMMITTER_NAME": committer_name, "GIT_COMMITTER_EMAIL": committer_email})
    return ([*args, "-p", base, f"{unsigned}^{{tree}}"], env,
            _clean_message(message).encode("utf-8"))


def signed_commit(clone, signing: CommitSigning, base: str, unsigned: str, author: Requester,
                  committer: tuple[str, str], message: str, secrets=()) -> str:
    """The id of ``unsigned`` written again in ``clone``, signed; ``CommitNotSigned`` (one line:
    which key, what went wrong) when git or its signing program fails or takes too long."""
    args, env, stdin = signing_command(signing, base, unsigned, author, committer, message)
    how = f"`commit.sign`, {signing.described}"
    if signing.format == "ssh":
        try:  # ssh-keygen would say it "couldn't load public key" of a private key that is gone
            open(signing.key_file, "rb").close()
        except OSError as e:
            raise CommitNotSigned(f"The commit could not be signed ({how}): the key file cannot be read "
                                  f"({e.strerror}). Nothing was pushed.") from None
    try:
        res = clone.local(*args, stdin=stdin, env=env, check=False, timeout=SIGNING_TIMEOUT)
    except Timeout:
        raise CommitNotSigned(f"The commit could not be signed ({how}): signing took longer than "
                              f"{SIGNING_TIMEOUT:g} s (a key that asks for a passphrase?). "
                              "Nothing was pushed.") from None
    out = res.stdout.decode().strip()
    if res.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", out):
        reason = scrub(signing_failure(res.stderr), list(secrets)) or f"git exited with {res.returncode}"
        log.warning("signing a commit failed (%s): %s", how, scrub(res.stderr.strip()[:500], list(secrets)))
        raise CommitNotSigned(f"The commit could not be signed ({how}): {reason[:200]}. "
                              "Nothing was pushed.")
    return out
