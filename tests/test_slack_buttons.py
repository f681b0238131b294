"""Approval buttons on Slack for real: the ``errbot`` process with Ferry's Slack backend against the
local Slack (``tests.slack_server``), a bare Git remote and a chart registry.

A change into a guarded environment is announced with Approve and Reject buttons (Block Kit, as
Slack's reference shapes it). A press arrives as Slack sends it, an ``interactive`` Socket Mode
envelope or a signed form POST to ``/slack/interactive``, and does what the typed command does, for
the presser: the change lands (commit on the remote, approved by the presser) and the message is
updated in place; a refused or stale press is said to the presser alone and changes nothing. An
edited message runs nothing."""
import copy
import hashlib
import hmac
import json
import time

from tests import blockkit, mrkdwn
from tests.fixtures_git import remote_file, remote_log
from tests.test_slack import ADA, ALICE, CHANNEL, MALLORY, ROOT, _tail, plain, post, running_ferry, thread
from tests.test_slack import fleet_url, slack  # noqa: F401  (fixtures)
from ruamel.yaml import YAML

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def guarded(envs):
    envs["prod"]["policy"] = {"approval": {"approvers": [ADA]}}
    envs["stag"]["policy"] = {"approval": {"expire_minutes": 0.02}}  # 1.2 s: a request that expires


def ask(slack, text, user=ALICE):
    """``text`` typed in the channel; (the change id, the message with buttons that announced it)."""
    ts = slack.say(user, CHANNEL, text)
    (waiting,) = thread(slack, CHANNEL, ts, 1)
    assert "needs a second person" in waiting, waiting
    change_id = waiting.split("is change `", 1)[1].split("`", 1)[0]
    (message,) = [m for (c, t), m in list(slack.messages.items()) if c == CHANNEL and t > ts
                  and change_id in json.dumps(m.get("blocks"))]
    assert message["thread_ts"] == ts  # in the thread of the command, as every reply
    return change_id, copy.deepcopy(message)  # as the people saw it: a stale button stays pressable


def ephemeral(slack, user, count):
    """The ``count``-th ephemeral message to ``user`` (1-based); fails if it never comes."""
    found = slack.wait_for(lambda: (lambda e: e if len(e) >= count else None)(
        slack.calls_of("chat.postEphemeral", user=user)), 30, f"{count} ephemeral message(s) to {user}")
    return found[count - 1]


def updates(slack):
    return slack.calls_of("chat.update")


ACLS = json.dumps({"FerryRollback:*": {"allowusers": [ALICE]}, "FerryApprovals:reject": {"denyusers": [MALLORY]}})


def test_approval_buttons_in_socket_mode(tmp_path, slack, fleet_url):
    with running_ferry(tmp_path, slack, fleet_url, tune=guarded, FERRY_ACCESS_CONTROLS=ACLS) as log:
        base = len(remote_log(fleet_url))
        change_id, request = ask(slack, "!deploy podinfo 6.5.3 to prod")

        # the request: the text (the commands still work) and two buttons carrying the change id
        assert blockkit.problems(request["blocks"]) == []
        section, actions = request["blocks"]
        assert [(e["action_id"], e["value"], e["text"]["text"], e["style"]) for e in actions["elements"]] == [
            ("ferry_approve", change_id, "Approve", "primary"), ("ferry_reject", change_id, "Reject", "danger")]
        assert f"`!approve {change_id}` or `!reject {change_id}`" in section["text"]["text"]
        assert section["text"]["text"].count("```") == 2 and "6.5.3" in section["text"]["text"]

        # refused presses: the requester herself, someone prod's approvers do not name. One line to
        # the presser alone, in the request's thread; the remote and the message are untouched.
        for n, (who, why) in enumerate([(ALICE, "You cannot approve your own change: another person has to."),
                                        (MALLORY, "You may not approve changes to prod: ask U0ADA.")]):
            slack.press(slack.interaction(who, request, "ferry_approve"))
            said = ephemeral(slack, who, 1)
            assert plain(said["text"]) == why, said
            assert said["channel"] == CHANNEL and said["thread_ts"] == request["thread_ts"]
        # Errbot's ACLs apply to a press as to the command (FERRY_ACCESS_CONTROLS denies her !reject)
        slack.press(slack.interaction(MALLORY, request, "ferry_reject"))
        assert ephemeral(slack, MALLORY, 2)["text"] == "You're not allowed to access this command from this user"
        assert len(remote_log(fleet_url)) == base and updates(slack) == []
        assert slack.messages[(CHANNEL, request["ts"])]["blocks"] == request["blocks"]
        assert slack.reactions(CHANNEL, request["ts"]) == []  # nothing on the message everyone sees

        # Ada presses Approve: the change lands as with `!approve`, approved by her, and the message
        # says so in place: who decided, the commit, no buttons left
        slack.press(slack.interaction(ADA, request, "ferry_approve"))
        (update,) = slack.wait_for(lambda: updates(slack), 60, f"chat.update of the request\n{_tail(log)}")
        commits = remote_log(fleet_url, fmt="%H|%an|%s")
        assert len(commits) == base + 1
        sha, author, subject = commits[0].split("|")
        assert (author, subject) == ("Alice Liddell", "deploy podinfo 6.5.0 → 6.5.3 to prod")
        body = "\n".join(remote_log(fleet_url, fmt="%B"))
        assert "Approved-by: Ada Admin <U0ADA>" in body and "Requested-by: Alice Liddell <U0ALICE>" in body
        assert (update["channel"], update["ts"]) == (CHANNEL, request["ts"])
        decided = slack.messages[(CHANNEL, request["ts"])]
        assert [b["type"] for b in decided["blocks"]] == ["section"]
        said = decided["blocks"][0]["text"]["text"]
        assert said.startswith("Approved by <@U0ADA>. Deployed `podinfo` 6.5.0 → 6.5.3 in prod: "
                               f"commit {sha[:10]}"), said
        assert plain(decided["text"]).startswith("Approved by <@U0ADA>. Deployed podinfo")
        assert slack.calls_of("chat.postEphemeral", user=ADA) == []

        # stale presses, to the presser alone: the same button again, Reject after the approval, an
        # id nobody asked for; nothing changes
        for action, value, why in [("ferry_approve", None, f"Change {change_id} was already approved by <@U0ADA>."),
                                   ("ferry_reject", None, f"Change {change_id} was already approved by <@U0ADA>."),
                                   ("ferry_approve", "0123456789",
                                    "No change 0123456789 is waiting for approval: !pending lists them.")]:
            count = len(slack.calls_of("chat.postEphemeral", user=ADA))
            slack.press(slack.interaction(ADA, request, action, value=value))
            assert plain(ephemeral(slack, ADA, count + 1)["text"]) == why
        assert len(remote_log(fleet_url)) == base + 1 and len(updates(slack)) == 1

        # Reject: the change is dropped, the message says who rejected it
        rejected_id, rejected = ask(slack, "!deploy podinfo 6.6.0 to prod")
        slack.press(slack.interaction(ADA, rejected, "ferry_reject"))
        slack.wait_for(lambda: len(updates(slack)) == 2, 30, "the update of the rejected request")
        said = slack.messages[(CHANNEL, rejected["ts"])]["blocks"][0]["text"]["text"]
        assert plain(said) == (f"Rejected change {rejected_id} (deploy podinfo 6.5.3 → 6.6.0 in prod, asked by "
                               "<@U0ALICE>), by <@U0ADA>."), said
        assert len(remote_log(fleet_url)) == base + 1

        # a request past its time: its message says so (no buttons left); a press of the button
        # seen before is told so too, and nothing lands
        expired_id, expired = ask(slack, "!deploy podinfo 6.6.0 to stag")
        slack.wait_for(lambda: len(updates(slack)) == 3, 30, "the update of the expired request")
        count = len(slack.calls_of("chat.postEphemeral", user=ADA))
        slack.press(slack.interaction(ADA, expired, "ferry_approve"))
        said = plain(ephemeral(slack, ADA, count + 1)["text"])
        assert said.startswith(f"Change {expired_id} expired at ") and said.endswith("ask for it again."), said
        assert len(remote_log(fleet_url)) == base + 1 and len(updates(slack)) == 3

        # the typed command still works beside the buttons
        typed_id, _ = ask(slack, "!deploy podinfo 6.6.0 to prod")
        ts = slack.say(ADA, CHANNEL, f"!approve {typed_id}")
        (approved,) = thread(slack, CHANNEL, ts, 1)
        assert plain(approved).startswith("Deployed podinfo 6.5.3 → 6.6.0 in prod: commit "), approved
        assert len(remote_log(fleet_url)) == base + 2

        # everything posted is escaped, never links names; the scopes cover every call
        people = {ALICE, ADA}  # the only mentions: Ferry's own, of who asked and who decided
        for m in slack.posted() + updates(slack) + slack.calls_of("chat.postEphemeral"):
            assert mrkdwn.problems(m["text"], people) == [], m["text"]
            assert m.get("link_names") in (False, "false", "0"), m
        for m in slack.messages.values():
            for kind, text in mrkdwn.block_texts(m.get("blocks") or []):
                assert mrkdwn.problems(text, people if kind == "mrkdwn" else ()) == [], text
        granted = set(YAML(typ="safe").load((ROOT / "slack-app-manifest.yaml").read_text())
                      ["oauth_config"]["scopes"]["bot"])
        assert {"chat:write", "im:write"} <= granted  # chat.update, chat.postEphemeral; conversations.open
        assert "Traceback" not in log.read_text(), _tail(log)


def test_an_edited_message_runs_nothing(tmp_path, slack, fleet_url):
    """Slack sends an edit as a ``message_changed`` event: the edited text is not a new command."""
    with running_ferry(tmp_path, slack, fleet_url) as log:
        base = len(remote_log(fleet_url))
        ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
        thread(slack, CHANNEL, ts, 1)
        edit_ts = slack.next_ts()
        slack.say("", CHANNEL, "", subtype="message_changed", hidden=True,
                  message={"type": "message", "user": ALICE, "text": "!deploy podinfo 6.6.0 to dev", "ts": ts,
                           "edited": {"user": ALICE, "ts": edit_ts}},
                  previous_message={"type": "message", "user": ALICE, "text": "!versions podinfo", "ts": ts})
        after = slack.say(ALICE, CHANNEL, "!pending")  # handled after the edit: its answer comes later
        (answer,) = thread(slack, CHANNEL, after, 1)
        assert answer == "No change is waiting for approval."
        assert len(slack.posted(channel=CHANNEL, thread_ts=ts)) == 1  # the !versions answer only
        assert len(remote_log(fleet_url)) == base
        assert "an edited message in C0GENERAL runs nothing" in log.read_text()


def test_approval_buttons_with_the_events_api(tmp_path, slack, fleet_url):
    """Slack POSTs presses to /slack/interactive, signed with the signing secret: a forged, stale,
    malformed or replayed request is refused (401/400) and changes nothing."""
    from tests.test_slack import signed_event
    with running_ferry(tmp_path, slack, fleet_url, socket_mode=False, tune=guarded,
                       SLACK_SIGNING_SECRET=SECRET) as log:
        base = len(remote_log(fleet_url))
        ts = slack.next_ts()
        body, headers = signed_event(SECRET, {"type": "message", "channel": CHANNEL, "user": ALICE, "ts": ts,
                                              "channel_type": "channel", "text": "!deploy podinfo 6.5.3 to prod"})
        assert post(slack.webserver, body, headers)[0] == 200
        thread(slack, CHANNEL, ts, 1)
        request = copy.deepcopy(slack.message_with_buttons(CHANNEL))
        press = slack.interaction(ADA, request, "ferry_approve")
        body, headers = slack.signed_press(SECRET, press)

        def refused(body, headers, status):
            got, answer = post(slack.webserver, body, headers, path="/slack/interactive")
            assert got == status, (got, answer)
            return answer

        # forged (another secret, a changed body), stale (signed six minutes ago), malformed
        assert b"signing secret" in refused(*slack.signed_press("another-secret", press), 401)
        tampered = body.replace(b"U0ADA", b"U0MAL")
        assert tampered != body and b"signing secret" in refused(tampered, headers, 401)
        assert b"five minutes" in refused(*slack.signed_press(SECRET, press, stamp=str(int(time.time()) - 360)), 401)
        assert b"Timestamp" in refused(body, dict(headers, **{"X-Slack-Request-Timestamp": "soon"}), 400)
        for bad in (b"payload=%7Bnot+json", b"nothing=1", b"\xff\xfe"):
            _, signed = slack.signed_press(SECRET, press)
            stamp = signed["X-Slack-Request-Timestamp"]
            mac = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + bad, hashlib.sha256).hexdigest()
            refused(bad, dict(signed, **{"X-Slack-Signature": f"v0={mac}"}), 400)
        time.sleep(1)
        assert len(remote_log(fleet_url)) == base and updates(slack) == []
        assert slack.calls_of("chat.postEphemeral") == []

        # the press itself: answered at once, the change lands, the message is updated
        got, _ = post(slack.webserver, body, headers, path="/slack/interactive")
        assert got == 200
        slack.wait_for(lambda: updates(slack), 60, f"chat.update of the request\n{_tail(log)}")
        assert len(remote_log(fleet_url)) == base + 1
        assert "Approved-by: Ada Admin <U0ADA>" in "\n".join(remote_log(fleet_url, fmt="%B"))
        said = slack.messages[(CHANNEL, request["ts"])]["blocks"][0]["text"]["text"]
        assert said.startswith("Approved by <@U0ADA>. Deployed `podinfo` 6.5.0 → 6.5.3 in prod")

        # the very request again (a replay): refused, nothing said or changed
        assert b"already handled" in refused(body, headers, 400)
        # a new press of the stale button: the presser alone is told
        got, _ = post(slack.webserver, *slack.signed_press(SECRET, slack.interaction(ADA, request, "ferry_approve")),
                      path="/slack/interactive")
        assert got == 200
        said = ephemeral(slack, ADA, 1)
        assert plain(said["text"]).endswith("was already approved by <@U0ADA>."), said
        time.sleep(1)
        assert len(remote_log(fleet_url)) == base + 1 and len(updates(slack)) == 1
        assert "Slack interactivity request from 127.0.0.1 refused (401)" in log.read_text()
        assert "Traceback" not in log.read_text(), _tail(log)


def test_presses_are_taken_at_the_events_request_url_too(tmp_path, slack, fleet_url):
    """One Request URL for events and interactivity, as Slack's Bolt apps use: a signed press
    posted to /slack/events is a press (a forged one refused 401, nothing changed); events keep
    arriving there as before."""
    from tests.test_slack import signed_event
    with running_ferry(tmp_path, slack, fleet_url, socket_mode=False, tune=guarded,
                       SLACK_SIGNING_SECRET=SECRET) as log:
        base = len(remote_log(fleet_url))
        ts = slack.next_ts()
        body, headers = signed_event(SECRET, {"type": "message", "channel": CHANNEL, "user": ALICE, "ts": ts,
                                              "channel_type": "channel", "text": "!deploy podinfo 6.5.3 to prod"})
        assert post(slack.webserver, body, headers, path="/slack/events")[0] == 200
        thread(slack, CHANNEL, ts, 1)
        request = copy.deepcopy(slack.message_with_buttons(CHANNEL))
        press = slack.interaction(ADA, request, "ferry_approve")
        got, answer = post(slack.webserver, *slack.signed_press("another-secret", press), path="/slack/events")
        assert got == 401 and b"signing secret" in answer
        time.sleep(1)
        assert len(remote_log(fleet_url)) == base and updates(slack) == []
        got, _ = post(slack.webserver, *slack.signed_press(SECRET, press), path="/slack/events")
        assert got == 200
        slack.wait_for(lambda: updates(slack), 60, f"chat.update of the request\n{_tail(log)}")
        assert len(remote_log(fleet_url)) == base + 1
        assert "Traceback" not in log.read_text(), _tail(log)


def test_a_typed_decision_a_drop_or_an_expiry_updates_the_request_in_place(tmp_path, slack, fleet_url,
                                                                            external_commit):
    """However a change is decided, its request message says so in place and keeps no buttons:
    a typed `!approve`, a typed `!reject` (by an approver, and by the requester withdrawing it), a
    drop found at approval (the pin moved since), and an expiry while nobody looks."""
    with running_ferry(tmp_path, slack, fleet_url, tune=guarded) as log:
        base = len(remote_log(fleet_url))

        def decided(request):
            """The text of ``request``'s message once updated in place, with no buttons left."""
            slack.wait_for(lambda: [u for u in updates(slack) if u["ts"] == request["ts"]], 60,
                           f"the update of the request {request['ts']}\n{_tail(log)}")
            message = slack.messages[(CHANNEL, request["ts"])]
            assert [b["type"] for b in message["blocks"]] == ["section"], message
            return plain(message["blocks"][0]["text"]["text"])

        def typed(user, text):
            ts = slack.say(user, CHANNEL, text)
            (answer,) = thread(slack, CHANNEL, ts, 1)
            return plain(answer)

        approved_id, approved = ask(slack, "!deploy podinfo 6.5.3 to prod")
        assert typed(ADA, f"!approve {approved_id}").startswith("Deployed podinfo 6.5.0 → 6.5.3 in prod: commit ")
        sha = remote_log(fleet_url)[0]
        assert decided(approved).startswith("Approved by <@U0ADA>. Deployed podinfo 6.5.0 → 6.5.3 "
                                            f"in prod: commit {sha[:10]}")
        assert len(remote_log(fleet_url)) == base + 1

        rejected_id, rejected = ask(slack, "!deploy podinfo 6.6.0 to prod")
        assert typed(ADA, f"!reject {rejected_id} not during the sale").startswith("Rejected change")
        assert decided(rejected) == (f"Rejected change {rejected_id} (deploy podinfo 6.5.3 → 6.6.0 in prod, asked "
                                     "by <@U0ALICE>): not during the sale, by <@U0ADA>.")
        withdrawn_id, withdrawn = ask(slack, "!deploy podinfo 6.6.0 to prod")
        assert typed(ALICE, f"!reject {withdrawn_id}").startswith("Rejected change")
        assert decided(withdrawn).endswith("in prod, asked by <@U0ALICE>), by "
                                           "<@U0ALICE>.")

        dropped_id, dropped = ask(slack, "!deploy podinfo 6.6.0 to prod")
        pin_file = "apps/prod/podinfo-values.yaml"
        theirs = external_commit(fleet_url, {pin_file: remote_file(fleet_url, pin_file).replace('"6.5.3"', '"6.5.2"') + "\n"})
        why = (f"podinfo in prod moved from 6.5.3 to 6.5.2 since change {dropped_id} was asked: nothing changed; "
               "ask for it again.")
        assert typed(ADA, f"!approve {dropped_id}") == why
        assert decided(dropped) == f"Dropped when <@U0ADA> approved it: {why}"
        assert remote_log(fleet_url)[0] == theirs

        expired_id, expired = ask(slack, "!deploy podinfo 6.6.0 to stag")  # stag's requests expire after 1.2 s
        said = decided(expired)
        assert said.startswith(f"Change {expired_id} (deploy podinfo 6.5.1 → 6.6.0 in stag, asked by "
                               "<@U0ALICE>) expired at ") and said.endswith(" UTC without approval: ask for it again.")
        assert len(remote_log(fleet_url)) == base + 2  # the approved change and theirs

        assert not [m for m in slack.messages.values()
                    if any(b.get("type") == "actions" for b in m.get("blocks") or ())]  # no live buttons
        assert len(updates(slack)) == 5 and slack.calls_of("chat.postEphemeral") == []
        assert "Traceback" not in log.read_text(), _tail(log)


def test_a_request_that_expired_while_the_bot_was_down_is_updated_once_it_is_back(tmp_path, slack, fleet_url):
    """Where a request message is is kept with the bot's storage: a restart does not leave it
    with live buttons."""
    def expire_soon(envs):
        envs["stag"]["policy"] = {"approval": {"expire_minutes": 0.1}}  # 6 s

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with running_ferry(first, slack, fleet_url, tune=expire_soon) as log:
        change_id, request = ask(slack, "!deploy podinfo 6.6.0 to stag")
        # the command is done (its place kept) once its one log line is written
        slack.wait_for(lambda: "ran !deploy podinfo 6.6.0 to stag -> ok" in log.read_text(), 30,
                       f"the end of the command\n{_tail(log)}")
    assert updates(slack) == []  # stopped before its time
    slack.connected.clear()
    with running_ferry(second, slack, fleet_url, tune=expire_soon, FERRY_DATA_DIR=str(first / "errbot")) as log:
        (update,) = slack.wait_for(lambda: updates(slack), 60, f"the update of the expired request\n{_tail(log)}")
        assert (update["channel"], update["ts"]) == (CHANNEL, request["ts"])
        message = slack.messages[(CHANNEL, request["ts"])]
        assert [b["type"] for b in message["blocks"]] == ["section"]
        said = plain(message["blocks"][0]["text"]["text"])
        assert said.startswith(f"Change {change_id} (deploy podinfo 6.5.1 → 6.6.0 in stag, asked by "
                               "<@U0ALICE>) expired at "), said
        assert "Traceback" not in log.read_text(), _tail(log)
