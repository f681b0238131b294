"""At approval a change is decided again on everything its request was decided on, end to end:
a real Errbot (its test backend), a real bare remote and the real registry. The approver's own
permission comes first (one who may not approve changes nothing about the request), the requester
must still be allowed to ask for it (the policy may have changed since), and a promotion's version
must still run in the stage before (a version rolled back from there since goes no further)."""
import pytest

from devtools.fluxrepo import demo_files
from tests import image_fleet
from tests.fixtures_git import remote_file, remote_log, remote_tip
from tests.test_guard import Chat, plain


@pytest.fixture
def fleet(registry, charts, bare_remote):
    return bare_remote(demo_files(f"{registry.url}/charts"))


def change_id(asked: str) -> str:
    assert "needs a second person" in asked, asked
    return plain(asked).split("is change ")[1].split(",")[0]


def test_a_version_rolled_back_from_the_stage_before_does_not_reach_prod(tmp_path, fleet):
    chat = Chat(tmp_path, fleet, {"prod": {"approval": {"approvers": ["@bob"]}}})
    try:
        assert "Promoted podinfo 6.5.1 → 6.5.2 in stag" in plain(chat.dm("@alice", "!promote podinfo to stag", 2)[1])
        waiting = change_id(chat.dm("@alice", "!promote podinfo to prod"))  # 6.5.0 → 6.5.2
        assert "Rolled back podinfo 6.5.2 → 6.5.1 in stag" in plain(chat.dm("@carol", "!rollback podinfo on stag", 2)[1])
        before = remote_tip(fleet)

        answer = plain(chat.dm("@bob", f"!approve {waiting}"))
        assert answer == (f"Change {waiting} cannot be applied now: podinfo 6.5.2 is not in stag, the stage "
                          "before prod: promote it to stag first.")
        assert remote_tip(fleet) == before and 'version: "6.5.0"' in remote_file(fleet, "apps/prod/podinfo-values.yaml")
        assert waiting in chat.dm("@bob", "!pending")  # it still waits: stag may run it again

        # once stag runs it again, the same request goes through
        chat.dm("@carol", "!deploy podinfo 6.5.2 to stag --force", 2)
        assert plain(chat.dm("@bob", f"!approve {waiting}")).startswith("Promoted podinfo 6.5.0 → 6.5.2 in prod")
        assert remote_log(fleet, fmt="%s")[0] == "promote podinfo 6.5.0 → 6.5.2 from stag to prod"
    finally:
        chat.stop()


def test_a_requester_removed_from_the_policy_since_cannot_have_the_change_approved(tmp_path, fleet):
    storage = tmp_path / "errbot"
    storage.mkdir()
    chat = Chat(tmp_path, fleet, {"prod": {"promote": ["@alice", "@erin"], "approval": {"approvers": ["@bob"]}}},
                data_dir=storage)
    try:
        waiting = change_id(chat.dm("@alice", "!promote podinfo to prod"))  # 6.5.0 → 6.5.1, from stag
    finally:
        chat.stop()
    before = remote_tip(fleet)
    # restarted with a policy that no longer names Alice
    chat = Chat(tmp_path, fleet, {"prod": {"promote": ["@erin"], "approval": {"approvers": ["@bob"]}}},
                data_dir=storage)
    try:
        assert plain(chat.dm("@dave", f"!approve {waiting}")) == "You may not approve changes to prod: ask @bob."
        assert waiting in chat.dm("@bob", "!pending")  # one who may not approve changed nothing
        answer = plain(chat.dm("@bob", f"!approve {waiting}"))
        assert answer == (f"Change {waiting} was dropped: @alice, who asked for it, may no longer "
                          "promote to prod (the policy names @erin). Nothing changed.")
        assert remote_tip(fleet) == before
        assert chat.dm("@bob", "!pending") == "No change is waiting for approval."
        assert plain(chat.dm("@bob", f"!approve {waiting}")) == (
            f"Change {waiting} was dropped: @alice, who asked for it, may no longer promote to prod "
            "(the policy names @erin).")
        assert remote_tip(fleet) == before
    finally:
        chat.stop()


def workspaces(chat):
    return chat.bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops.workspaces.values()


def test_one_who_may_not_approve_cannot_drop_a_waiting_whole_app_promotion(tmp_path, registry, charts, images,
                                                                           bare_remote, external_commit):
    fleet = bare_remote(image_fleet.files(registry.host, registry.url))
    settings = image_fleet.settings(fleet)  # two environments, dev and qa
    settings["environments"][1]["policy"] = {"approval": {"approvers": ["@bob"]}}
    chat = Chat(tmp_path, fleet, {}, extra=settings)
    try:
        waiting = change_id(chat.dm("@alice", "!promote web to qa"))  # chart and image in one commit
        web = remote_file(fleet, "apps/qa/web.yaml")
        theirs = external_commit(fleet, {"apps/qa/web.yaml": web.replace("tag: 1.0.0", "tag: 1.0.1")})

        for ws in workspaces(chat):  # every read sees the remote's newest commit: the moved image
            ws.fetch_interval = 0
        for who, said in (("@dave", "You may not approve changes to qa: ask @bob."),
                          ("@alice", "You cannot approve your own change: another person has to.")):
            assert plain(chat.dm(who, f"!approve {waiting}")) == said
            assert waiting in chat.dm("@bob", "!pending")  # still waiting: nothing happened to it
        assert remote_tip(fleet) == theirs

        # Bob's approval plans on the clone as it was when the change was asked (no fetch): the
        # image moved under it is found on the tip the push is built on, and nothing is pushed
        for ws in workspaces(chat):
            ws.fetch_interval, ws.skip_fetch_within = 3600, 0
        answer = plain(chat.dm("@bob", f"!approve {waiting}"))
        assert answer == (f"web image in qa moved from 1.0.0 to 1.0.1 since change {waiting} was asked: "
                          "nothing changed; ask for it again.")
        assert remote_tip(fleet) == theirs and "tag: 1.0.1" in remote_file(fleet, "apps/qa/web.yaml")
        assert chat.dm("@bob", "!pending") == "No change is waiting for approval."
    finally:
        chat.stop()
