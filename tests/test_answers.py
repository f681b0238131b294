"""`!versions` filters and long answers through a real Errbot (its test backend), the real plugin
folder, a real bare remote and the real registry. Errbot's test backend attaches no files (its
``send_stream_request`` would put raw bytes in the chat): a long table is said inline, cut at the
bound, with a count of what was left out."""
import pytest

from devtools.fluxrepo import demo_files, demo_settings, fleet_apps, fleet_files
from tests.ferrybot import ask, started_bot


@pytest.fixture
def bot(tmp_path, registry, charts, bare_remote):
    with started_bot(tmp_path, demo_settings(bare_remote(demo_files(f"{registry.url}/charts")))) as testbot:
        yield testbot


def rows(text):
    return [line.split() for line in text.splitlines() if line and line.split()[0] in
            ("podinfo", "redis", "cert-manager")]


def test_filters_narrow_the_table(bot):
    text = ask(bot, "!versions *r*")[0]  # fnmatch over app names
    assert text.startswith("2 apps matching *r* across dev, qa, stag, prod:")
    assert [r[0] for r in rows(text)] == ["cert-manager", "redis"]

    text = ask(bot, "!versions --env prod")[0]  # one column, aliases too
    assert text.startswith("3 apps across prod:")
    assert rows(text) == [["cert-manager", "v1.14.0*", "v1.15.0"], ["podinfo", "6.5.0*", "6.6.0"],
                          ["redis", "18.0.0*", "19.0.0"]]
    assert ask(bot, "!versions --env production")[0] == text

    # dev: podinfo 6.5.3 is behind the registry's 6.6.0; redis and cert-manager are at the newest
    text = ask(bot, "!versions --outdated --env dev")[0]
    assert text.startswith("1 outdated apps across dev:")
    assert rows(text) == [["podinfo", "6.5.3*", "6.6.0"]]
    # qa: redis 18.1.0 is behind dev's 19.0.0 (and the registry); cert-manager v1.15.0 is not
    text = ask(bot, "!versions r* --outdated --env qa")[0]
    assert rows(text) == [["redis", "18.1.0*", "19.0.0"]]
    assert ask(bot, "!versions cert-* --outdated --env qa")[0] == \
        "No app matching cert-* is behind in qa."
    assert ask(bot, "!versions zzz*")[0] == "No app matching zzz* is deployed."

    # an app name without wildcards is still the app's own view; with a filter, its row
    assert "podinfo runs in 4 environment(s)" in ask(bot, "!versions podinfo")[0]
    assert rows(ask(bot, "!versions podinfo --env qa")[0]) == [["podinfo", "6.5.2*", "6.6.0"]]


@pytest.mark.parametrize("command, expected", [
    ("!versions --env prdo", "No environment prdo: did you mean"),
    ("!versions --old", "Unknown option --old."),
    ("!versions --env", "Say which environment after --env."),
    ("!versions r* qa", "name the environment with --env"),
])
def test_bad_filters_get_one_line_with_the_usage(bot, command, expected):
    text = ask(bot, command)[0]
    assert expected in text and "\n" not in text
    assert text.endswith("Usage: !versions [<app> | <glob>] [--outdated] [--env <env>] or "
                         "!versions <app> <env>")  # the test backend shows Markdown as plain text


def test_a_long_table_is_said_inline_up_to_the_bound_where_no_file_can_go(tmp_path, registry, charts,
                                                                          bare_remote):
    apps = fleet_apps(300, ["podinfo", "redis"])
    pins = {(a[0], e): {"podinfo": "6.5.3", "redis": "19.0.0"}[a[2]] for a in apps
            for e in ("dev", "qa", "stag", "prod")}
    url = bare_remote(fleet_files(f"{registry.url}/charts", apps, pins))
    with started_bot(tmp_path, demo_settings(url)) as bot:
        (text,) = ask(bot, "!versions", timeout=60)  # one message, nothing else
        assert text.startswith("300 apps across dev, qa, stag, prod:")
        assert len(text) < 8000 and "… and 260 more apps (use !versions <app>)." in text
        (text,) = ask(bot, "!versions app-01[0-2]?")  # narrowed: the whole of it
        assert text.startswith("30 apps matching app-01[0-2]? across dev, qa, stag, prod:")
        assert len([line for line in text.splitlines() if line.startswith("app-")]) == 30
