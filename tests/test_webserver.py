"""The webhook server under abuse (issue 11, item 14; issue 19, item 1), over real sockets:
Ferry's waitress server on its own (a small WSGI app behind it), then as ``FERRY_WEBSERVER_PORT``
opens it in a real Errbot with Ferry's plugins. The load test is tests/test_webserver_load.py."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
from hypothesis import given, settings, strategies as st

import ferryweb
from devtools.fluxrepo import demo_files, demo_settings
from devtools.registry import free_port
from gitops.safeyaml import json_depth as json_nesting_depth
from tests.ferrybot import started_bot
from tests.flux_events import signed
from tests.serving import answering
from tests.test_config import load_config

REQUEST = b"GET /ferry/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


class Hello:
    """Answers "ok", after parsing a JSON body as Slack's Events adapter does before checking a
    signature (a RecursionError on deep nesting is a 500); records the bodies it was given."""

    def __init__(self):
        self.bodies = []

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        self.bodies.append(body)
        status, text = "200 OK", b"ok\n"
        if body:
            try:
                json.loads(body)
            except ValueError:
                status, text = "400 Bad Request", b"not JSON\n"
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]


@pytest.fixture
def server():
    running = []

    def start(app=None, **limits):
        s = ferryweb.start("127.0.0.1", 0, app or Hello(), **limits)
        running.append(s)
        return s

    yield start
    for s in running:
        s.stop()


def connect(server, timeout=20) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes (b"" or a reset); False if it still holds the line after 20 s."""
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def raw(server, head: bytes, body: bytes = b"") -> bytes:
    with connect(server, timeout=10) as sock:
        sock.sendall(head + body)
        return answer_of(sock)


def test_the_limits_are_at_most_30_seconds_and_bounded():
    assert ferryweb.DEADLINE <= 30 and ferryweb.IDLE <= 30 and 0 < ferryweb.MAX_CONNECTIONS <= 1024
    assert ferryweb.MAX_BODY <= 1024 * 1024 and ferryweb.MAX_HEADER <= 64 * 1024


def test_an_idle_connection_is_closed(server):
    s = server(idle=0.5, deadline=5)
    with connect(s) as sock:
        assert closed_by_server(sock)


@pytest.mark.parametrize("trickle", [b"X", b"\r\n"], ids=["header-bytes", "empty-lines"])
def test_a_slowloris_connection_is_closed_at_its_deadline(server, trickle):
    """A byte every 0.2 s never trips the idle timeout; the deadline ends the connection anyway
    (also when each pair of empty lines starts a new request)."""
    s = server(idle=5, deadline=1.0)
    with connect(s) as sock:
        if trickle == b"X":
            sock.sendall(b"POST /flux/qa HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        cut = False
        for _ in range(200):  # 40 s of trickling at most: far past the deadline
            try:
                sock.sendall(trickle)
                if sock.recv(1) == b"":
                    cut = True
                    break
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                cut = True
                break
        assert cut, "the server kept a slowloris connection open"


def test_a_full_server_makes_room_for_a_new_request(server):
    """Connections held open up to the limit do not keep a new caller out: the oldest one not
    being answered is closed, the newcomer is answered."""
    s = server(max_connections=4, idle=20, deadline=25)
    held = []
    try:
        for _ in range(4):
            held.append(connect(s))
            time.sleep(0.05)  # accepted in this order
        with connect(s) as fifth:
            fifth.sendall(REQUEST)
            assert status_of(answer_of(fifth)) == 200
        assert s.evicted >= 1
        assert closed_by_server(held[0])  # the oldest made room
    finally:
        for sock in held:
            sock.close()
    response = answering(f"http://127.0.0.1:{s.port}/ferry/health")
    assert response.status_code == 200 and response.text == "ok\n"


def test_pipelined_requests_are_read_only_a_few_ahead(server):
    """Two hundred pipelined GETs in one read would all be queued for the threads, ahead of a Flux
    event arriving next: the first few are answered, then the connection is closed."""
    app = Hello()
    s = server(app)
    with connect(s, timeout=10) as sock:
        # Sent as one segment: on a busy machine the server could read the first few requests
        # on their own (each read is bounded, not the connection) and answer them before the rest.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.sendall(b"GET /ferry/health HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        answer = answer_of(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == ferryweb.MAX_PIPELINED == len(app.bodies)
    assert requests.get(f"http://127.0.0.1:{s.port}/ferry/health", timeout=5).status_code == 200


class Parsed:
    """What waitress's parser hands the connection: headers, and ``close`` to drop its body."""

    def __init__(self):
        self.headers, self.closed = {}, False

    def close(self):
        self.closed = True


def test_past_the_bound_nothing_read_later_is_queued_even_once_the_first_are_answered():
    """The bound holds as waitress appends each request (under the connection's lock), not after a
    read: a thread answering the first ones between two reads does not make room for more."""
    queue = ferryweb.ReadAhead()
    parsed = [Parsed() for _ in range(ferryweb.MAX_PIPELINED + 3)]
    for request in parsed:
        queue.append(request)
    assert list(queue) == parsed[:ferryweb.MAX_PIPELINED]
    assert queue[-1].headers["CONNECTION"] == "close" and all(r.closed for r in parsed[ferryweb.MAX_PIPELINED:])
    queue.pop(0)  # a thread answered the first
    later = Parsed()
    queue.append(later)  # the rest of the pipeline, read next
    assert later.closed and later not in queue and len(queue) == ferryweb.MAX_PIPELINED - 1


def test_only_ferrys_paths_are_served(server):
    s = server()
    base = f"http://127.0.0.1:{s.port}"
    assert requests.get(f"{base}/ferry/health", timeout=5).status_code == 200
    for path in ("/echo", "/", "/flux", "/flux/", "/slack/events/x", "/ferry/healthz"):
        assert requests.post(base + path, data=b"<b>hi</b>", timeout=5).status_code == 404, path
    assert requests.post(f"{base}/flux/qa", timeout=5).status_code == 200


def test_deep_or_huge_bodies_are_refused_before_any_handler_parses_them(server):
    app = Hello()
    s = server(app)
    url = f"http://127.0.0.1:{s.port}/slack/events"
    deep = b'{"event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for body in (deep, iter([deep[:1000], deep[1000:]])):  # with a Content-Length, and chunked
        response = requests.post(url, data=body, timeout=10)
        assert response.status_code == 400 and "nests more than 64 levels" in response.text
    assert requests.post(url, data=b'{"a": [[["x"]]], "b": "[[[[[[[["}', timeout=5).text == "ok\n"
    exactly = b'"' + b"x" * (ferryweb.MAX_BODY - 2) + b'"'
    assert requests.post(url, data=exactly, timeout=10).text == "ok\n"
    huge = b" " * (ferryweb.MAX_BODY + 1)
    assert requests.post(url, data=huge, timeout=10).status_code == 413
    assert requests.post(url, data=iter([huge[:10], huge[10:]]), timeout=10).status_code == 413
    assert all(len(b) <= ferryweb.MAX_BODY for b in app.bodies)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"+5", b"0x10", b"5, 5", b" ", b"99999999999999999999999"])
def test_a_negative_or_malformed_content_length_is_refused_unread(server, length):
    """Issue 19: ``Content-Length: -1`` was read to the end of the stream (1 GB in 3 s) before any
    signature was checked. Now a 400 (or a 413 for a number past the limit) before any body."""
    app = Hello()
    s = server(app)
    with connect(s, timeout=10) as sock:
        sock.sendall(b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
        sent = 0
        sock.settimeout(0.05)
        answer = b""
        try:
            while sent < 64 * 1024 * 1024:  # keep sending, as the attacker does, until answered
                sock.sendall(b"[" * 65536)
                sent += 65536
                try:
                    answer = sock.recv(4096)
                    if answer:
                        break
                except socket.timeout:
                    continue
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert status_of(answer) in (400, 413), (length, answer[:80], sent)
    assert sent < 16 * 1024 * 1024  # answered long before the stream ended
    assert app.bodies == []


def test_a_lying_content_length_reaches_no_handler(server):
    app = Hello()
    s = server(app, idle=0.5, deadline=5)
    # shorter than said: the server waits for the rest, then closes an idle line; nothing is handled
    with connect(s) as sock:
        sock.sendall(b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{}")
        assert answer_of(sock) == b""
    # longer than said: the handler gets exactly the said bytes; the rest is a bad next request
    answer = raw(s, b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", b"{}GARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b" 400 Bad Request\r\n" in answer
    # two lengths that disagree
    answer = raw(s, b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}")
    assert status_of(answer) == 400
    assert app.bodies == [b"{}"]


def test_chunked_bodies_are_bounded_and_framed(server):
    app = Hello()
    s = server(app)
    head = b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    assert status_of(raw(s, head, b"2\r\n{}\r\n0\r\n\r\n")) == 200
    assert app.bodies == [b"{}"]
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    with connect(s) as sock:  # sent until the server refuses it, never read whole
        sock.sendall(head)
        try:
            for _ in range(1024):  # 64 MiB at most
                sock.sendall(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        assert status_of(answer_of(sock)) == 413
    assert status_of(raw(s, head, b"zz\r\n{}\r\n0\r\n\r\n")) == 400
    assert status_of(raw(s, head.replace(b"chunked", b"gzip"), b"{}")) == 501
    assert app.bodies == [b"{}"]


def test_huge_headers_are_refused(server):
    app = Hello()
    s = server(app)
    answer = raw(s, b"GET /ferry/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (ferryweb.MAX_HEADER + 1) + b"\r\n\r\n")
    assert status_of(answer) == 431 and app.bodies == []


def test_a_body_of_escaped_quotes_freezes_nothing(server):
    """Issue 19: 120 KB of escaped quotes made the nesting check quadratic (a frozen process, the
    health check timing out). Both are answered, each within a generous bound."""
    s = server()
    base = f"http://127.0.0.1:{s.port}"
    answers = {}

    def post():
        body = b'{"a": "' + b'\\"' * 60_000  # an unterminated string of escaped quotes
        answers["post"] = requests.post(f"{base}/slack/events", data=body, timeout=5).status_code

    poster = threading.Thread(target=post)
    poster.start()
    answers["health"] = requests.get(f"{base}/ferry/health", timeout=5).status_code
    poster.join(10)
    assert answers == {"post": 400, "health": 200}


# ---- the nesting check, as a function -------------------------------------------------------

def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('[]{}"\\ax\n\u2028')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 1]))
def test_the_nesting_depth_is_the_parsed_values_depth(value, indent):
    body = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    assert json_nesting_depth(body) == _depth(value)


def test_the_nesting_depth_of_bodies_that_are_not_json():
    assert json_nesting_depth(b"") == 0
    assert json_nesting_depth(b"]]]]") == 0
    assert json_nesting_depth(b'"\\') == 0
    assert json_nesting_depth(b'"[[[') == 0  # an unterminated string hides what follows
    assert json_nesting_depth(b"[" * 100_000) == 100_000
    assert json_nesting_depth(b'["\\"[", [[]]]') == 3


# ---- in Ferry, as FERRY_WEBSERVER_PORT opens it ---------------------------------------------

def test_ferrys_webserver_refuses_deep_json_and_errbots_routes(tmp_path, bare_remote, registry, charts,
                                                                 monkeypatch):
    token = "qa-token-deep-5e1"
    port = free_port()
    monkeypatch.setenv("FERRY_WEBSERVER_PORT", str(port))
    monkeypatch.setenv("FERRY_WEBSERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", token)
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    with started_bot(tmp_path, demo_settings(url)) as bot:
        base = f"http://127.0.0.1:{port}"
        health = answering(f"{base}/ferry/health")
        assert health.status_code == 200 and health.text == "ok"
        deep = b'{"involvedObject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = requests.post(f"{base}/flux/qa", data=deep, headers=signed(deep, token), timeout=10)
        assert response.status_code == 400 and "nests more than 64 levels" in response.text
        assert "Traceback" not in response.text
        echo = requests.post(f"{base}/echo", data=b"<script>x</script>", timeout=5)
        assert echo.status_code == 404 and "<script>" not in echo.text
        minus = raw(bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").webserver,
                    b"POST /flux/qa HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"{}")
        assert status_of(minus) == 400
        server = bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").webserver
        assert isinstance(server, ferryweb.BoundedServer) and server.deadline <= 30


def test_errbots_own_webserver_cannot_be_opened(tmp_path, bare_remote, registry, charts):
    """config.py does not load Errbot's Webserver plugin (werkzeug, unbounded): an admin's
    `!plugin config Webserver …` opens no port."""
    core_plugins = tuple(json.loads(load_config().stdout)["CORE_PLUGINS"])
    assert "Webserver" not in core_plugins
    port = free_port()
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    with started_bot(tmp_path, demo_settings(url), CORE_PLUGINS=core_plugins) as bot:
        bot.push_message("!plugin config Webserver {'HOST': '127.0.0.1', 'PORT': %d, 'SSL': None}" % port)
        reply = bot.pop_message(timeout=10)
        assert reply != "Plugin configuration done." and "Traceback" not in reply
        time.sleep(0.5)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
