"""Slack's Web API misbehaving as it does, with the real errbot process on the local Slack
(Socket Mode): 429 with Retry-After, 5xx before and after Slack took the call. Every command sent
during the fault is answered exactly once: no reply lost, none doubled."""
import time

from tests.slack_faults import Fault
from tests.test_slack import ALICE, CHANNEL, _tail, ferry, fleet_url, slack, thread  # noqa: F401 (fixtures)


def settled(slack, ts, expected: int, wait: float = 2.0) -> list:
    """The bot's messages in the thread of ``ts`` once ``expected`` came and ``wait`` passed."""
    thread(slack, CHANNEL, ts, expected)
    time.sleep(wait)  # anything sent twice would arrive in this time
    return [m["text"] for m in slack.posted(channel=CHANNEL, thread_ts=ts)]


def posts(slack) -> int:
    """Every chat.postMessage the bot sent: those Slack took and those it refused."""
    return sum(c.method == "chat.postMessage" for c in [*slack.calls, *slack.faulted])


def test_a_rate_limited_reply_waits_for_retry_after_and_is_said_once(slack, ferry):
    slack.fault("chat.postMessage", Fault(429, retry_after=1), Fault(429, retry_after=1))
    before = posts(slack)
    ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
    said = settled(slack, ts, 1)
    assert len(said) == 1 and "podinfo" in said[0], said
    assert posts(slack) - before == 3  # two refused, one taken


def test_a_server_error_before_slack_took_the_reply_is_sent_again_once(slack, ferry):
    slack.fault("chat.postMessage", Fault(500))
    ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
    said = settled(slack, ts, 1)
    assert len(said) == 1 and "podinfo" in said[0], said
    assert any(c.method == "conversations.replies" for c in slack.calls)  # it looked before sending again


def test_a_server_error_after_slack_kept_the_reply_never_posts_it_twice(slack, ferry):
    slack.fault("chat.postMessage", Fault(503, kept=True))
    before = posts(slack)
    ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
    said = settled(slack, ts, 1, wait=3.0)
    assert len(said) == 1 and "podinfo" in said[0], said
    assert posts(slack) - before == 1
    assert "kept the message; not sent again" in _tail(ferry, 20000)


def test_a_rate_limit_past_the_bound_is_logged_as_not_delivered(slack, ferry):
    slack.fault("chat.postMessage", Fault(429, retry_after=600))
    ts = slack.say(ALICE, CHANNEL, "!versions podinfo")
    deadline = time.monotonic() + 20
    while "not delivered" not in _tail(ferry, 20000) and time.monotonic() < deadline:
        time.sleep(0.2)
    log = _tail(ferry, 20000)
    assert "Slack rate-limits chat.postMessage; not delivered" in log and f"thread {ts}" in log
    assert slack.posted(channel=CHANNEL, thread_ts=ts) == []
    later = slack.say(ALICE, CHANNEL, "!versions redis")  # the bot is not stuck: the next reply goes out
    assert "redis" in thread(slack, CHANNEL, later, 1)[0]
