"""The chat grammar: every form of every command, and the usage line on every bad form."""
import pytest

from ferrychat.grammar import (Request, UsageError, VersionsQuery, known_environment, parse_audit,
                               parse_deploy, parse_diff, parse_promote, parse_rollback, parse_versions)
from gitops.settings import parse_settings


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


@pytest.mark.parametrize("args, expected", [
    ("", VersionsQuery()),
    ("podinfo", VersionsQuery(app="podinfo")),
    ("podinfo qa", VersionsQuery(app="podinfo", environment="qa")),
    ("team-a-*", VersionsQuery(pattern="team-a-*")),
    ("redi?", VersionsQuery(pattern="redi?")),
    ("[pr]*", VersionsQuery(pattern="[pr]*")),
    ("--outdated", VersionsQuery(outdated=True)),
    ("--env prod", VersionsQuery(column="prod")),
    ("--ENV=Prod", VersionsQuery(column="Prod")),
    ("team-a-* --outdated --env prod", VersionsQuery(pattern="team-a-*", outdated=True, column="prod")),
    ("--env prod --outdated team-a-*", VersionsQuery(pattern="team-a-*", outdated=True, column="prod")),
    # a plain app name with a filter is that one app's row of the table
    ("podinfo --outdated", VersionsQuery(pattern="podinfo", outdated=True)),
])
def test_versions_forms(args, expected):
    assert parse_versions(args) == expected
    assert parse_versions(args).table is (expected.app is None)


@pytest.mark.parametrize("args, problem", [
    ("a b c", "Too many arguments."),
    ("--old", "Unknown option `--old`."),
    ("--env", "Say which environment after `--env`."),
    ("--env --outdated", "Say which environment after `--env`."),
    ("--env= ", "Say which environment after `--env`."),
    ("--env qa --env prod", "Give `--env` once."),
    ("team-* prod", "name the environment with `--env`"),
    ("podinfo prod --outdated", "name the environment with `--env`"),
])
def test_versions_bad_forms_answer_with_usage(args, problem):
    with pytest.raises(UsageError) as e:
        parse_versions(args)
    message = str(e.value)
    assert problem in message and "\n" not in message
    assert message.endswith("Usage: `!versions [<app> | <glob>] [--outdated] [--env <env>]` or "
                            "`!versions <app> <env>`")


def test_an_unknown_environment_is_one_line_with_the_usage():
    settings = parse_settings({"repo": {"url": "file:///x.git"}, "environments": [
        {"name": "qa", "path": "apps/qa"}, {"name": "prod", "path": "apps/prod", "aliases": ["production"]}]},
        environ={})
    assert known_environment("versions", "PRODUCTION", settings).name == "prod"
    with pytest.raises(UsageError) as e:
        known_environment("versions", "prdo", settings)
    assert str(e.value).startswith("No environment `prdo`") and "Usage: `!versions" in str(e.value)


def test_audit_counts_up_to_a_thousand():
    assert parse_audit("prod 200") == ("prod", 200)
    assert parse_audit("1000") == (None, 1000)
    for bad in ("0", "1001"):
        with pytest.raises(UsageError, match="from 1 to 1,000"):
            parse_audit(bad)


def test_diff_arity():
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
