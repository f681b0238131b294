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
