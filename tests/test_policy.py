"""Per-environment policy as pure functions: who, where, when; and its settings."""
from datetime import datetime, timezone

import pytest

from gitops.errors import Locked, NoLongerAllowed, NotAllowed, RolledBackVersion, SettingsError
from gitops.model import Lock, Requester, RolledBack
from gitops.guard.policy import (MAX_WAITING, authorise, blockers, decide, may_approve, may_reject,
                           parse_policy, refuse_locked)

FRIDAY_1730_PARIS = datetime(2026, 11, 27, 16, 30, tzinfo=timezone.utc)
MONDAY_0830_PARIS = datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)


def policy(**raw):
    return parse_policy(raw, "environments[3].policy", "prod")


def test_production_needs_approval_by_default_others_do_not():
    assert parse_policy(None, "p", "prod").approval
    assert parse_policy(None, "p", "live", ("production",)).approval
    assert not parse_policy(None, "p", "qa").approval
    assert not policy(approval=False).approval


def test_who_may_and_from_where():
    p = policy(deploy=["U1", "U2"], channels=["C0DEPLOY", "#deploys"])
    authorise(p, "prod", "deploy", "U1", ("C0DEPLOY",))
    authorise(p, "prod", "rollback", "U9", ("#deploys",))  # rollback: anyone
    with pytest.raises(NotAllowed, match="You may not deploy to prod: ask U1, U2."):
        authorise(p, "prod", "deploy", "U9", ("C0DEPLOY",))
    with pytest.raises(NotAllowed, match="Changes to prod are asked in C0DEPLOY, #deploys, not here."):
        authorise(p, "prod", "deploy", "U1", ())  # a DM


def test_approvers_default_to_who_may_and_never_the_requester():
    p = policy(deploy=["U1", "U2"])
    may_approve(p, "prod", "deploy", "U2", "U1", ())
    with pytest.raises(NotAllowed, match="cannot approve your own change"):
        may_approve(p, "prod", "deploy", "U1", "U1", ())
    with pytest.raises(NotAllowed, match="ask U1, U2"):
        may_approve(p, "prod", "deploy", "U3", "U1", ())
    q = policy(deploy=["U1"], approval={"approvers": ["U7"], "expire_minutes": 30, "max_waiting": 2})
    may_approve(q, "prod", "deploy", "U7", "U1", ())
    assert (q.approval_minutes, q.max_waiting, p.max_waiting) == (30, 2, MAX_WAITING)


def test_approvals_and_rejections_come_from_the_environments_channels():
    p = policy(channels=["C0DEPLOY", "#deploys"])
    may_approve(p, "prod", "deploy", "U2", "U1", ("C0DEPLOY",))
    may_reject(p, "prod", "deploy", "U1", "U1", ("#deploys",))  # the requester withdrawing
    for who in ("U1", "U2"):
        with pytest.raises(NotAllowed, match="Changes to prod are approved in C0DEPLOY, #deploys, not here."):
            may_reject(p, "prod", "deploy", who, "U1", ("#random",))
    with pytest.raises(NotAllowed, match="approved in C0DEPLOY, #deploys, not here"):
        may_approve(p, "prod", "deploy", "U2", "U1", ())  # a DM


def test_locks_name_who_why_and_since():
    # Who locked is a chat user ID, shown as a mention: never a display name anyone may copy.
    with pytest.raises(Locked, match=r"prod is locked by U0ANN since 2026-11-26 10:00 UTC: incident 42\. An admin"):
        refuse_locked("prod", "web", {"prod": Lock("U0ANN", "2026-11-26 10:00 UTC", "incident 42")},
                      policy(), FRIDAY_1730_PARIS)
    with pytest.raises(Locked, match="`web` in prod is locked by Bo"):
        refuse_locked("prod", "web", {"prod/web": Lock("Bo", "x")}, policy(), FRIDAY_1730_PARIS)
    refuse_locked("prod", "api", {"prod/web": Lock("Bo", "x")}, policy(), FRIDAY_1730_PARIS)


def test_freeze_window_across_the_weekend_in_its_time_zone():
    p = policy(freeze=[{"from": "Fri 16:00", "to": "Mon 08:00", "timezone": "Europe/Paris"}])
    with pytest.raises(Locked, match=r"frozen \(Fri 16:00 → Mon 08:00 Europe/Paris\) until Mon 2026-11-30 08:00 CET"):
        refuse_locked("prod", "web", {}, p, FRIDAY_1730_PARIS)
    refuse_locked("prod", "web", {}, p, MONDAY_0830_PARIS)
    refuse_locked("prod", "web", {}, p, datetime(2026, 11, 27, 14, 59, tzinfo=timezone.utc))  # Fri 15:59


FROZEN = policy(freeze=[{"from": "Fri 16:00", "to": "Mon 08:00", "timezone": "Europe/Paris"}])
LOCKED = {"prod/web": Lock("Ann", "2026-11-26 10:00 UTC", "incident 42")}
ROLLED = RolledBack("1.2.0", "Bo", "2026-11-26 09:00 UTC")


def found(locks=None, rolled=None, rules=FROZEN, now=MONDAY_0830_PARIS, action="deploy"):
    return blockers("prod", "web", "1.2.0", action, locks or {}, rolled, rules, now)


def test_the_decision_names_every_blocker_and_force_records_them():
    everything = found(LOCKED, ROLLED, now=FRIDAY_1730_PARIS)
    assert [b.kind for b in everything] == ["lock", "freeze", "rolled-back"]
    assert found(rolled=ROLLED, action="rollback") == ()  # rolling back again is no bringing back
    assert found(rolled=RolledBack("1.1.0", "Bo", "x")) == ()
    ask = dict(who="U1", channels=())
    refused = decide(FROZEN, "prod", "deploy", everything, **ask)
    assert isinstance(refused.refusal, Locked) and "locked by Ann" in str(refused.refusal)
    not_admin = decide(FROZEN, "prod", "deploy", everything, force=True, **ask)
    assert str(not_admin.refusal).startswith("Only an admin may force a change past this: `web` in prod")
    forced = decide(FROZEN, "prod", "deploy", everything, force=True, admin=True, **ask)
    assert forced.refusal is None and forced.forced == everything
    # bringing back a rolled-back version needs --force, not an admin
    rolled = found(rolled=ROLLED)
    assert isinstance(decide(FROZEN, "prod", "deploy", rolled, **ask).refusal, RolledBackVersion)
    assert decide(FROZEN, "prod", "deploy", rolled, force=True, **ask).forced == rolled
    assert decide(FROZEN, "prod", "deploy", (), **ask) == decide(FROZEN, "prod", "deploy", (), **ask)


def test_at_approval_only_what_the_request_overrode_may_stand():
    approve = dict(who="U2", channels=(), requested_by=Requester("U1"))
    rolled = found(rolled=ROLLED)
    # an admin forced a rolled-back version: its approval needs no --force again
    assert decide(FROZEN, "prod", "deploy", rolled, overridden=rolled, **approve).refusal is None
    # a lock added since the request refuses it, a freeze begun since too
    later = found(LOCKED, ROLLED)
    assert "locked by Ann" in str(decide(FROZEN, "prod", "deploy", later, overridden=rolled, **approve).refusal)
    frozen = found(rolled=ROLLED, now=FRIDAY_1730_PARIS)
    assert "frozen" in str(decide(FROZEN, "prod", "deploy", frozen, overridden=rolled, **approve).refusal)
    # the same lock, lifted and set again, is another lock
    again = found({"prod/web": Lock("Ann", "2026-11-27 10:00 UTC", "incident 42")})
    assert decide(FROZEN, "prod", "deploy", again, overridden=found(LOCKED), **approve).refusal is not None
    assert decide(FROZEN, "prod", "deploy", found(LOCKED), overridden=found(LOCKED), **approve).refusal is None
    mine = decide(FROZEN, "prod", "deploy", (), who="U1", channels=(), requested_by=Requester("U1"), overridden=())
    assert isinstance(mine.refusal, NotAllowed)


def test_at_approval_the_approver_first_then_the_requester_still_allowed_to_ask():
    p = policy(promote=["U1", "U2"], channels=["C0DEPLOY"], bots={"promote": ["B0CI"]},
               approval={"approvers": ["U3"]})
    alice = Requester("U1", "Alice", channels=("C0DEPLOY",))
    at = dict(who="U3", channels=("C0DEPLOY",), overridden=())
    assert decide(p, "prod", "promote", (), requested_by=alice, **at).refusal is None
    # removed from the policy since: said of her, to the approver
    removed = policy(promote=["U2"], channels=["C0DEPLOY"], approval={"approvers": ["U3"]})
    refusal = decide(removed, "prod", "promote", (), requested_by=alice, **at).refusal
    assert isinstance(refusal, NoLongerAllowed)
    assert str(refusal) == "U1, who asked for it, may no longer promote to prod (the policy names U2)"
    # changes are asked elsewhere now; a bot no longer named
    moved = policy(channels=["C0RELEASE"], approval={"approvers": ["U3"]})
    refusal = decide(moved, "prod", "promote", (), who="U3", channels=("C0RELEASE",), overridden=(),
                     requested_by=alice).refusal
    assert str(refusal) == "changes to prod are now asked in C0RELEASE, not where U1 asked"
    ci = Requester("B0CI", "CI", bot=True, channels=("C0DEPLOY",))
    assert decide(p, "prod", "promote", (), requested_by=ci, **at).refusal is None
    refusal = decide(removed, "prod", "promote", (), requested_by=ci, **at).refusal
    assert str(refusal) == ("the bot B0CI, who asked for it, is no longer named in the policy of prod "
                            "(`policy.bots.promote`)")
    # one who may not approve is told that, and nothing about the request
    for who, said in (("U9", "You may not approve changes to prod: ask U3."),
                      ("U1", "You cannot approve your own change: another person has to.")):
        refusal = decide(removed, "prod", "promote", (), who=who, channels=("C0DEPLOY",), overridden=(),
                         requested_by=alice).refusal
        assert type(refusal) is NotAllowed and str(refusal) == said


@pytest.mark.parametrize("raw, message", [
    ({"deploy": "U1"}, "`environments[3].policy.deploy` must be a list"),
    ({"deploy": [1]}, "must be a list of chat user or channel IDs"),
    ({"who": ["U1"]}, "unknown key `who`"),
    ({"approval": "yes"}, "must be true, false or"),
    ({"approval": {"expire_minutes": 0}}, "must be a number of minutes"),
    ({"approval": {"max_waiting": 0}}, "max_waiting` must be a number of changes"),
    ({"freeze": [{"from": "Friday", "to": "Mon 08:00"}]}, "must be a weekday and a time"),
    ({"freeze": [{"from": "Fri 16:00", "to": "Mon 08:00", "timezone": "Mars/Olympus"}]}, "is not a time zone"),
    ({"freeze": [{"from": "Fri 16:00"}]}, "freeze[0]` must be"),
])
def test_bad_policy_names_the_key(raw, message):
    with pytest.raises(SettingsError) as e:
        policy(**raw)
    assert message in str(e.value)


def test_bots_act_only_where_the_policy_names_them():
    p = policy(deploy=["U1"], bots={"deploy": ["B0CI"], "approve": ["B0RELEASE"]})
    authorise(p, "prod", "deploy", "B0CI", (), bot=True)  # named: no person list applies to it
    for bot, action in (("B0CI", "rollback"), ("B0OTHER", "deploy"), ("", "deploy")):
        with pytest.raises(NotAllowed, match=f"Only people {action} in prod: .* not named in its policy "
                                             rf"\(`policy.bots.{action}`\)"):
            authorise(p, "prod", action, bot, (), bot=True)
    # anyone may deploy to qa: any person, never a bot
    open_qa = parse_policy(None, "p", "qa")
    authorise(open_qa, "qa", "deploy", "U9", ())
    with pytest.raises(NotAllowed, match="Only people deploy in qa: the bot B0CI"):
        authorise(open_qa, "qa", "deploy", "B0CI", (), bot=True)
    may_approve(p, "prod", "deploy", "B0RELEASE", "U1", (), bot=True)
    with pytest.raises(NotAllowed, match="Only people approve in prod: the bot B0CI"):
        may_approve(p, "prod", "deploy", "B0CI", "U1", (), bot=True)  # deploying is not approving
    with pytest.raises(SettingsError, match=r"`environments\[3\].policy.bots` must map actions"):
        policy(bots={"lock": ["B0CI"]})
    with pytest.raises(SettingsError, match=r"`environments\[3\].policy.bots.deploy` must be a list"):
        policy(bots={"deploy": "B0CI"})
