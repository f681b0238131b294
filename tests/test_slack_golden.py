"""Every kind of reply Ferry sends, as Slack receives it, against golden files.

The real ``errbot`` process on the local Slack (``tests.test_slack.running_ferry``; the local Slack
records every Web API call with its arguments) is driven through one conversation: command answers
and refusals (Ferry's, Errbot's ACLs'), an approval request, its update by a press and by a typed
command, a refused press (ephemeral), an expiry, Flux's news in the command's thread, ``!pending``,
``!audit``, ``!lock``/``!locks``/``!unlock``. What Slack received (``text`` and ``blocks`` of
``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``) is compared with
``tests/data/golden/slack_replies.txt``, after what changes from run to run (change ids, commit
shas, times, dates, durations, ports) is replaced by placeholders. Each text is also checked
against Slack's mrkdwn rules (``tests/mrkdwn.py``: no markup but Ferry's own mentions of the people
it means) and its blocks against Block Kit's (``tests/blockkit.py``).

A change meant to alter what Ferry says: regenerate the golden file and read its diff::

    FERRY_GOLDEN=write .venv/bin/python -m pytest -q tests/test_slack_golden.py

Not covered here: a table too long for a message goes as a file (tests/test_slack_files.py).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests import blockkit, mrkdwn
from tests.fixtures_git import git, remote_log
from tests.flux_events import encode, flux_event, now_rfc3339, signed
from tests.test_slack import ADA, ALICE, CHANNEL, MALLORY, _tail, post, running_ferry
from tests.test_slack import fleet_url, slack  # noqa: F401  (fixtures)

GOLDEN = Path(__file__).parent / "data" / "golden" / "slack_replies.txt"
SAID = ("chat.postMessage", "chat.update", "chat.postEphemeral")
QA_TOKEN = "flux-qa-token-golden"
ACLS = json.dumps({"FerryRollback:*": {"allowusers": [ALICE]}})


def guarded(envs):
    envs["prod"]["policy"] = {"approval": {"approvers": [ADA]}}
    envs["stag"]["policy"] = {"approval": {"expire_minutes": 0.02}}  # 1.2 s: a request that expires


class Conversation:
    """Steps of a conversation, each waiting for the replies it expects, and what Slack received."""

    def __init__(self, slack, log):
        self.slack, self.log, self.steps, self.ids = slack, log, [], {}

    def _said(self) -> list:
        with self.slack._lock:
            return [c for c in self.slack.calls if c.method in SAID]

    def step(self, title: str, replies: int, act):
        """``act()``, then wait for ``replies`` more messages (posts, updates, ephemerals)."""
        before = len(self._said())
        result = act()
        calls = self.slack.wait_for(lambda: (lambda s: s if len(s) >= before + replies else None)(self._said()),
                                    60, f"{replies} replies to {title}\n{_tail(self.log)}")[before:]
        self.steps.append((title, calls))
        return result, calls

    def typed(self, user, channel, text, replies, thread_ts=""):
        return self.step(f"{user} in {channel}: {text}", replies,
                         lambda: self.slack.say(user, channel, text, thread_ts=thread_ts))

    def transcript(self) -> str:
        out = []
        for title, calls in self.steps:
            out.append(f"=== {title}")
            for call in calls:
                args = call.args
                where = ("in thread" if args.get("thread_ts") else "flat") if call.method != "chat.update" else "in place"
                out.append(f"--- {call.method} ({where})")
                out.append(args.get("text", ""))
                if args.get("blocks"):
                    blocks = json.loads(args["blocks"]) if isinstance(args["blocks"], str) else args["blocks"]
                    out.append("blocks: " + json.dumps(blocks, indent=1, ensure_ascii=False))
        return self.stable("\n".join(out) + "\n")

    def stable(self, text: str) -> str:
        """``text`` with what changes between runs replaced by placeholders."""
        for found in re.findall(r"change `([0-9a-f]{10})`", text):
            self.ids.setdefault(found, f"<change-{len(self.ids) + 1}>")
        for change_id, name in self.ids.items():
            text = text.replace(change_id, name)
        text = re.sub(r"\b[0-9a-f]{40}\b|\b[0-9a-f]{10}\b", "<sha>", text)
        text = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "<date>", text)
        text = re.sub(r"\b\d{2}:\d{2}(:\d{2})?\b", "<time>", text)
        text = re.sub(r"\b\d+(m|h|d)?( \d+[smh])?s? after the push", "<duration> after the push", text)
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
        return text


def flux_news(talk, command: str, **event):
    """Flux's event for the change ``command`` pushed (once the command is done, so Ferry waits for
    it), as notification-controller posts it; a second after the push (its stamps are seconds)."""
    slack = talk.slack
    slack.wait_for(lambda: f"ran {command} -> ok" in talk.log.read_text(), 30, f"the end of {command}")
    later = now_rfc3339(datetime.now(timezone.utc) + timedelta(seconds=1))
    body = encode(flux_event(timestamp=later, **event))
    return talk.step(f"Flux: {event}", 1, lambda: post(slack.webserver, body, signed(body, QA_TOKEN),
                                                       path="/flux/qa"))


def commit_as(url: str, path: str, change: tuple, author: tuple, message: str) -> None:
    """A commit on the remote from a second clone, by ``author`` (name, email), editing one file."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        clone = Path(folder) / "clone"
        git("clone", "--quiet", url, str(clone))
        file = clone / path
        file.write_text(file.read_text().replace(*change))
        git("commit", "--quiet", "-am", message, cwd=clone, author=author)
        git("push", "--quiet", "origin", "HEAD", cwd=clone)


def checked(calls, people) -> None:
    """Every text and block as Slack's rules want it; the mentions only of ``people``."""
    for call in calls:
        assert mrkdwn.problems(call.args.get("text", ""), people) == [], call.args
        if call.args.get("blocks"):
            raw = call.args["blocks"]
            blocks = json.loads(raw) if isinstance(raw, str) else raw
            assert blockkit.problems(blocks) == [], blocks
            for kind, text in mrkdwn.block_texts(blocks):
                assert mrkdwn.problems(text, people if kind == "mrkdwn" else ()) == [], text


def request_of(calls) -> dict:
    """The posted message with the Approve and Reject buttons among ``calls``."""
    (call,) = [c for c in calls if c.method == "chat.postMessage" and c.args.get("blocks")]
    return call.args


def kept(slack, posted: dict) -> dict:
    """The message as Slack keeps it (its ``ts`` given), for a press on its buttons."""
    (message,) = [m for (c, _), m in list(slack.messages.items())
                  if c == posted["channel"] and m.get("blocks") and m["text"] == posted["text"]]
    return message


def test_every_reply_reads_right_in_slack(tmp_path, slack, fleet_url):
    with running_ferry(tmp_path, slack, fleet_url, tune=guarded, FERRY_ACCESS_CONTROLS=ACLS,
                       GITOPS_FLUX_TOKEN_QA=QA_TOKEN) as log:
        talk, dm = Conversation(slack, log), slack.dm_channel(ADA)
        talk.typed(ALICE, CHANNEL, "!versions", 1)
        talk.typed(ALICE, CHANNEL, "!deploy", 1)
        talk.typed(ALICE, CHANNEL, "!deploy nosuchapp 1.0.0 to qa", 1)
        talk.typed(MALLORY, CHANNEL, "!deploy podinfo 6.5.1 to qa", 1)
        talk.typed(MALLORY, CHANNEL, "!rollback podinfo on qa", 1)
        talk.typed(ADA, CHANNEL, "!lock dev incident 42", 1)
        talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to qa", 2)

        # Flux's news, in the thread of the command that pushed
        flux_news(talk, "!deploy podinfo 6.5.3 to qa", reason="UpgradeSucceeded", version="6.5.3")

        # an approval request; a refused press (to the presser alone); Ada's press approves it
        _, calls = talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to prod", 1)
        request = kept(slack, request_of(calls))
        talk.step("Alice presses Approve on her own request", 1,
                  lambda: slack.press(slack.interaction(ALICE, request, "ferry_approve")))
        talk.step("Ada presses Approve", 1, lambda: slack.press(slack.interaction(ADA, request, "ferry_approve")))

        # a request rejected by a typed command: the answer, and the request updated in place
        _, calls = talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to prod", 1)
        rejected = re.search(r"is change `([0-9a-f]{10})`", calls[0].args["text"]).group(1)
        talk.typed(ADA, CHANNEL, f"!reject {rejected} not during the sale", 2)

        # a request that expires: updated in place
        talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to stag", 1)
        talk.step("the stag request expires", 1, lambda: None)

        talk.typed(ALICE, CHANNEL, "!deploy redis 19.0.0 to prod", 1)
        talk.typed(ALICE, CHANNEL, "!pending", 1)
        talk.typed(ALICE, CHANNEL, "!audit", 1)
        talk.typed(ADA, dm, "!lock dev incident 42 & more", 1)
        talk.typed(ADA, dm, "!locks", 1)
        talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to dev", 1)
        talk.typed(ADA, dm, "!unlock dev", 1)
        assert "Traceback" not in log.read_text(), _tail(log)
        assert len(remote_log(fleet_url)) >= 2

    checked([c for _, calls in talk.steps for c in calls], {ALICE, ADA})
    said = talk.transcript()
    if os.environ.get("FERRY_GOLDEN") == "write":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(said)
    assert said == GOLDEN.read_text()


def test_no_outside_text_becomes_a_mention_or_markup(tmp_path, slack, fleet_url):
    """Reasons, Flux's messages and text shaped like Ferry's mention marker are shown as text:
    nothing anyone else wrote mentions, broadcasts or links."""
    forged = "\ue0f0" + "0" * 24 + ":@U0MALLORY\ue0f1"  # the marker's shape, without the nonce
    hostile = f"<@U0MALLORY> <!channel> <#C0GENERAL> {forged} &lt;@U0MALLORY&gt;"
    # a commit by someone else, its author and message written to be read as markup
    commit_as(fleet_url, "apps/qa/podinfo-values.yaml", ('"6.5.2"', '"6.5.1"'),
              ("<@U0MALLORY> <!channel>", "x@<!here>.test"), f"back to 6.5.1 {hostile}")
    with running_ferry(tmp_path, slack, fleet_url, tune=guarded, GITOPS_FLUX_TOKEN_QA=QA_TOKEN) as log:
        talk, dm = Conversation(slack, log), slack.dm_channel(ADA)
        talk.typed(ADA, dm, f"!lock dev {hostile}", 1)
        talk.typed(ADA, dm, "!locks", 1)
        talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.6.0 to dev", 1)
        talk.typed(ADA, dm, "!unlock dev", 1)
        _, calls = talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to prod", 1)
        change_id = re.search(r"is change `([0-9a-f]{10})`", calls[0].args["text"]).group(1)
        talk.typed(ADA, CHANNEL, f"!reject {change_id} {hostile}", 2)
        talk.typed(ALICE, CHANNEL, f"!deploy podinfo {hostile} to qa", 1)
        talk.typed(ALICE, CHANNEL, "!deploy podinfo 6.5.3 to qa", 2)
        flux_news(talk, "!deploy podinfo 6.5.3 to qa", reason="UpgradeFailed", version="6.5.3",
                  message=f"upgrade failed: {hostile}")
        _, (history,) = talk.typed(ALICE, CHANNEL, "!versions podinfo qa", 1)
        # Git keeps no < or > in an author: what is left of it is shown as it is, as text
        assert "@U0MALLORY !channel &lt;x@!here.test&gt;" in history.args["text"], history.args["text"]
        assert "Traceback" not in log.read_text(), _tail(log)
    calls = [c for _, step in talk.steps for c in step]
    checked(calls, {ALICE, ADA})  # Mallory and #general are never mentioned, nothing broadcasts
    texts = [c.args.get("text", "") for c in calls] + [
        t for c in calls if c.args.get("blocks") for _, t in mrkdwn.block_texts(json.loads(c.args["blocks"]))]
    shown = [t for t in texts if "U0MALLORY" in t]
    assert len(shown) >= 6, texts  # the lock, !locks, the refusal, the rejection, Flux, the history
    assert all("&lt;@U0MALLORY&gt;" in t or "U0MALLORY" in t for t in shown)
    assert not any("<@U0MALLORY>" in t or "<!channel>" in t or "<#C0GENERAL>" in t for t in texts)
    assert any("\ufffd" + "0" * 24 + ":@U0MALLORY\ufffd" in t for t in texts)  # the forged marker: text


def test_only_ferrys_own_mentions_become_slack_markup():
    """FerrySlack, after escaping everything, turns exactly the markers ``gitops.identity`` wrote
    into mentions: in the text and in Block Kit's mrkdwn, the bare ID in code, plain text and files;
    a marker-shaped text from anyone else is shown, its private-use characters as U+FFFD. Every
    other way out shows the bare ID. And a line after an inline element keeps its line break."""
    from slackv3.markdown import slack_markdown_converter

    from gitops.identity import channel, mention, person, plain
    from gitops.model import Requester
    from tests.backends import backend_module

    ferryslack = backend_module("ferryslack")
    convert = ferryslack.KeepCodeBlocks(slack_markdown_converter()).convert
    forged = "\ue0f0" + "0" * 24 + ":@U0MALLORY\ue0f1"
    text = (f"`prod` waits for {mention(ADA)} (not {person(Requester(ALICE))}) in {channel('C0DEPLOY')}.\n"
            f"`!approve 1f` or {forged} <@U0MALLORY> <!here>\n```\n{mention(ADA)} {forged}\n```")
    assert convert(text) == (
        "`prod` waits for <@U0ADA> (not <@U0ALICE>) in <#C0DEPLOY>.\n"
        "`!approve 1f` or \ufffd000000000000000000000000:@U0MALLORY\ufffd &lt;@U0MALLORY&gt; &lt;!here&gt;\n"
        "```\nU0ADA \ufffd000000000000000000000000:@U0MALLORY\ufffd\n```")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"by {mention(ADA)}"}},
              {"type": "actions", "elements": [{"type": "button", "value": "1f",
                                                "text": {"type": "plain_text", "text": f"{mention(ADA)}"}}]}]
    assert ferryslack.blocks_for_slack(blocks) == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "by <@U0ADA>"}},
        {"type": "actions", "elements": [{"type": "button", "value": "1f",
                                          "text": {"type": "plain_text", "text": "U0ADA"}}]}]
    assert plain(text).startswith("`prod` waits for U0ADA (not U0ALICE) in C0DEPLOY.\n")
    assert forged in plain(text)  # not Ferry's: left as it is (Slack's way out shows it as text)
    assert mention("@alice") == "@alice" and person(Requester("B0CI", bot=True)) == "the bot B0CI"
    assert mention("<!channel>") == "<!channel>"  # never a marker around what could be markup
