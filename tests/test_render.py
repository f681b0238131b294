"""Replies that fit a chat window: tables in code blocks, long lists cut with a count."""
import time

import pytest

from ferrychat.forges import commit_url
from ferrychat.render import (MAX_REPLY, app_overview, audit, bounded, change, live, overview,
                              pending_list, pinned, table)
from gitops.model import AuditEntry, ChartInfo, Change, Commit, PendingChange, Pin, PinLocation, Requester


def pin(app, env, version, is_range=False):
    return Pin(app, env, version, is_range, PinLocation(f"apps/{env}/{app}.yaml", 0, ("v",)),
               "helmrelease", app)


def test_table_aligns_and_cuts_with_a_count():
    text = table(["app", "dev"], [[f"app{i:03}", "1.0.0"] for i in range(50)], limit=10, more="apps")
    lines = text.splitlines()
    assert lines[0] == "```" and lines[1] == "app     dev"
    assert lines[2] == "app000  1.0.0"
    assert len(lines) == 1 + 1 + 10 + 1 + 1
    assert lines[-1] == "… and 40 more apps."


def test_wide_tables_stay_within_the_reply_size_with_a_count():
    reason = "a very long reason " * 30
    text = table(["what", "by", "since", "why"], [[f"prod/app{i}", "Ann", "2026-11-26 10:00 UTC", reason]
                                                  for i in range(100)], limit=100, more="locks")
    assert len(text) <= MAX_REPLY
    assert "a very long reason" in text and reason not in text  # a cell is cut, with …
    shown = [l for l in text.splitlines() if l.startswith("prod/app")]
    assert text.endswith(f"… and {100 - len(shown)} more locks.") and 0 < len(shown) < 100
    entries = [AuditEntry(f"{i:040x}", "2026-11-26T10:00:00Z", "deploy x " + "y" * 300, "prod", "Ann " * 50)
               for i in range(100)]
    assert len(audit(entries)) <= MAX_REPLY and "more rows" in audit(entries)


def test_pending_lists_whole_changes_within_the_reply_size_and_counts_the_rest():
    diff = "--- a/f\n+++ b/f\n" + "".join(f" line {i}\n" for i in range(6)) + "-x: 1\n+x: 2\n"
    waiting = [PendingChange(f"{i:010x}", "deploy", "podinfo", "prod", "6.5.0", "6.5.1", "f", diff,
                             Requester(f"U{i}", f"Person {i}"), "2026-11-26T10:00:00", "2026-11-26T11:00:00")
               for i in range(60)]
    text = pending_list(waiting)
    assert len(text) <= MAX_REPLY
    listed = text.count("expires 11:00 UTC")
    assert 5 < listed < 60 and text.endswith(f"… and {60 - listed} more changes waiting "
                                             "(`!approve <id>` takes any of them).")
    assert text.count("```") % 2 == 0
    assert pending_list([]) == "No change is waiting for approval."


def test_any_answer_is_cut_at_a_line_and_keeps_its_code_block_closed():
    long = "head\n```\n" + "".join(f"line {i} " + "x" * 100 + "\n" for i in range(200)) + "```"
    text = bounded(long)
    assert len(text) <= MAX_REPLY and text.count("```") == 2
    assert text.endswith("more line(s): the answer is cut at 8,000 characters.")
    assert bounded("short") == "short"
    assert len(bounded("x" * 20000)) <= MAX_REPLY


def test_cells_mark_ranges_newer_versions_and_absence():
    assert pinned(pin("a", "dev", "1.0.0"), newest="1.1.0") == "1.0.0*"
    assert pinned(pin("a", "dev", "1.1.0"), newest="1.1.0") == "1.1.0"
    assert pinned(pin("a", "dev", ">=1.0.0", is_range=True), newest="1.1.0") == "~>=1.0.0"
    assert pinned(None) == "-"
    assert pinned(Pin("a", "dev", None, False, None, "helmrelease", "a")) == "(latest)"


def test_overview_of_a_thousand_apps_stays_short():
    pins = [pin(f"app{i:04}", env, "1.0.0") for i in range(1000) for env in ("dev", "prod")]
    text = overview(pins, ["dev", "prod"], {}, notes=["Registry r did not answer within 5 s."])
    assert text.startswith("1000 apps across dev, prod:")
    assert "… and 960 more apps (use `!versions <app>`)." in text
    assert text.endswith("Registry r did not answer within 5 s.")
    assert len(text.splitlines()) < 50


def reported(state, version, seconds_ago, reason="UpgradeSucceeded", now=1_800_000_000):
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds_ago))
    return {"state": state, "version": version, "reason": reason, "received": at, "message": "boom\nmore"}


def test_live_cells_mark_drift_and_failure_with_an_age():
    now = 1_800_000_000
    assert live(pin("a", "qa", "1.0.0"), None, now) == ""
    assert live(pin("a", "qa", "1.0.0"), reported("live", "1.0.0", 75), now) == "live 1m"
    assert live(pin("a", "qa", "v1.0.0"), reported("live", "1.0.0", 5), now) == "live 5s"
    assert live(pin("a", "qa", "1.0.0"), reported("live", "0.9.0", 7300), now) == "≠0.9.0 live 2h"
    assert live(pin("a", "qa", "1.0.0"), reported("failed", "1.0.0", 40, "UpgradeFailed"), now) == "!1.0.0 failed 40s"
    assert live(pin("a", "qa", "1.0.0"), reported("failed", "0.9.0", 3 * 86400, "RollbackSucceeded"), now) \
        == "!0.9.0 rolled-back 3d"
    assert live(pin("a", "qa", ">=1.0.0", is_range=True), reported("live", "1.2.0", 60), now) == "1.2.0 live 1m"


def test_overview_shows_live_next_to_pinned_with_a_legend_only_when_known():
    pins = [pin("a", "qa", "1.0.0"), pin("a", "prod", "0.9.0")]
    plain = overview(pins, ["qa", "prod"], {"a": "1.0.0"})
    assert "Live as Flux" not in plain
    text = overview(pins, ["qa", "prod"], {"a": "1.0.0"}, live_states={
        ("a", "qa"): reported("live", "1.0.0", 60), ("a", "prod"): reported("failed", "0.9.0", 60, "TestFailed")},
        now=1_800_000_000)
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert row.split() == ["a", "1.0.0", "live", "1m", "0.9.0*", "!0.9.0", "failed", "1m", "1.0.0"]
    assert "`≠` another version runs (drift)" in text
    one = app_overview("a", pins, [], live_states={("a", "prod"): reported("failed", "0.9.0", 60, "TestFailed")},
                       now=1_800_000_000)
    assert "prod: Flux reports TestFailed: boom." in one and "qa    1.0.0    -" in one


# ---- links to a forge ----------------------------------------------------------------------------

@pytest.mark.parametrize("remote, expected", [
    ("https://github.com/acme/flux.git", "https://github.com/acme/flux/commit/abc123"),
    ("https://x-access-token:tok@github.com/acme/flux", "https://github.com/acme/flux/commit/abc123"),
    ("git@github.com:acme/flux.git", "https://github.com/acme/flux/commit/abc123"),
    ("ssh://git@ssh.github.com:443/acme/flux.git", "https://github.com/acme/flux/commit/abc123"),
    ("https://gitlab.com/acme/platform/flux.git", "https://gitlab.com/acme/platform/flux/-/commit/abc123"),
    ("git@gitlab.com:acme/flux.git", "https://gitlab.com/acme/flux/-/commit/abc123"),
    ("https://bitbucket.org/acme/flux.git/", "https://bitbucket.org/acme/flux/commits/abc123"),
    ("git@bitbucket.org:acme/flux.git", "https://bitbucket.org/acme/flux/commits/abc123"),
    ("https://git.example.com/acme/flux.git", ""),
    ("file:///srv/flux.git", ""),
    ("/srv/flux.git", ""),
    ("https://github.com/flux.git", ""),
])
def test_commit_url_links_known_forges(remote, expected):
    assert commit_url(remote, "abc123") == expected


@pytest.mark.parametrize("remote, shown", [
    ("git@github.com:acme/flux.git", " https://github.com/acme/flux/commit/0123456789abcdef"),
    ("file:///srv/flux.git", ""),
])
def test_a_change_links_its_commit_when_the_remote_is_a_forge(remote, shown):
    done = Change(action="deploy", app="podinfo", environment="dev", old="6.5.0", new="6.5.3",
                  diff="", file="apps/dev/podinfo.yaml", commit=Commit("0123456789abcdef", remote))
    assert change(done) == ("Deployed `podinfo` 6.5.0 → 6.5.3 in dev: commit 0123456789"
                            f"{shown}, file `apps/dev/podinfo.yaml`.")


def test_each_mark_of_one_apps_table_has_one_meaning_and_digests_are_cut():
    digest = "sha256:" + "ab" * 32
    chart = Pin("web", "dev", "6.5.0", False, PinLocation("apps/dev/web.yaml", 0, ("spec", "chart")),
                "helmrelease", "podinfo")
    image = Pin("web", "dev", f"1.0.0@{digest}", False,
                PinLocation("apps/dev/web.yaml", 0, ("spec", "values", "image", "tag")), "helmrelease",
                "registry.example/web", part="image")
    text = app_overview("web", [image, chart], [ChartInfo("6.6.0", "2026-01-01")])
    rows = [line for line in text.splitlines() if line.startswith("dev")]
    assert rows[0].split()[1:3] == ["▸", "image"] and "1.0.0@sha256:abababababab…" in rows[0]
    assert digest not in text  # the whole digest is in Git, not in the cell
    assert rows[1].split()[1:3] == ["chart", "6.5.0*"]  # `*`: newer in the registry, nothing else
    legend = next(line for line in text.splitlines() if line.startswith("`*`"))
    assert "`*` newer in the registry" in legend and "`▸` what the app is tracked by" in legend
    assert legend.count("`*`") == 1
