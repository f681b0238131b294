"""`show_values: channels` (issue 19, item 5): for teams with guests in Slack, an environment's
Helm values (`!diff <app> …`) and the diffs of its pending changes (`!pending`) are shown only in
its `policy.channels`, through a real Errbot, a real bare remote and a real registry."""
import pytest

from devtools.fluxrepo import demo_files, demo_settings
from gitops.errors import SettingsError
from gitops.settings import parse_settings
from tests.fixtures_git import remote_tip
from tests.test_guard import Chat


@pytest.fixture
def fleet(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def private_prod(url) -> list:
    environments = demo_settings(url)["environments"]
    prod = next(e for e in environments if e["name"] == "prod")
    prod.update(show_values="channels", policy={"channels": ["#deploys"], "approval": {"approvers": ["@bob"]}})
    return environments


def test_prods_values_and_pending_diffs_are_shown_only_in_its_channels(tmp_path, fleet):
    chat = Chat(tmp_path, fleet, policy={}, extra={"environments": private_prod(fleet)})
    try:
        asked = chat.room("@alice", "#deploys", "!deploy redis 18.1.0 to prod")
        assert "prod needs a second person" in asked and "+      version: 18.1.0" in asked
        change_id = asked.replace("`", "").split("is change ")[1].split(",")[0]

        # elsewhere: the change, who may approve, how; not its diff
        for elsewhere in (lambda t: chat.room("@bob", "#random", t), lambda t: chat.dm("@bob", t)):
            listed = elsewhere("!pending")
            assert change_id in listed and "its diff is shown only in prod's channels" in listed
            assert "version: 18.1.0" not in listed and "```" not in listed
            refused = elsewhere("!diff redis qa prod")
            assert refused == "prod's Helm values are shown only in #deploys: ask there."
        # in its channel: all of it
        listed = chat.room("@bob", "#deploys", "!pending")
        assert change_id in listed and "+      version: 18.1.0" in listed
        shown = chat.room("@bob", "#deploys", "!diff redis qa prod")
        assert shown.startswith("redis: qa 18.1.0, prod 18.0.0.")
        # other environments' values, and versions, anywhere
        assert chat.room("@bob", "#random", "!diff redis dev qa").startswith("redis: dev 19.0.0, qa 18.1.0.")
        assert "redis" in chat.dm("@bob", "!diff qa prod")
        before = remote_tip(fleet)
        assert chat.room("@bob", "#deploys", f"!approve {change_id}").startswith("Deployed redis 18.0.0 → 18.1.0 in prod")
        assert remote_tip(fleet) != before
    finally:
        chat.stop()


def test_show_values_is_anywhere_or_channels_with_channels_named(tmp_path):
    raw = demo_settings("file:///nowhere.git")
    prod = raw["environments"][3]
    prod["show_values"] = "channels"
    with pytest.raises(SettingsError, match=r"`environments\[3\].show_values: channels` needs `environments\[3\].policy.channels`"):
        parse_settings(raw, environ={})
    prod["show_values"] = "guests"
    with pytest.raises(SettingsError, match=r"must be `anywhere` \(the default\) or `channels`"):
        parse_settings(raw, environ={})
    prod.update(show_values="channels", policy={"channels": ["C0PROD"]})
    env = parse_settings(raw, environ={}).environment("prod")
    assert env.shows_values_in(("C0PROD", "#prod")) and not env.shows_values_in(("C0GUESTS",))
    assert not env.shows_values_in(())  # a DM
    assert parse_settings(raw, environ={}).environment("qa").shows_values_in(())
