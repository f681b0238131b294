"""!preview and the short preview of every chart change, end to end (issue 23, items 1, 2, 3, 5):
a real Errbot, a real bare remote and the real registry holding web in four versions built by
the test (tests/preview_charts.py): changed defaults, a key removed that the environments set, a
schema their values break, a CRD added, change notes in both forms across three versions, images.

Environments: dev runs 7.0.0; qa and stag 6.0.0 (stag needs approval); prod 6.0.0, its values
partly from a Secret, its policy preview: require_clean.
"""
from __future__ import annotations

import re

import pytest

from devtools.artifacts import push_chart
from tests import image_fleet
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_log, remote_tip
from tests.preview_charts import WEB, release_file

PINS = {"dev": "7.0.0", "qa": "6.0.0", "stag": "6.0.0", "prod": "6.0.0"}


@pytest.fixture(scope="module")
def web_charts(registry):
    for version, (files, metadata) in WEB.items():
        push_chart(registry.host, "preview/web", version, app_version=f"app-{version}",
                   files=files, metadata=metadata)
    return f"oci://{registry.host}/preview"


def fleet_settings(url: str) -> dict:
    return {"repo": {"url": url, "branch": "main"},
            "environments": [{"name": "dev", "path": "apps/dev"}, {"name": "qa", "path": "apps/qa"},
                             {"name": "stag", "path": "apps/stag", "policy": {"approval": True}},
                             {"name": "prod", "path": "apps/prod",
                              "policy": {"approval": False, "preview": "require_clean"}}]}


@pytest.fixture
def fleet(web_charts, bare_remote, tmp_path):
    url = bare_remote({f"apps/{env}/web.yaml": release_file(web_charts, version, secret=env == "prod")
                       for env, version in PINS.items()})
    with started_bot(tmp_path, fleet_settings(url)) as bot:
        yield bot, url


def test_preview_shows_what_the_upgrade_brings(fleet):
    bot, url = fleet
    text = ask(bot, "!preview web 7.0.0 in qa")[0]
    assert text.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0 (major version jump), "
                           "app app-6.0.0 → app-7.0.0."), text
    assert "kubeVersion: (none) → >=1.27.0-0." in text
    # The keys qa sets: one gone, two whose default changed.
    assert "- your ingress.hosts is not in 7.0.0's values" in text
    assert "- replicaCount: its default changed 1 → 2 (qa sets its own)" in text
    assert "- service.port: its default changed 80 → 8080 (qa sets its own)" in text
    # qa's values against 7.0.0's schema, worded from the schema (never qa's value).
    assert "qa's values would fail Helm's schema check of 7.0.0:\n- replicaCount must be of type integer" in text
    assert "- added widgets.example.com (v1)" in text
    assert "- metrics: (none) → ghcr.io/example/metrics:1.0.0" in text
    assert "- web: ghcr.io/example/web:6.0.0 → ghcr.io/example/web:7.0.0" in text
    # Every version's notes, both forms, security first, then newest first.
    notes = text[text.index("Change notes of every version after 6.0.0 up to 7.0.0:"):].splitlines()[1:6]
    assert notes == [
        "- 7.0.0 [security] Runs as non-root (CVE-2026-0001: https://example.com/cve)",
        "- 7.0.0 [removed] ingress.hosts, use ingress.rules",
        "- 6.2.0 [note] The service listens on 8080 by default",
        "- 6.2.0 [note] Probes wait longer",
        "- 6.1.0 [added] A resources block"], text
    assert "Links: https://example.com/web https://github.com/example/web" in text
    assert "-  hosts:" in text and "+  rules: []" in text  # the default values diff
    assert '"3"' not in text and "web.example.com" not in text  # qa's own values are not shown


def test_preview_to_an_environment_takes_the_promotions_version(fleet):
    bot, url = fleet
    text = ask(bot, "!preview web to qa")[0]
    assert text.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0 (major version jump)"), text


def test_values_from_a_secret_are_named_unknown(fleet):
    bot, url = fleet
    text = ask(bot, "!preview web 6.1.0 in prod")[0]
    assert "Unknown to Ferry (Flux merges them; not read, never guessed): Secret web-secrets." in text
    assert "Keys prod sets:" not in text  # 6.1.0 changes no default prod sets


def test_dry_run_and_deploy_carry_the_short_preview(fleet):
    bot, url = fleet
    before = remote_tip(url)
    text = ask(bot, "!deploy web 7.0.0 to qa --dry-run")[0]
    assert "Dry run, nothing pushed" in text
    short = text[text.index("Preview: "):]
    assert short.splitlines() == [
        "Preview: chart 6.0.0 → 7.0.0 (major version jump), app app-6.0.0 → app-7.0.0; "
        "kubeVersion (none) → >=1.27.0-0.",
        "Breaking notes: [security] 7.0.0: Runs as non-root; [removed] 7.0.0: ingress.hosts, use ingress.rules.",
        "qa sets keys that are not in 7.0.0's values: ingress.hosts.",
        "qa's values would fail Helm's schema check of 7.0.0: replicaCount must be of type integer.",
        "CRDs: added widgets.example.com.",
        "The whole preview: !preview web 7.0.0 in qa."], text
    assert remote_tip(url) == before
    intent, result = ask(bot, "!deploy web 7.0.0 to qa", replies=2)
    assert result.startswith("Deployed web 6.0.0 → 7.0.0 in qa") or result.startswith("Deployed web"), result
    assert "qa sets keys that are not in 7.0.0's values: ingress.hosts." in result


def test_a_quiet_upgrade_adds_nothing(fleet):
    bot, url = fleet
    intent, result = ask(bot, "!deploy web 6.1.0 to qa", replies=2)
    assert "Preview" not in result, result


def test_the_approval_request_carries_the_short_preview(fleet):
    bot, url = fleet
    before = remote_tip(url)
    text = ask(bot, "!deploy web 7.0.0 to stag")[0]
    assert "stag needs a second person" in text
    assert "stag sets keys that are not in 7.0.0's values: ingress.hosts." in text
    assert remote_tip(url) == before


def test_require_clean_needs_force_for_an_unclean_preview(fleet):
    bot, url = fleet
    before = remote_tip(url)
    text = ask(bot, "!deploy web 7.0.0 to prod")[0]
    assert text == ("The preview of web 6.0.0 → 7.0.0 in prod is not clean (1 schema error(s) "
                    "(replicaCount must be of type integer); keys it sets are not in the new chart: "
                    "ingress.hosts): !preview web 7.0.0 in prod shows it. Fix the values first, "
                    "or add --force to go ahead all the same."), text
    assert remote_tip(url) == before
    intent, result = ask(bot, "!deploy web 7.0.0 to prod --force", replies=2)
    assert "6.0.0 → 7.0.0 in prod" in result, result
    assert "version: 7.0.0" in remote_file(url, "apps/prod/web.yaml")
    trailers = remote_log(url, fmt="%(trailers:key=Forced-by,valueonly)")[0]
    assert "past: the preview of `web` 6.0.0 → 7.0.0 in prod is not clean" in trailers, trailers


def test_require_clean_lets_a_clean_upgrade_through(fleet):
    bot, url = fleet
    intent, result = ask(bot, "!deploy web 6.2.0 to prod", replies=2)
    assert "6.0.0 → 6.2.0 in prod" in result, result


def test_bad_input_is_one_line(fleet):
    bot, url = fleet
    assert ask(bot, "!preview web")[0].startswith("Say which version. Usage: !preview")
    assert ask(bot, "!preview web 7.0.0 on qa")[0].startswith("Say which environment: in <env>.")
    assert ask(bot, "!preview web 9.9.9 in qa")[0].startswith("Chart web has no version 9.9.9")
    assert ask(bot, "!preview web 7.0.0 in nowhere")[0].startswith("No environment nowhere: known environments: dev, prod, qa, stag. Usage: !preview")


def test_without_an_environment_the_first_it_would_change(fleet):
    bot, url = fleet
    text = ask(bot, "!preview web@7.0.0")[0]
    assert text.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0"), text  # dev runs 7.0.0
    assert ask(bot, "!preview web 7.0.0 in dev")[0] == \
        "web is already at 7.0.0 in dev: there is nothing to preview."


def test_an_app_tracked_by_its_image_is_previewed_by_its_labels(registry, charts, images,
                                                               bare_remote, tmp_path):
    url = bare_remote(image_fleet.files(registry.host, registry.url))
    with started_bot(tmp_path, image_fleet.settings(url)) as bot:
        text = ask(bot, "!preview api 1.1.0 in qa")[0]
        assert text.splitlines() == ["Preview of api image:app in qa:",
                                     f"Image {registry.host}/images/api: 1.0.0 → 1.1.0:",
                                     "• version: 1.0.0 → 1.1.0"], text
        intent, result = ask(bot, "!deploy api 1.1.0 to qa", replies=2)
        assert "Preview" not in result, result  # the version label says what the tag says: nothing more


def test_the_approval_carries_the_short_preview(fleet):
    bot, url = fleet
    asked = ask(bot, "!deploy web 7.0.0 to stag")[0]
    change_id = re.search(r"is change `?(\w+)`?", asked).group(1)
    bot.bot.sender = bot.bot.build_identifier("@bob")
    done = ask(bot, f"!approve {change_id}")[0]
    assert done.startswith("Deployed web 6.0.0 → 7.0.0 in stag"), done
    assert "stag sets keys that are not in 7.0.0's values: ingress.hosts." in done.splitlines(), done
    assert "The whole preview: !preview web 7.0.0 in stag." in done.splitlines(), done
    assert "version: 7.0.0" in remote_file(url, "apps/stag/web.yaml")
