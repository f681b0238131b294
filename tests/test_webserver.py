"""The webhook server under abuse (issue 11, item 14), over real sockets: Ferry's bounded server
on its own, then as ``FERRY_WEBSERVER_PORT`` opens it in a real Errbot with Ferry's plugins."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests

import ferryweb
from devtools.fluxrepo import demo_files, demo_settings
from devtools.registry import free_port
from tests.ferrybot import started_bot
from tests.flux_events import signed
from tests.serving import answering

REQUEST = b"GET /ferry/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def hello(environ, start_response):
    """Answers "ok", after parsing a JSON body as Slack's Bolt does before checking a signature."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        json.loads(environ["wsgi.input"].read(length))  # RecursionError on deep nesting
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]


@pytest.fixture
def server():
    running = []

    def start(**limits):
        s = ferryweb.start("127.0.0.1", 0, hello, **limits)
        running.append(s)
        return s

    yield start
    for s in running:
        s.shutdown()
        s.server_close()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=20)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes (b"" or a reset); False if it still holds the line after 20 s."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_the_limits_are_at_most_30_seconds_and_bounded():
    assert ferryweb.DEADLINE <= 30 and ferryweb.IDLE <= 30 and 0 < ferryweb.MAX_CONNECTIONS <= 64


def test_an_idle_connection_is_closed(server):
    s = server(idle=0.5, deadline=5)
    with connect(s) as sock:
        assert closed_by_server(sock)


def test_a_slowloris_connection_is_closed_at_its_deadline(server):
    """One header byte every 0.2 s never trips the idle timeout; the deadline ends it anyway."""
    s = server(idle=5, deadline=1.0)
    with connect(s) as sock:
        sock.sendall(b"POST /flux/qa HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        cut = False
        for _ in range(200):  # 40 s of trickling at most: far past the deadline
            try:
                sock.sendall(b"X")
                if sock.recv(1) == b"":
                    cut = True
                    break
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                cut = True
                break
        assert cut, "the server kept a slowloris connection open"


def test_connections_are_bounded_and_slots_come_back(server):
    s = server(max_connections=4, idle=20, deadline=25)
    idle = [connect(s) for _ in range(4)]
    time.sleep(0.2)  # let the server accept them all
    try:
        with connect(s) as fifth:
            fifth.sendall(REQUEST)
            assert closed_by_server(fifth)  # turned away unread, without an answer
        assert s.turned_away >= 1
    finally:
        for sock in idle:
            sock.close()
    # the held slots come back as their connections close
    response = answering(f"http://127.0.0.1:{s.server_port}/ferry/health")
    assert response.status_code == 200 and response.text == "ok\n"


def test_only_ferrys_paths_are_served(server):
    s = server()
    base = f"http://127.0.0.1:{s.server_port}"
    assert requests.get(f"{base}/ferry/health", timeout=5).status_code == 200
    for path in ("/echo", "/", "/flux", "/flux/", "/slack/events/x", "/ferry/healthz"):
        assert requests.post(base + path, data=b"<b>hi</b>", timeout=5).status_code == 404, path
    assert requests.post(f"{base}/flux/qa", timeout=5).status_code == 200


def test_deep_or_huge_bodies_are_refused_before_any_handler_parses_them(server):
    s = server()
    url = f"http://127.0.0.1:{s.server_port}/slack/events"
    deep = b'{"event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for body in (deep, iter([deep[:1000], deep[1000:]])):  # with a Content-Length, and chunked
        response = requests.post(url, data=body, timeout=10)
        assert response.status_code == 400 and "nests more than 64 levels" in response.text
    assert requests.post(url, data=b'{"a": [[["x"]]], "b": "[[[[[[[["}', timeout=5).text == "ok\n"
    huge = b" " * (ferryweb.MAX_BODY + 1)
    assert requests.post(url, data=huge, timeout=10).status_code == 413
    assert requests.post(url, data=iter([huge[:10], huge[10:]]), timeout=10).status_code == 413


# ---- in Ferry, as FERRY_WEBSERVER_PORT opens it ---------------------------------------------

def test_ferrys_webserver_refuses_deep_json_and_errbots_routes(tmp_path, bare_remote, registry, charts,
                                                                 monkeypatch):
    token = "qa-token-deep-5e1"
    port = free_port()
    monkeypatch.setenv("FERRY_WEBSERVER_PORT", str(port))
    monkeypatch.setenv("FERRY_WEBSERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("GITOPS_FLUX_TOKEN_QA", token)
    url = bare_remote(demo_files(f"{registry.url}/charts"))
    with started_bot(tmp_path, demo_settings(url), CORE_PLUGINS=("ACLs", "Plugins", "Utils",
                                                                  "Webserver")) as bot:
        base = f"http://127.0.0.1:{port}"
        health = answering(f"{base}/ferry/health")
        assert health.status_code == 200 and health.text == "ok"
        deep = b'{"involvedObject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = requests.post(f"{base}/flux/qa", data=deep, headers=signed(deep, token), timeout=10)
        assert response.status_code == 400 and "nests more than 64 levels" in response.text
        assert "Traceback" not in response.text
        echo = requests.post(f"{base}/echo", data=b"<script>x</script>", timeout=5)
        assert echo.status_code == 404 and "<script>" not in echo.text
        server = bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").webserver
        assert isinstance(server, ferryweb.BoundedServer)
        assert server.deadline <= 30
