"""The webserver under load (issue 19, item 1): the real bot (errbot with config.py, the Events
API on Ferry's webserver) while thousands of hostile connections come and go on loopback
(devtools/hostile.py: slowloris, idle, huge headers, lying and negative lengths, chunked
floods, answers never read). A signed Flux event and a signed Slack request keep being answered
throughout, each within a generous bound, and the bot lives on."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

from tests.flux_events import encode, flux_event, signed
from devtools.hostile import HostileClients
from tests.test_slack import _tail, fleet_url, running_ferry, slack  # noqa: F401 (fixtures)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FLUX_TOKEN = "qa-token-load-7c2"
BOUND = 30.0  # seconds: an answer, not a speed (bench/ measures speed); a server deaf while the
# hostile clients run (40 s) still fails it, while a loaded 2-core CI machine does not
HOSTILE = 3000  # connections opened in all
AT_ONCE = 1000  # of them open at once: four times the server's MAX_CONNECTIONS


def slack_challenge(n: int) -> tuple[bytes, dict]:
    """Slack's url_verification request, signed with the signing secret: answered only when the
    signature holds, with nothing run in chat."""
    body = json.dumps({"token": "verification", "type": "url_verification", "challenge": f"load-{n}"}).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": f"v0={mac}"}


def answered(method: str, url: str, **kwargs) -> requests.Response:
    started = time.monotonic()
    response = requests.request(method, url, timeout=BOUND, **kwargs)
    assert time.monotonic() - started < BOUND, f"{url} answered after {time.monotonic() - started:.1f} s"
    return response


def test_flux_and_slack_are_answered_under_thousands_of_hostile_connections(tmp_path, slack, fleet_url):
    with running_ferry(tmp_path, slack, fleet_url, socket_mode=False, SLACK_SIGNING_SECRET=SECRET,
                       GITOPS_FLUX_TOKEN_QA=FLUX_TOKEN) as log:
        port = int(slack.webserver)
        base = f"http://127.0.0.1:{port}"
        assert answered("GET", f"{base}/ferry/health").text == "ok"
        rounds = 0
        with HostileClients("127.0.0.1", port, total=HOSTILE, at_once=AT_ONCE, seconds=40) as hostile:
            while hostile.running or rounds < 3:
                rounds += 1
                event = encode(flux_event(message=f"Helm upgrade succeeded, round {rounds}"))
                flux = answered("POST", f"{base}/flux/qa", data=event, headers=signed(event, FLUX_TOKEN))
                assert flux.status_code == 200 and flux.text.startswith("accepted"), (rounds, flux.text)
                body, headers = slack_challenge(rounds)
                challenge = answered("POST", f"{base}/slack/events", data=body, headers=headers)
                assert challenge.status_code == 200 and challenge.json() == {"challenge": f"load-{rounds}"}
                time.sleep(0.2)
            closed = sum(hostile.closed_by_server.values())
        assert hostile.opened == HOSTILE and closed >= HOSTILE // 2, (hostile.opened, hostile.closed_by_server)
        refused = {status for (_, status) in hostile.answers}
        assert refused <= {"400", "413", "431"} and hostile.answers, hostile.answers
        assert answered("GET", f"{base}/ferry/health").text == "ok"
        assert "Traceback" not in log.read_text(), _tail(log)
