"""Answers that fit: the pure decision "one message or a file", and what each form says."""
from ferrychat import listing
from ferrychat.grammar import VersionsQuery
from ferrychat.render import MAX_REPLY
from ferrychat.sizing import MAX_LINES, SLACK_SECTION, Table, attached, budget, file_text, fits, inline
from gitops.model import AuditEntry, Pin
from gitops.selection import select

SLACKV3_LIMIT = 4096  # Errbot's MESSAGE_SIZE_LIMIT as the SlackV3 backend sets it


def test_the_budget_is_the_smallest_of_ferry_the_backend_and_a_block_kit_section():
    assert budget() < MAX_REPLY and budget() > MAX_REPLY - 1000  # a margin for Slack's escaping
    assert budget(SLACKV3_LIMIT) < SLACKV3_LIMIT
    assert budget(40_000) == budget()  # Ferry's own bound is lower than Slack's 40,000
    assert budget(SLACKV3_LIMIT, section=True) < SLACK_SECTION


def test_fits_by_characters_and_by_lines():
    assert fits("short")
    assert fits("x" * budget()) and not fits("x" * (budget() + 1))
    assert not fits("x" * 5000, SLACKV3_LIMIT) and fits("x" * 3000, SLACKV3_LIMIT)
    assert not fits("x" * 3000, SLACKV3_LIMIT, section=True)
    assert fits("\n".join(["row"] * MAX_LINES)) and not fits("\n".join(["row"] * (MAX_LINES + 1)))


def pins(count, envs=("dev", "prod")):
    return tuple(Pin(f"app-{i:04d}", env, "1.0.0" if env == "prod" and i % 3 == 0 else "1.1.0", False,
                     None, "helmrelease", "c") for i in range(count) for env in envs)


def versions(count, query=VersionsQuery()):
    found = pins(count)
    newest = {p.app: "1.1.0" for p in found}
    return listing.versions(query, select(found, ("dev", "prod"), newest, query.pattern,
                                          query.outdated, query.column), newest)


def test_a_small_table_is_todays_message():
    answer = versions(3)
    assert answer.message.startswith("3 apps across dev, prod:\n```\napp ")
    assert answer.message == answer.short  # the whole is what a message always said
    assert fits(answer.message)
    assert answer.summary == "3 apps across 2 environments, 1 behind the registry, 1 behind the previous environment"


def test_a_large_table_is_a_summary_and_a_file_of_every_row():
    answer = versions(1000)
    assert not fits(answer.message, SLACKV3_LIMIT)
    assert answer.summary.startswith("1,000 apps across 2 environments, 334 behind the registry")
    assert attached(answer, SLACKV3_LIMIT).startswith(answer.summary + ": full table attached.")
    content = file_text(answer)
    lines = content.splitlines()
    assert lines[0] == "1000 apps across dev, prod:" and lines[1].split() == ["app", "dev", "prod", "newest"]
    rows = [line for line in lines if line.startswith("app-")]
    assert len(rows) == 1000 and rows[0].split() == ["app-0000", "1.1.0", "1.0.0*", "1.1.0"]
    assert "```" not in content and answer.filename == "versions.txt"


def test_where_no_file_can_go_the_answer_is_cut_at_the_bound_and_counts_the_rest():
    answer = versions(1000)
    text = inline(answer)
    assert len(text) <= budget() and text.count("```") == 2
    assert "more apps (use `!versions <app>`)" in text
    text = inline(answer, SLACKV3_LIMIT, "The table could not be attached (x); its start:\n")
    assert len(text) <= budget(SLACKV3_LIMIT) and text.startswith("The table could not be attached")


def test_filters_are_said_in_the_head_and_the_summary():
    answer = versions(30, VersionsQuery(pattern="app-00[01]*", outdated=True, column="prod"))
    assert answer.message.startswith("7 outdated apps matching `app-00[01]*` across prod:")
    assert answer.summary == "7 outdated apps matching `app-00[01]*` across 1 environment, 7 behind the registry, 7 behind the previous environment"
    assert listing.versions(VersionsQuery(pattern="zzz*"), select(pins(3), ("dev", "prod"), {}, "zzz*"), {}) \
        == "No app matching `zzz*` is deployed."


def test_audit_and_pending_are_tables_too():
    entries = [AuditEntry(f"{i:040x}", "2026-11-26T10:00:00Z", f"deploy app-{i} 1 → 2 to prod", "prod", "Ann")
               for i in range(200)]
    answer = listing.audit(entries, "prod")
    assert isinstance(answer, Table) and not fits(answer.message)
    assert answer.summary == "The last 200 changes in prod"
    assert sum(1 for line in file_text(answer).splitlines() if "deploy app-" in line) == 200
    assert listing.audit([], "prod") == "Ferry has made no change in prod yet."
    assert listing.pending([]) == "No change is waiting for approval."
