"""Ferry through a real Errbot (its test backend) with the real plugin folder, a real bare remote and
a real registry: every command, every form, the bad inputs, and the commits they leave."""
import queue

import pytest

from devtools.fluxrepo import demo_files, demo_settings
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import git, remote_file, remote_log, remote_path, remote_tip



@pytest.fixture
def fleet_url(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


@pytest.fixture
def bot(tmp_path, fleet_url):
    with started_bot(tmp_path, demo_settings(fleet_url)) as testbot:
        yield testbot


def as_user(bot, user):
    bot.bot.sender = bot.bot.build_identifier(user)


def last_commit(url, fmt="%an|%s"):
    return remote_log(url, fmt=fmt)[0]


def one_line_change(url, path):
    """The newest commit changed exactly one line of ``path`` and nothing else."""
    stat = git("--git-dir", str(remote_path(url)), "show", "--numstat", "--format=", "HEAD")
    assert stat == f"1\t1\t{path}"


def test_help_is_a_manual(bot):
    text = ask(bot, "!help")[0]
    for command in ("versions", "diff", "deploy", "promote", "rollback"):
        assert f"!{command}" in text
    detail = ask(bot, "!help deploy")[0]
    assert "!deploy podinfo 6.5.3 to qa" in detail and "--dry-run" in detail


def test_versions_overview(bot):
    text = ask(bot, "!versions")[0]
    assert "3 apps across dev, qa, stag, prod" in text
    row = next(l for l in text.splitlines() if l.startswith("podinfo"))
    assert row.split() == ["podinfo", "6.5.3*", "6.5.2*", "6.5.1*", "6.5.0*", "6.6.0"]
    row = next(l for l in text.splitlines() if l.startswith("redis"))
    assert row.split() == ["redis", "19.0.0", "18.1.0*", "18.0.0*", "18.0.0*", "19.0.0"]


def test_versions_of_one_app_with_registry_dates(bot):
    text = ask(bot, "!versions PODINFO")[0]
    assert "`podinfo` runs in 4 environment(s)" in text.replace("\u2019", "'") or "podinfo runs in 4" in text
    assert "apps/qa/podinfo-values.yaml" in text
    assert "6.6.0 (2024-05-01)" in text


def test_deploy_then_history(bot, fleet_url):
    intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
    assert "Deploying podinfo 6.5.2 → 6.5.3 in qa" in intent
    assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa: commit ")
    assert remote_tip(fleet_url)[:10] in result and "apps/qa/podinfo-values.yaml" in result
    assert last_commit(fleet_url) == "@alice|deploy podinfo 6.5.2 → 6.5.3 to qa"
    one_line_change(fleet_url, "apps/qa/podinfo-values.yaml")
    assert 'version: "6.5.3"' in remote_file(fleet_url, "apps/qa/podinfo-values.yaml")
    history = ask(bot, "!versions podinfo qa")[0]
    assert "now 6.5.3, 2 version(s)" in history and "@alice" in history


def test_deploy_at_form_and_dry_run(bot, fleet_url):
    before = remote_tip(fleet_url)
    text = ask(bot, "!deploy redis@19.0.0 to production --dry-run")[0]
    assert "Dry run, nothing pushed" in text
    assert "-      version: 18.0.0" in text and "+      version: 19.0.0" in text
    assert remote_tip(fleet_url) == before


def test_promote_forms(bot, fleet_url):
    intent, result = ask(bot, "!promote podinfo to stage", replies=2)
    assert "Promoting podinfo 6.5.1 → 6.5.2 from qa in stag" in intent
    assert "Promoted podinfo 6.5.1 → 6.5.2 in stag (from qa)" in result
    assert "Brings 1 version(s): 6.5.2" in result
    assert last_commit(fleet_url) == "@alice|promote podinfo 6.5.1 → 6.5.2 from qa to stag"
    one_line_change(fleet_url, "apps/stag/podinfo-values.yaml")
    _, result = ask(bot, "!promote podinfo from dev to qa", replies=2)
    assert "6.5.2 → 6.5.3" in result
    _, result = ask(bot, "!promote podinfo@6.5.3 to stag", replies=2)
    assert "6.5.2 → 6.5.3" in result
    assert len(remote_log(fleet_url)) == 4


def test_rollback_and_the_force_it_then_asks_for(bot, fleet_url):
    ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
    intent, result = ask(bot, "!rollback podinfo in qa", replies=2)
    assert "Rolled back podinfo 6.5.3 → 6.5.2 in qa" in result
    as_user(bot, "@bob")
    refused = ask(bot, "!deploy podinfo 6.5.3 to qa")[0]
    assert "was rolled back from qa by @alice" in refused and "--force" in refused
    assert last_commit(fleet_url) == "@alice|rollback podinfo 6.5.3 → 6.5.2 to qa"
    one_line_change(fleet_url, "apps/qa/podinfo-values.yaml")
    _, forced = ask(bot, "!deploy podinfo 6.5.3 to qa --force", replies=2)
    assert forced.startswith("Deployed podinfo 6.5.2 → 6.5.3")
    assert last_commit(fleet_url) == "@bob|deploy podinfo 6.5.2 → 6.5.3 to qa"
    _, result = ask(bot, "!rollback podinfo on qa to 6.5.2", replies=2)
    assert "6.5.3 → 6.5.2" in result


def test_diff_between_environments_and_of_values(bot):
    text = ask(bot, "!diff stag prod")[0]
    assert "1 app(s) differ between stag and prod" in text and "podinfo" in text
    text = ask(bot, "!diff podinfo qa prod")[0]
    assert "qa 6.5.2, prod 6.5.0" in text and "podinfo on prod" in text


def test_diff_of_values_a_file_does_not_load_is_said_not_taken_for_no_values(tmp_path, registry,
                                                                            charts, bare_remote):
    """stag and prod set different Helm values, each in a patch with a duplicate key (discovery
    reads past it, a YAML loader does not): the answer names the file instead of reading both
    as no values and saying they are the same."""
    files = demo_files(f"{registry.url}/charts")
    for env in ("stag", "prod"):
        path = f"apps/{env}/podinfo-values.yaml"
        assert "  values:\n" in files[path]
        files[path] = files[path].replace("  values:\n", "  values:\n    podAnnotations: {}\n"
                                                          "    podAnnotations: {}\n")
    with started_bot(tmp_path, demo_settings(bare_remote(files))) as testbot:
        assert "6.5.1" in ask(testbot, "!versions podinfo")[0]  # discovery still reads the pins
        (text,) = ask(testbot, "!diff podinfo stag prod")
    assert text.startswith("apps/stag/podinfo-values.yaml is not valid YAML (line 12: ")
    assert "duplicate key" in text and "Helm values it sets cannot be read" in text
    assert "\n" not in text and "Same Helm values" not in text


@pytest.mark.parametrize("command, expected", [
    ("!deploy", "Say which app. Usage: !deploy <app> <version> to <env>"),
    ("!deploy podinfo 6.5.3", "Say which environment"),
    ("!deploy podinfo 6.5.3 to qa extra", "Unexpected extra"),
    ("!deploy podinfp 6.5.3 to qa", "No app podinfp: did you mean podinfo?"),
    ("!deploy podinfo 6.5.3 to qq", "No environment qq: did you mean qa?"),
    ("!deploy podinfo 1.2 to qa", "no version 1.2 in the registry. Nearest:"),
    ("!deploy podinfo lates to qa", "no version lates in the registry"),
    ("!deploy redis latest to qa", "no version latest in the registry"),
    ("!deploy redis 18.1.0 to qa --yes", "Unknown option --yes"),
    ("!deploy podinfo ../../etc/passwd to qa", "is not a chart version"),
    ("!deploy podinfo " + "9" * 500 + " to qa", "at most 128 characters"),
    ("!deploy podinfo ６.５.３ to qa", "only ASCII"),
    ("!deploy pоdinfo 6.5.3 to qa", "No app p?dinfo"),  # Cyrillic о
    ("!deploy podinfo 6.5.2 to qa", "already at 6.5.2 in qa: nothing to change"),
    ("!promote podinfo to dev", "dev is the first environment"),
    ("!promote podinfo from dev to prod", "promote it to stag first"),
    ("!rollback podinfo on qa", "nothing to roll back to"),
    ("!rollback podinfo qa", "Say which environment: on <env>"),
    ("!versions a b c", "Too many arguments"),
    ("!diff qa", "Usage: !diff"),
])
def test_bad_input_gets_one_clear_line_and_changes_nothing(bot, fleet_url, command, expected):
    before = remote_tip(fleet_url)
    replies = ask(bot, command)
    answer = replies[-1]
    assert expected in answer.replace("`", "")
    assert "Traceback" not in answer and "\n" not in answer.strip()
    assert remote_tip(fleet_url) == before


@pytest.mark.parametrize("command", [
    "!deploy podinfo 6.5.3\nrm -rf / to qa",  # a second line smuggled into the version
    "!deploy podinfo 6.5 .3 to qa",  # a version with a space
])
def test_a_version_with_a_newline_or_space_is_refused(bot, fleet_url, command):
    before = remote_tip(fleet_url)
    answer = ask(bot, command)[0]
    assert "Usage: !deploy" in answer.replace("`", "")
    assert remote_tip(fleet_url) == before


def test_promote_from_where_the_app_is_absent(tmp_path, registry, charts, bare_remote):
    files = demo_files(f"{registry.url}/charts")
    del files["apps/dev/redis.yaml"]
    files["apps/dev/kustomization.yaml"] = files["apps/dev/kustomization.yaml"].replace("  - redis.yaml\n", "")
    with started_bot(tmp_path, demo_settings(bare_remote(files))) as testbot:
        assert "redis is not in dev" in ask(testbot, "!promote redis to qa")[0].replace("`", "")


def test_an_unexpected_error_is_an_apology_with_a_log_id(caplog):
    from ferrychat.replies import answers

    class Broken:
        @answers
        def versions(self, msg, args):
            raise KeyError("a bug")

    class Msg:
        frm = type("Person", (), {"person": "@alice"})()

    reply = list(Broken().versions(Msg(), ""))
    assert len(reply) == 1 and reply[0].startswith("Sorry, that failed on my side (error `")
    ref = reply[0].split("`")[1]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)


def test_concurrent_commands_through_the_thread_pool(bot, fleet_url):
    """Errbot runs commands in a thread pool: different apps both land, the same app and
    environment twice is serialised and the second says what happened."""
    for command in ("!deploy podinfo 6.6.0 to dev", "!deploy redis 18.1.0 to dev",
                    "!deploy podinfo 6.6.0 to dev"):
        bot.push_message(command)
    replies = []
    while True:
        try:
            replies.append(bot.pop_message(timeout=5))
        except queue.Empty:
            break
    assert sum(r.startswith("Deployed podinfo 6.5.3 → 6.6.0 in dev") for r in replies) == 1
    assert sum(r.startswith("Deployed redis 19.0.0 → 18.1.0 in dev") for r in replies) == 1
    assert sum("podinfo is already at 6.6.0 in dev" in r.replace("`", "") for r in replies) == 1
    assert remote_log(fleet_url, fmt="%s")[:2] in (
        ["deploy podinfo 6.5.3 → 6.6.0 to dev", "deploy redis 19.0.0 → 18.1.0 to dev"],
        ["deploy redis 19.0.0 → 18.1.0 to dev", "deploy podinfo 6.5.3 → 6.6.0 to dev"])
    assert len(remote_log(fleet_url)) == 3
