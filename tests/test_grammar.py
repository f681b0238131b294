"""The chat grammar: every form of every command, and the usage line on every bad form."""
import pytest

from ferrychat.grammar import (Request, UsageError, parse_deploy, parse_diff, parse_promote,
                               parse_rollback, parse_versions)


@pytest.mark.parametrize("args, expected", [
    ("podinfo 6.5.3 to qa", Request("podinfo", "qa", "6.5.3")),
    ("podinfo@6.5.3 to qa", Request("podinfo", "qa", "6.5.3")),
    ("PodInfo 6.5.3 TO QA --dry-run", Request("PodInfo", "QA", "6.5.3", dry_run=True)),
    ("podinfo@6.5.3 to qa --force", Request("podinfo", "qa", "6.5.3", force=True)),
])
def test_deploy_forms(args, expected):
    assert parse_deploy(args) == expected


@pytest.mark.parametrize("args, problem", [
    ("", "Say which app."),
    ("podinfo", "Say which version."),
    ("podinfo to qa", "Say which version."),
    ("podinfo 6.5.3", "Say which environment"),
    ("podinfo 6.5.3 qa", "Say which environment"),
    ("podinfo 6.5.3 to qa now", "Unexpected `now`"),
    ("podinfo@ to qa", "is not `<app>@<version>`"),
    ("@6.5.3 to qa", "is not `<app>@<version>`"),
    ("podinfo 6.5.3 to qa --yes", "Unknown option `--yes`"),
])
def test_deploy_bad_forms_answer_with_usage(args, problem):
    with pytest.raises(UsageError) as e:
        parse_deploy(args)
    assert problem in str(e.value)
    assert "Usage: `!deploy <app> <version> to <env>`" in str(e.value)


@pytest.mark.parametrize("args, expected", [
    ("podinfo to qa", Request("podinfo", "qa")),
    ("podinfo from dev to qa", Request("podinfo", "qa", source="dev")),
    ("podinfo@6.5.3 to qa --dry-run", Request("podinfo", "qa", "6.5.3", dry_run=True)),
])
def test_promote_forms(args, expected):
    assert parse_promote(args) == expected


@pytest.mark.parametrize("args, problem", [
    ("", "Say which app."),
    ("podinfo", "Say which environment to promote to"),
    ("podinfo from dev", "Say which environment to promote to"),
    ("podinfo@6.5.3 from dev to qa", "not both"),
    ("podinfo to qa and prod", "Unexpected `and prod`"),
])
def test_promote_bad_forms(args, problem):
    with pytest.raises(UsageError, match="Usage: `!promote") as e:
        parse_promote(args)
    assert problem in str(e.value)


@pytest.mark.parametrize("args, expected", [
    ("podinfo on qa", Request("podinfo", "qa")),
    ("podinfo in qa", Request("podinfo", "qa")),
    ("podinfo on qa to 6.5.1", Request("podinfo", "qa", "6.5.1")),
    ("podinfo on qa --dry-run", Request("podinfo", "qa", dry_run=True)),
])
def test_rollback_forms(args, expected):
    assert parse_rollback(args) == expected


@pytest.mark.parametrize("args, problem", [
    ("", "Say which app"),
    ("podinfo", "Say which environment"),
    ("podinfo qa", "Say which environment"),
    ("podinfo on qa 6.5.1", "Unexpected `6.5.1`"),
    ("podinfo on qa --force", "`--force` does not apply"),
])
def test_rollback_bad_forms(args, problem):
    with pytest.raises(UsageError, match="Usage: `!rollback") as e:
        parse_rollback(args)
    assert problem in str(e.value)


def test_versions_and_diff_arity():
    assert parse_versions("") == []
    assert parse_versions("podinfo qa") == ["podinfo", "qa"]
    with pytest.raises(UsageError, match="Too many"):
        parse_versions("a b c")
    assert parse_diff("qa prod") == ["qa", "prod"]
    assert parse_diff("podinfo qa prod") == ["podinfo", "qa", "prod"]
    for bad in ("", "qa", "a b c d"):
        with pytest.raises(UsageError, match="Usage: `!diff"):
            parse_diff(bad)


def test_user_text_is_echoed_safely():
    with pytest.raises(UsageError) as e:
        parse_deploy("podinfo 6.5.3 to qa `rm` " + "x" * 500)
    message = str(e.value)
    assert "`rm`" not in message and "x" * 50 not in message and "\n" not in message
