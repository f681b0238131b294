"""Credentials never travel (issue 19, item 3), for chart sources: counted at real local servers
on two loopback addresses (127.0.0.1 poses as the registry, 127.0.0.2 as somewhere else).

- a token realm is read by the parser that connects: ``http://127.0.0.2:<port>\\@127.0.0.1:<port>/``
  connects to 127.0.0.2, which Python's ``urlsplit`` calls 127.0.0.1;
- a realm naming a user is not asked at all;
- ``insecure: true`` in Git (a plain-HTTP location) never carries a host's credentials over plain
  HTTP: only ``plain_http: true`` in the settings does;
- link-local and metadata addresses are refused, whatever name leads there.
"""
from __future__ import annotations

import base64
import ipaddress
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gitops import addresses
from gitops.errors import ForbiddenAddress, RegistryUnauthorized, RegistryUnavailable
from gitops.model import ChartLocation
from gitops.sources.helmindex import HelmIndexClient
from gitops.sources.registry import RegistryClient
from gitops.settings import RegistryCredentials
from tests.serving import serving

PASSWORD = "registry-secret-19c3"


@contextmanager
def recorder(address: str, challenge: str = ""):
    """A server on ``address`` recording (path, Authorization) of every request; it answers 401
    with ``challenge`` (``{self}`` is its own host:port) when one is given, else 200 ``{}``."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append((self.path, self.headers.get("Authorization")))
            self.send_response(401 if challenge else 200)
            if challenge:
                self.send_header("Www-Authenticate", challenge.format(self=self.server.host))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.host = f"{address}:{server.server_address[1]}"
    server.received = received
    with serving(server):
        yield server


def credentials(host: str, plain_http: bool = True) -> RegistryCredentials:
    return RegistryCredentials(host, "bot", PASSWORD, (), "GITOPS_REGISTRY_R_USERNAME/PASSWORD",
                               plain_http)


def carried_password(received: list) -> bool:
    for _, header in received:
        if header and header.startswith("Basic ") and PASSWORD in base64.b64decode(header[6:]).decode():
            return True
    return False


def test_a_realm_is_read_by_the_parser_that_connects():
    with recorder("127.0.0.2") as elsewhere:
        realm = f"http://{elsewhere.host}\\@{{self}}/token"  # urlsplit: 127.0.0.1; urllib3: 127.0.0.2
        with recorder("127.0.0.1", f'Bearer realm="{realm}",service="r"') as registry:
            client = RegistryClient([credentials(registry.host)], timeout=3)
            with pytest.raises(RegistryUnauthorized):
                client.versions(ChartLocation(registry.host, "charts/web", True))
    assert not carried_password(elsewhere.received)
    assert not carried_password(registry.received[1:])  # the registry itself may get them


def test_a_realm_that_does_not_parse_or_names_a_user_is_not_asked():
    with recorder("127.0.0.1", 'Bearer realm="http://bot:pw@{self}/token",service="r"') as registry:
        with pytest.raises(RegistryUnauthorized):
            RegistryClient([credentials(registry.host)], timeout=3).versions(
                ChartLocation(registry.host, "charts/web", True))
    assert [p for p, _ in registry.received if p.startswith("/token")] == []
    with recorder("127.0.0.1", 'Bearer realm="http://evil:P\\@{self}/token",service="r"') as registry:
        with pytest.raises(RegistryUnauthorized):
            RegistryClient([credentials(registry.host)], timeout=3).versions(
                ChartLocation(registry.host, "charts/web", True))
    assert [p for p, _ in registry.received if "token" in p] == []


def test_insecure_in_git_never_sends_credentials_over_plain_http():
    with recorder("127.0.0.1", 'Basic realm="registry"') as registry:
        location = ChartLocation(registry.host, "charts/web", insecure=True)  # as `insecure: true` says
        with pytest.raises(RegistryUnauthorized) as e:
            RegistryClient([credentials(registry.host, plain_http=False)], timeout=3).versions(location)
        assert registry.received and not carried_password(registry.received)
        assert "`plain_http: true`" in str(e.value) and PASSWORD not in str(e.value)
        # The settings' word lets them go (this machine: loopback).
        with pytest.raises(RegistryUnauthorized, match="refused Ferry's credentials"):
            RegistryClient([credentials(registry.host)], timeout=3).versions(location)
        assert carried_password(registry.received)


def test_a_helm_repository_over_plain_http_gets_credentials_only_by_the_settings():
    with recorder("127.0.0.1", 'Basic realm="charts"') as repository:
        location = ChartLocation(repository.host, "charts/web", True, "http")
        client = HelmIndexClient({repository.host: credentials(repository.host, plain_http=False)}, timeout=3)
        with pytest.raises(RegistryUnauthorized, match="`plain_http: true`"):
            client.entries(location)
        assert repository.received and not carried_password(repository.received)


@pytest.mark.parametrize("host", [
    "169.254.169.254", "169.254.170.2:80", "[fd00:ec2::254]", "[fe80::1]:5000",
    "0xa9fea9fe",  # a name glibc resolves to 169.254.169.254
    "[::ffff:169.254.169.254]",
])
def test_link_local_and_metadata_addresses_are_refused(host):
    for location in (ChartLocation(host, "charts/web", True), ChartLocation(host, "charts/web", True, "http")):
        with pytest.raises(ForbiddenAddress, match="link-local") as e:
            RegistryClient(timeout=3).versions(location)
        assert str(e.value).startswith("Ferry does not connect to ")


def test_a_name_resolving_to_a_forbidden_address_is_refused_before_any_byte(monkeypatch):
    """``localhost`` resolves to 127.0.0.1: with loopback forbidden for the test's sake, the server
    there must never see a request, whatever the URL calls it."""
    with recorder("127.0.0.1") as server:
        monkeypatch.setattr(addresses, "FORBIDDEN_NETWORKS",
                            addresses.FORBIDDEN_NETWORKS + (ipaddress.ip_network("127.0.0.0/8"),))
        port = server.host.rsplit(":", 1)[1]
        with pytest.raises(ForbiddenAddress, match="localhost \\(127.0.0.1\\)"):
            RegistryClient(timeout=3).versions(ChartLocation(f"localhost:{port}", "charts/web", True))
    assert server.received == []


def test_a_redirect_to_a_metadata_address_is_refused():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        host = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(RegistryUnavailable, match="169.254.169.254: a link-local address"):
            HelmIndexClient(timeout=3).entries(ChartLocation(host, "charts/web", True, "http"))


def test_addresses():
    assert addresses.forbidden("169.254.169.254") and addresses.forbidden("::ffff:169.254.0.1")
    assert addresses.forbidden("fd00:ec2::254") and not addresses.forbidden("fd00:ec2::253")
    assert not addresses.forbidden("127.0.0.1") and not addresses.forbidden("registry.example.com")
    assert addresses.is_loopback("127.0.0.2") and addresses.is_loopback("[::1]")
    assert addresses.is_loopback("localhost") and not addresses.is_loopback("10.0.0.1")
