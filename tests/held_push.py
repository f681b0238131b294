"""A bare remote's hooks that hold the first push until the test opens it, and note every push
(how many commits it carried): which changes queue behind a push is decided by the test, never
by timing."""
from __future__ import annotations

import time
from pathlib import Path

from tests.fixtures_git import install_hook

HANG = 120  # seconds: only a hang guard


def wait_for(condition) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, "hang"
        time.sleep(0.01)


class Gate:
    """The remote's hooks: pre-receive holds the first push until opened; post-receive notes
    each push (old, new, how many commits it carried)."""

    def __init__(self, url: str, folder: Path, colleague: bool = False, refuse: str = ""):
        self.folder = folder
        folder.mkdir()
        # ``refuse``: a push carrying a commit whose subject holds it is refused, as a hook would.
        refusal = "" if not refuse else f"""
while read old new ref; do
    if git log --format=%s "$old..$new" | grep -q -F '{refuse}'; then
        echo "no changes to {refuse} today" >&2
        exit 1
    fi
done"""
        install_hook(url, "pre-receive", f"""#!/bin/sh
touch {folder}/reached
while [ ! -e {folder}/open ]; do sleep 0.02; done{refusal}
""")
        # A colleague's commit lands right after the first push, straight into the remote
        # (no hook runs for it): the batch behind the first push is planned on a stale tip.
        extra = "" if not colleague else f"""
    if [ ! -e {folder}/colleague ]; then
        touch {folder}/colleague
        export GIT_INDEX_FILE={folder}/index
        git read-tree "$new"
        blob=$(echo "a colleague's note" | git hash-object -w --stdin)
        git update-index --add --cacheinfo "100644,$blob,docs/colleague.md"
        tree=$(git write-tree)
        other=$(GIT_AUTHOR_NAME=Colleague GIT_AUTHOR_EMAIL=c@example.test GIT_COMMITTER_NAME=Colleague \\
                GIT_COMMITTER_EMAIL=c@example.test git commit-tree "$tree" -p "$new" -m "a colleague's note")
        git update-ref refs/heads/main "$other" "$new"
        echo "$other" > {folder}/colleague
    fi"""
        install_hook(url, "post-receive", f"""#!/bin/sh
while read old new ref; do
    echo "$old $new $(git rev-list --count "$old..$new")" >> {folder}/pushes{extra}
done
""")

    def wait_reached(self):
        wait_for(lambda: (self.folder / "reached").exists())

    def open(self):
        (self.folder / "open").touch()

    def pushes(self) -> list[int]:
        """How many commits each push carried, in order."""
        path = self.folder / "pushes"
        return [int(line.split()[2]) for line in path.read_text().splitlines()] if path.exists() else []
