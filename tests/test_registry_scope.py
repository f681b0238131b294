"""Registry credentials go only where they belong, and a refusal is not an outage (issue 11, items
8 and 9), against real registries on two loopback addresses:

- A: ``docker-registry`` on 127.0.0.1 behind htpasswd;
- B: ``docker-registry`` on 127.0.0.2 with Docker token auth, its realm a token server on another
  host (127.0.0.3) that grants pull per repository (``charts/private*`` and ``charts/redis`` only
  to a known user) and records every Authorization header it receives;
- B near: the same on 127.0.0.2 with its realm on 127.0.0.2 (the same host name, another port);
- a spy on 127.0.0.4 posing as a registry, recording every Authorization header.
"""
from __future__ import annotations

import base64
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.artifacts import push_charts
from devtools.fluxrepo import DEMO_CHARTS, demo_files, demo_settings
from devtools.registry import LocalRegistry
from gitops.errors import RegistryUnauthorized
from gitops.model import ChartLocation
from gitops.sources.registry import RegistryClient
from gitops.settings import RegistryCredentials
from tests.serving import serving
from tests.ferrybot import ask, started_bot
from tests.token_server import TokenKey, TokenServer

A_PASSWORD = "registry-a-secret-5d1e"
HUB_PASSWORD = "registry-b-secret-90c7"
PRIVATE = ("charts/private*", "charts/redis")


def token_registry(directory, server: TokenServer, charts: dict) -> LocalRegistry:
    """A registry on 127.0.0.2 holding ``charts`` ({repository: versions}) behind ``server``'s
    token auth: filled without auth first, then restarted on the same storage with it."""
    open_one = LocalRegistry(directory, address="127.0.0.2").start()
    try:
        for repository, versions in charts.items():
            push_charts(open_one.host, repository, versions)
    finally:
        open_one.stop()
    return LocalRegistry(directory, address="127.0.0.2", token=server.registry_auth()).start()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    d = tmp_path_factory.mktemp("scope")
    key = TokenKey(d)
    far = TokenServer(key, "127.0.0.3", users={"hub": HUB_PASSWORD}, private=PRIVATE).start()
    near = TokenServer(key, "127.0.0.2", users={"hub": HUB_PASSWORD}, private=PRIVATE).start()
    charts = {"charts/public-web": ["1.0.0", "1.1.0"], "charts/private-db": ["2.0.0"],
              **{f"charts/{name}": versions for name, versions in DEMO_CHARTS.items()}}
    a = LocalRegistry(d / "a", auth=True, password=A_PASSWORD).start()
    started = [a]
    try:
        push_charts(a.host, "charts/private-a", ["1.0.0"], username=a.username, password=A_PASSWORD)
        b = token_registry(d / "b", far, charts)
        started.append(b)
        b_near = token_registry(d / "b-near", near, {"charts/private-db": ["2.0.0"]})
        started.append(b_near)
        yield {"a": a, "b": b, "b_near": b_near, "far": far, "near": near}
    finally:
        for registry in started:
            registry.stop()
        far.stop()
        near.stop()


@pytest.fixture(autouse=True)
def fresh_records(hosts):
    hosts["far"].received.clear()
    hosts["near"].received.clear()


def a_credentials(hosts) -> RegistryCredentials:
    return RegistryCredentials(hosts["a"].host, hosts["a"].username, A_PASSWORD, (),
                               "GITOPS_REGISTRY_A_USERNAME/PASSWORD", plain_http=True)


def b_credentials(host, token_hosts=()) -> RegistryCredentials:
    return RegistryCredentials(host, "hub", HUB_PASSWORD, tuple(token_hosts),
                               "GITOPS_REGISTRY_HUB_USERNAME/PASSWORD", plain_http=True)


def basic(user, password) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def spy(challenge: str):
    """A 'registry' on 127.0.0.4 answering every request 401 with ``challenge`` (``{realm}`` is
    its own /token URL), recording every Authorization header it receives."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append((self.path, self.headers.get("Authorization")))
            self.send_response(401)
            self.send_header("Www-Authenticate", challenge.format(realm=f"http://{self.server.host}/token"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.4", 0), Handler)
    server.host = f"127.0.0.4:{server.server_address[1]}"
    server.received = received
    with serving(server):
        yield server


# ---- item 8: credentials are bound to their host ---------------------------------------------

def test_credentials_go_to_their_own_host_and_nowhere_else(hosts):
    a, b, far = hosts["a"], hosts["b"], hosts["far"]
    client = RegistryClient([a_credentials(hosts)], timeout=3)
    assert client.versions(ChartLocation(a.host, "charts/private-a", True)).releases == ("1.0.0",)
    # B's public chart: an anonymous token from its realm; its private chart: refused, not leaked.
    assert client.versions(ChartLocation(b.host, "charts/public-web", True)).releases == ("1.1.0", "1.0.0")
    with pytest.raises(RegistryUnauthorized, match="wants credentials"):
        client.versions(ChartLocation(b.host, "charts/private-db", True))
    assert far.received and far.sent_credentials() == []
    # A chart source naming another host: challenged for Basic or Bearer, it gets nothing.
    for challenge in ('Basic realm="registry"', 'Bearer realm="{realm}",service="x",scope="repository:c:pull"'):
        with spy(challenge) as other:
            with pytest.raises(RegistryUnauthorized):
                client.versions(ChartLocation(other.host, "charts/private-a", True))
        assert other.received and all(header is None for _, header in other.received), challenge


def test_a_realm_on_another_host_gets_no_credentials_unless_the_settings_allow_it(hosts):
    b, far = hosts["b"], hosts["far"]
    location = ChartLocation(b.host, "charts/private-db", True)
    # B's own credentials, but its realm is on 127.0.0.3, which the settings do not name.
    with pytest.raises(RegistryUnauthorized, match="GITOPS_REGISTRY_HUB_USERNAME/PASSWORD"):
        RegistryClient([b_credentials(b.host)], timeout=3).versions(location)
    assert far.received and far.sent_credentials() == []
    # `token_hosts: [127.0.0.3]` allows it (Docker Hub's auth.docker.io is this case).
    allowed = RegistryClient([b_credentials(b.host, ["127.0.0.3"])], timeout=3)
    assert allowed.versions(location).releases == ("2.0.0",)
    assert allowed.chart_info(location, "2.0.0").version == "2.0.0"
    assert set(far.sent_credentials()) == {basic("hub", HUB_PASSWORD)}


def test_a_realm_on_the_same_host_name_gets_them(hosts):
    b_near, near = hosts["b_near"], hosts["near"]
    location = ChartLocation(b_near.host, "charts/private-db", True)
    assert RegistryClient([b_credentials(b_near.host)], timeout=3).versions(location).releases == ("2.0.0",)
    assert set(near.sent_credentials()) == {basic("hub", HUB_PASSWORD)}
    assert near.host.split(":")[1] != b_near.host.split(":")[1]  # same name, another port


def test_one_hosts_credentials_never_reach_another_registry(hosts):
    """Two hosts with their own credentials: each realm sees only its host's."""
    a, b, far = hosts["a"], hosts["b"], hosts["far"]
    client = RegistryClient([a_credentials(hosts), b_credentials(b.host, ["127.0.0.3"])], timeout=3)
    assert client.versions(ChartLocation(a.host, "charts/private-a", True)).releases == ("1.0.0",)
    assert client.versions(ChartLocation(b.host, "charts/private-db", True)).releases == ("2.0.0",)
    assert set(far.sent_credentials()) == {basic("hub", HUB_PASSWORD)}
    assert all(A_PASSWORD not in base64.b64decode(h.split()[1]).decode() for h in far.sent_credentials())


# ---- item 9: a refusal is not an outage -------------------------------------------------------

def test_a_refused_repository_does_not_fail_the_others_on_its_host(hosts):
    b = hosts["b"]
    client = RegistryClient(timeout=3)
    for _ in range(2):  # and again: a refusal is not remembered as the host's state
        with pytest.raises(RegistryUnauthorized):
            client.versions(ChartLocation(b.host, "charts/private-db", True))
        client.invalidate()
        assert client.versions(ChartLocation(b.host, "charts/public-web", True)).newest == "1.1.0"


def test_versions_marks_only_the_chart_that_needs_credentials(hosts, tmp_path, bare_remote, monkeypatch):
    """Through Errbot: the fleet's charts live on B, whose realm refuses `redis` to anyone unknown.
    Ferry holds credentials for A only: they must reach neither B nor its realm."""
    a, b, far = hosts["a"], hosts["b"], hosts["far"]
    url = bare_remote(demo_files(f"{b.url}/charts"))
    monkeypatch.setenv("GITOPS_REGISTRY_A_USERNAME", a.username)
    monkeypatch.setenv("GITOPS_REGISTRY_A_PASSWORD", A_PASSWORD)
    settings = {**demo_settings(url), "registry_credentials": [{"host": a.host, "env": "A"}]}
    with started_bot(tmp_path, settings) as bot:
        overview = ask(bot, "!versions")[0]
        one = ask(bot, "!versions redis")[0]
        intent, result = ask(bot, "!deploy podinfo 6.5.3 to qa", replies=2)
    rows = {line.split()[0]: line.split() for line in overview.splitlines()
            if line.split() and line.split()[0] in DEMO_CHARTS}
    assert rows["podinfo"][-1] == "6.6.0" and rows["cert-manager"][-1] == "v1.16.0"
    assert rows["redis"][-2:] == ["no", "access"]
    assert f"No access to redis: Registry {b.host} wants credentials (401)" in overview
    assert "podinfo" not in overview.split("No access to")[1]
    assert f"Registry {b.host} wants credentials" in one
    assert result.startswith("Deployed podinfo 6.5.2 → 6.5.3 in qa")
    assert far.received and far.sent_credentials() == []
    assert A_PASSWORD not in overview + one + result
