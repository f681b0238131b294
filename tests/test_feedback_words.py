"""What a verification's thread hears names commands that work as written."""
from ferrychat.feedback import say_verdict
from ferrychat.grammar import parse_rollback
from gitops.feedback.records import ReplyTarget
from gitops.feedback.verifier import Verdict
from gitops.feedback.verify import Verification


def test_a_rollback_ferry_could_not_make_names_a_command_that_parses():
    record = Verification("qa", "podinfo", "chart", "6.5.3", "6.5.2", "a" * 40, "deploy", "alice",
                          ReplyTarget("#deploys", True, ""), "failed", 0.0)
    text = say_verdict(Verdict("not-rolled-back", record, problem="someone changed it since."))
    hint = text.split("`")[-2]
    assert hint.startswith("!rollback "), text
    request = parse_rollback(hint[len("!rollback "):])
    assert (request.app, request.environment) == ("podinfo", "qa")


def test_a_rollback_that_lands_as_a_pull_request_says_it_waits_for_its_merge():
    from gitops.model import Change, Proposal
    record = Verification("prod", "podinfo", "chart", "6.5.3", "6.5.2", "a" * 40, "deploy", "alice",
                          ReplyTarget("#deploys", True, ""), "failed", 0.0)
    revert = Change("rollback", "podinfo", "prod", "6.5.3", "6.5.2", "apps/prod/podinfo.yaml", "-x\n+y\n",
                    pull_request=Proposal(7, "https://github.example/acme/fleet/pull/7", "ferry/prod/podinfo-6.5.2-ab"))
    text = say_verdict(Verdict("rolled-back", record, change=revert))
    assert "rolled back to" not in text, text  # nothing is rolled back until the merge
    assert "opened pull request #7" in text and "https://github.example/acme/fleet/pull/7" in text, text
    assert "It lands when it is merged" in text, text
