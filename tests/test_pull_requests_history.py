"""What Git says after a pull request of Ferry's is merged, end to end (a real Errbot, the bare
remote, the local GitHub merging for real): history (`!versions <app> <env>`, rollback's previous
version) and `!audit` read the commit that carried the change, whatever the merge button wrote."""
import pytest

from tests.fixtures_git import git, remote_path
from tests.test_pull_requests import deploy, fleet_url, github, in_thread, start  # noqa: F401


def row(text: str, *marks: str) -> str:
    """The one line of a table answer holding every mark."""
    (line,) = [l for l in text.splitlines() if all(m in l for m in marks)]
    return line


def message(fleet_url: str, rev: str = "refs/heads/main", fmt: str = "%B") -> str:  # noqa: F811
    return git("--git-dir", str(remote_path(fleet_url)), "log", "-1", f"--format={fmt}", rev)


def test_after_a_merge_commit_history_and_audit_read_ferrys_commit_and_name_the_merger(start, github, fleet_url):  # noqa: F811
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    merge = github.merge(1, by="carol")  # GitHub's default: "Merge pull request #1 from …", the title
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {merge[:10]}."
    assert message(fleet_url, fmt="%an|%s").startswith("carol|Merge pull request #1 from acme/ferry/qa/podinfo-6.5.3-")
    assert "Requested-by" not in message(fleet_url)

    history = ferry.say("!versions podinfo qa")[0]
    line = row(history, "6.5.3", merge[:10])
    assert "@alice" in line and "merged by carol" in line and "users.noreply" not in line
    audit = ferry.say("!audit qa")[0]
    line = row(audit, merge[:10])
    assert "deploy podinfo 6.5.2 → 6.5.3 to qa" in line and "@alice" in line and "merged by carol" in line
    rollback = ferry.say("!rollback podinfo in qa --dry-run")[0]  # the version before the merge
    assert "rollback podinfo 6.5.3 → 6.5.2 in qa" in rollback


@pytest.mark.parametrize("squash_message", ["COMMIT_MESSAGES", "PR_BODY"])
def test_after_a_squash_merge_history_and_audit_keep_who_asked(start, github, fleet_url, squash_message):  # noqa: F811
    github.squash_merge_commit_message = squash_message
    if squash_message == "PR_BODY":
        github.squash_merge_commit_title = "PR_TITLE"
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    squash = github.merge(1, by="carol", method="squash")
    assert in_thread(ferry) == f"podinfo 6.5.3 in qa: pull request #1 merged by carol as {squash[:10]}."
    assert message(fleet_url, fmt="%an|%P|%s") == (
        f"carol|{message(fleet_url, 'refs/heads/main~1', '%H')}|deploy podinfo 6.5.2 → 6.5.3 to qa (#1)")
    # GitHub names the branch's author last, a paragraph of its own after Ferry's trailers
    assert "\n\nCo-authored-by: @alice <" in message(fleet_url)

    history = ferry.say("!versions podinfo qa")[0]
    assert "@alice" in row(history, "6.5.3", squash[:10])
    audit = ferry.say("!audit qa")[0]
    line = row(audit, squash[:10])
    assert "deploy podinfo 6.5.2 → 6.5.3 to qa (#1)" in line and "@alice" in line and "carol" not in line


def test_a_rebase_merge_keeps_ferrys_commit_as_it_was(start, github, fleet_url):  # noqa: F811
    ferry = start()
    deploy(ferry, "!deploy podinfo 6.5.3 to qa")
    rebased = github.merge(1, by="carol", method="rebase")
    in_thread(ferry)
    assert message(fleet_url, fmt="%an|%s") == "@alice|deploy podinfo 6.5.2 → 6.5.3 to qa"
    audit = ferry.say("!audit qa")[0]
    assert "@alice" in row(audit, rebased[:10])


def test_trailers_are_every_last_paragraph_of_trailers_only():
    from gitops.workspace.objects import parse_log
    body = ("**deploy podinfo**\n\n---\nOpened by Ferry: merging it lands the change.\n\n"
            "Requested-by: @alice <@alice>\nEnvironment: qa\nMoves: image 1.0.0 → 1.1.0\n"
            "Moves: image:side 1 → 2\n\nCo-authored-by: @alice\n <alice@example.test>\n")
    (rev,) = parse_log(f"abc\x1fp1 p2\x1fcarol\x1fc@x\x1f2026-01-01T00:00:00Z\x1fsubject\x1f{body}\x1e".encode())
    assert rev.parents == ("p1", "p2")
    assert rev.trailers == {"Requested-by": "@alice <@alice>", "Environment": "qa",
                            "Moves": "image 1.0.0 → 1.1.0, image:side 1 → 2",
                            "Co-authored-by": "@alice <alice@example.test>"}
    (plain,) = parse_log(b"def\x1fp1\x1fa\x1fa@x\x1f2026-01-01T00:00:00Z\x1fs\x1fNot: a trailer block\nbecause this\n\x1e")
    assert plain.trailers == {} and plain.parents == ("p1",)
