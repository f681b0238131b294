"""The registry client against a real ``docker-registry``; tiny local servers only for what
distribution 2.8 cannot do (pagination, bearer tokens, failures)."""
from __future__ import annotations

import gzip
import io
import json
import socket
import tarfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.artifacts import push_chart, push_charts
from devtools.registry import free_port
from gitops.errors import RegistryUnauthorized, RegistryUnavailable, VersionNotFound
from gitops.model import ChartLocation, ChartVersions
from gitops.sources.registry import RegistryClient
from gitops.settings import RegistryCredentials
from tests.serving import serving
from tests.fixtures_registry import CHARTS_CREATED

from tests.refs import PODINFO_CHART as PODINFO_DIR
_repos = iter(range(10_000))


def creds(host, username, password, token_hosts=()) -> RegistryCredentials:
    """Credentials of a registry on this machine, which the settings say is plain HTTP."""
    return RegistryCredentials(host, username, password, tuple(token_hosts),
                               "GITOPS_REGISTRY_TEST_USERNAME/PASSWORD", plain_http=True)


def own_location(registry) -> ChartLocation:
    """A repository no other test touches, for tests that push."""
    return ChartLocation(registry.host, f"own/chart{next(_repos)}", insecure=True)


@pytest.fixture
def client():
    c = RegistryClient(timeout=2.0)
    yield c
    c.close()


# --- listing -------------------------------------------------------------------------------

def test_tags_sorted_releases_prereleases_and_other_apart(client, charts, chart_location):
    found = client.versions(chart_location("podinfo"))
    assert found.releases == ("6.6.0", "6.5.3", "6.5.2", "6.5.1", "6.5.0")
    assert found.prereleases == ("6.7.0-rc.1",)
    assert found.other == ("latest",)
    assert found.newest == "6.6.0"


def test_v_prefixed_tags_sort_and_match_without_the_v(client, charts, chart_location):
    """People type 1.14.0 for the tag v1.14.0: require answers with the tag as stored."""
    location = chart_location("cert-manager")
    assert client.versions(location).releases == ("v1.15.0", "v1.14.0")
    assert client.require(location, "v1.14.0", "cert-manager") == "v1.14.0"
    assert client.require(location, "1.14.0", "cert-manager") == "v1.14.0"


def test_missing_repository_has_no_versions(client, charts, chart_location):
    """A chart never pushed is an answer (no versions), not a registry failure."""
    location = chart_location("never-pushed")
    assert client.versions(location) == ChartVersions((), (), ())
    with pytest.raises(VersionNotFound, match="holds no version"):
        client.require(location, "1.0.0", "never-pushed")


def test_has_version_and_require_name_the_nearest(client, charts, chart_location):
    location = chart_location("podinfo")
    assert client.has_version(location, "6.5.3")
    assert client.has_version(location, "latest")
    assert not client.has_version(location, "6.5.4")
    assert client.require(location, "6.5.3", "podinfo") == "6.5.3"
    with pytest.raises(VersionNotFound) as e:
        client.require(location, "6.5.4", "podinfo")
    assert "`podinfo`" in str(e.value) and "6.5.3" in str(e.value) and "\n" not in str(e.value)


# --- chart information ---------------------------------------------------------------------

def test_chart_info_reads_config_and_manifest(client, charts, chart_location):
    info = client.chart_info(chart_location("redis"), "18.1.0")
    assert (info.version, info.app_version, info.description) == ("18.1.0", "app-18.1.0", "redis 18.1.0")
    assert info.created == CHARTS_CREATED
    assert info.digest.startswith("sha256:")


def test_chart_info_digest_is_the_pushed_manifest(client, registry):
    location = own_location(registry)
    digest = push_chart(registry.host, location.repository, "2.0.0", chart_dir=PODINFO_DIR,
                        app_version="6.14.1")
    info = client.chart_info(location, "2.0.0")
    assert info.digest == digest
    assert info.app_version == "6.14.1"
    assert info.description == "Podinfo Helm chart for Kubernetes"  # the real chart's own
    assert info.created  # defaulted to now by the pusher


def test_chart_info_of_a_missing_version(client, charts, chart_location):
    with pytest.raises(VersionNotFound, match="6.5.3"):
        client.chart_info(chart_location("podinfo"), "6.5.9")


def test_build_metadata_is_stored_under_an_underscore_tag(client, registry):
    """Helm writes 1.2.3+build.5 as the tag 1.2.3_build.5 (`+` is not allowed in a tag)."""
    location = own_location(registry)
    push_chart(registry.host, location.repository, "1.2.3+build.5", app_version="9.9")
    assert client.versions(location).releases == ("1.2.3_build.5",)
    assert client.has_version(location, "1.2.3+build.5")
    assert client.require(location, "1.2.3+build.5", "x") == "1.2.3_build.5"
    info = client.chart_info(location, "1.2.3+build.5")
    assert (info.version, info.app_version) == ("1.2.3+build.5", "9.9")


def test_pushed_artifact_is_a_helm_chart(registry):
    """What the tests read is what `helm push` writes: the media types and the chart folder."""
    location = own_location(registry)
    push_chart(registry.host, location.repository, "0.1.0")
    base = f"http://{registry.host}/v2/{location.repository}"
    # Without an OCI Accept header distribution answers 404 for an existing tag.
    manifest = requests.get(f"{base}/manifests/0.1.0", timeout=5,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    blob = requests.get(f"{base}/blobs/{layer['digest']}", timeout=5).content
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        names = tar.getnames()
        chart_yaml = tar.extractfile(f"{location.repository.rsplit('/', 1)[-1]}/Chart.yaml").read()
    assert any(n.endswith("/values.yaml") for n in names)
    assert any("/templates/" in n for n in names)
    assert b"version: 0.1.0" in chart_yaml
    assert manifest["annotations"]["org.opencontainers.image.version"] == "0.1.0"


# --- cache ---------------------------------------------------------------------------------

def test_tag_list_is_cached_until_invalidated(client, registry):
    """A second look within cache_seconds does not ask the registry: a new tag stays unseen."""
    location = own_location(registry)
    push_chart(registry.host, location.repository, "1.0.0")
    assert client.versions(location).releases == ("1.0.0",)
    push_chart(registry.host, location.repository, "1.1.0")
    assert client.versions(location).releases == ("1.0.0",)
    assert not client.has_version(location, "1.1.0")
    client.invalidate(location)
    assert client.versions(location).releases == ("1.1.0", "1.0.0")
    push_chart(registry.host, location.repository, "1.2.0")
    client.invalidate()
    assert client.versions(location).newest == "1.2.0"


def test_cache_expires(registry):
    client = RegistryClient(cache_seconds=0.2)
    location = own_location(registry)
    push_chart(registry.host, location.repository, "1.0.0")
    assert client.versions(location).newest == "1.0.0"
    push_chart(registry.host, location.repository, "1.1.0")
    time.sleep(0.3)
    assert client.versions(location).newest == "1.1.0"


def test_concurrent_lookups_ask_the_registry_once():
    """The bot runs commands in a thread pool: eight threads asking together cost one request."""
    def tags(handler):
        time.sleep(0.2)  # let the other threads pile up behind the first
        return 200, {}, {"name": "charts/x", "tags": ["1.0.0", "1.1.0"]}

    with serve(tags) as server:
        client = RegistryClient()
        location = ChartLocation(server.host, "charts/x", insecure=True)
        results = []
        threads = [threading.Thread(target=lambda: results.append(client.versions(location)))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert len(results) == 8 and all(r.releases == ("1.1.0", "1.0.0") for r in results)
    assert len(server.paths) == 1


# --- credentials ---------------------------------------------------------------------------

def test_basic_auth_with_the_right_credentials(registry_auth):
    location = ChartLocation(registry_auth.host, "charts/private", insecure=True)
    push_chart(registry_auth.host, location.repository, "3.0.0", app_version="3",
               username=registry_auth.username, password=registry_auth.password)
    client = RegistryClient([creds(registry_auth.host, registry_auth.username, registry_auth.password)])
    assert client.versions(location).releases == ("3.0.0",)
    assert client.chart_info(location, "3.0.0").app_version == "3"


def test_wrong_credentials_are_refused_without_echoing_them(registry_auth):
    location = ChartLocation(registry_auth.host, "charts/private", insecure=True)
    password = "not-the-password-4f2a"
    with pytest.raises(RegistryUnauthorized) as e:
        RegistryClient([creds(registry_auth.host, registry_auth.username, password)]).versions(location)
    message = str(e.value)
    assert registry_auth.host in message and "401" in message and "GITOPS_REGISTRY_TEST_USERNAME" in message
    assert password not in message and registry_auth.password not in message
    assert "\n" not in message


def test_no_credentials_for_a_registry_that_wants_them(registry_auth):
    location = ChartLocation(registry_auth.host, "charts/private", insecure=True)
    with pytest.raises(RegistryUnauthorized, match="wants credentials"):
        RegistryClient().versions(location)


def test_bearer_token_challenge_is_answered():
    """ghcr.io and Docker Hub answer 401 with a token realm: fetch a token, then the tags."""
    def routes(handler):
        if handler.path.startswith("/token"):
            return 200, {}, {"token": "t0k3n"}
        if handler.headers.get("Authorization") != "Bearer t0k3n":
            realm = f"http://{handler.server.host}/token"
            return 401, {"Www-Authenticate": f'Bearer realm="{realm}",service="test",'
                                             'scope="repository:charts/x:pull"'}, {}
        return 200, {}, {"name": "charts/x", "tags": ["2.0.0"]}

    with serve(routes) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        assert RegistryClient().versions(location).releases == ("2.0.0",)
    assert any(p.startswith("/token") for p in server.paths)


# --- failures are quick and typed ----------------------------------------------------------

def test_closed_port_fails_fast():
    """oras's own retry would sleep ~131 s here; a chat command must answer at once."""
    location = ChartLocation(f"127.0.0.1:{free_port()}", "charts/x", insecure=True)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="connection refused") as e:
        RegistryClient(timeout=5).versions(location)
    assert time.monotonic() - started < 2
    assert location.host in str(e.value)


def test_silent_server_fails_after_the_timeout():
    """A registry that takes the connection and never answers costs about `timeout`, once."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever reads or writes
        location = ChartLocation(f"127.0.0.1:{listener.getsockname()[1]}", "charts/x", insecure=True)
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable, match=r"did not answer within 0.5 s"):
            RegistryClient(timeout=0.5).versions(location)
        assert time.monotonic() - started < 0.5 * 4


def test_stalled_body_counts_as_a_timeout():
    """Headers then silence: requests reports it as a ConnectionError, still a timeout to us."""
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"tags": [')
        handler.wfile.flush()
        time.sleep(2)
        return None

    with serve(stall) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        with pytest.raises(RegistryUnavailable, match="did not answer within 0.5 s"):
            RegistryClient(timeout=0.5).versions(location)


def test_server_error_is_reported_once_without_retries():
    with serve(lambda handler: (500, {}, {"errors": [{"message": "disk full"}]})) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        with pytest.raises(RegistryUnavailable, match=r"answered 500 \(Internal Server Error\)") as e:
            RegistryClient().versions(location)
    assert server.host in str(e.value)
    assert len(server.paths) == 1


def test_commands_queued_behind_a_failure_share_it():
    """Behind a dead registry, queued commands fail together instead of one timeout each."""
    def slow_error(handler):
        time.sleep(0.3)
        return 503, {}, {}

    with serve(slow_error) as server:
        client = RegistryClient()
        location = ChartLocation(server.host, "charts/x", insecure=True)
        errors = []

        def ask():
            try:
                client.versions(location)
            except RegistryUnavailable as e:
                errors.append(str(e))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert len(errors) == 4 and all("answered 503" in e for e in errors)
    assert len(server.paths) == 1


def test_https_to_a_plain_http_registry_says_insecure():
    with serve(lambda handler: (200, {}, {"tags": []})) as server:
        location = ChartLocation(server.host, "charts/x", insecure=False)
        with pytest.raises(RegistryUnavailable, match="TLS handshake.*insecure: true"):
            RegistryClient().versions(location)


def test_unreadable_tag_list():
    with serve(lambda handler: (200, {}, b"<html>not a registry</html>")) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        with pytest.raises(RegistryUnavailable, match="cannot read"):
            RegistryClient().versions(location)


def test_errors_are_not_cached(registry):
    """A failure must not stick: the next command asks again."""
    location = ChartLocation(f"127.0.0.1:{free_port()}", "charts/x", insecure=True)
    client = RegistryClient()
    for _ in range(2):
        with pytest.raises(RegistryUnavailable):
            client.versions(location)


# --- pagination (distribution 2.8 ignores n/last; other registries send Link) --------------

PAGES = {
    "/v2/charts/paged/tags/list": (["1.0.0", "1.1.0"], "/v2/charts/paged/tags/list?n=2&last=1.1.0"),
    "/v2/charts/paged/tags/list?n=2&last=1.1.0": (["2.0.0", "latest"], "/v2/charts/paged/tags/list?n=2&last=latest"),
    "/v2/charts/paged/tags/list?n=2&last=latest": (["2.1.0-rc.1"], None),
}


def paged(handler):
    tags, next_link = PAGES[handler.path]
    headers = {"Link": f'<{next_link}>; rel="next"'} if next_link else {}
    return 200, headers, {"name": "charts/paged", "tags": tags}


def test_link_header_pages_are_followed():
    with serve(paged) as server:
        location = ChartLocation(server.host, "charts/paged", insecure=True)
        found = RegistryClient().versions(location)
    assert found.releases == ("2.0.0", "1.1.0", "1.0.0")
    assert found.prereleases == ("2.1.0-rc.1",)
    assert found.other == ("latest",)
    assert len(server.paths) == 3


def test_a_link_that_loops_is_not_followed_forever():
    def loop(handler):
        return 200, {"Link": '</v2/charts/x/tags/list>; rel="next"'}, {"tags": ["1.0.0"]}

    with serve(loop) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        with pytest.raises(RegistryUnavailable, match="kept sending"):
            RegistryClient().versions(location)


def test_a_link_to_another_host_is_not_followed(registry_auth):
    """The next page must not carry our credentials to somewhere else."""
    def elsewhere(handler):
        return 200, {"Link": f'<http://{registry_auth.host}/v2/charts/x/tags/list>; rel="next"'}, \
            {"tags": ["1.0.0"]}

    with serve(elsewhere) as server:
        location = ChartLocation(server.host, "charts/x", insecure=True)
        with pytest.raises(RegistryUnavailable, match="another host"):
            RegistryClient([creds(server.host, "user", "secret")]).versions(location)


# --- a registry the size of a long-lived chart ---------------------------------------------

def test_many_tags(client, registry):
    location = own_location(registry)
    push_charts(registry.host, location.repository, [f"1.{i}.0" for i in range(60)] + ["main"])
    found = client.versions(location)
    assert len(found.releases) == 60 and found.newest == "1.59.0" and found.other == ("main",)


# --- helpers -------------------------------------------------------------------------------

@contextmanager
def serve(route):
    """A tiny HTTP server on 127.0.0.1: ``route(handler) -> (status, headers, body) | None``.

    ``server.paths`` records every request path; ``server.host`` is ``127.0.0.1:PORT``.
    """
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.paths.append(self.path)
            answer = route(self)
            if answer is None:
                return
            status, headers, body = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.paths = []
    server.host = f"127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield server
