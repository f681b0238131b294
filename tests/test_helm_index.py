"""Chart versions from a classic Helm repository (issue 13, item 1): a real HTTP server serving an
``index.yaml`` and chart archives generated here, the way a static host serves a chart repository.

Hosts: the repository on 127.0.0.1 (Basic auth in some tests), and a second host on 127.0.0.2
that must never see the first host's credentials (archives and redirects pointing there).
"""
from __future__ import annotations

import base64
import hashlib

import pytest

from devtools.helmrepo import CREATED, HelmRepoServer, index_entry, index_text, repository_files
from gitops.errors import RegistryUnauthorized, RegistryUnavailable, VersionNotFound
from gitops.sources.helmindex import HelmIndexClient, parse_index
from gitops.model import ChartLocation
from gitops.sources.registry import RegistryClient
from gitops.settings import RegistryCredentials

CHARTS = {"podinfo": ["6.5.0", "6.5.1", "6.6.0", "6.7.0-rc.1"], "redis": ["18.0.0", "19.0.0"]}
PASSWORD = "helm-repo-secret-41aa"


def location(server: HelmRepoServer, chart: str) -> ChartLocation:
    return ChartLocation(server.host, f"{server.prefix}/{chart}", True, "http")


def credentials(server: HelmRepoServer, password: str = PASSWORD) -> RegistryCredentials:
    return RegistryCredentials(server.host, "ci", password, (), "GITOPS_REGISTRY_CHARTS_USERNAME/PASSWORD",
                               plain_http=True)  # a repository on this machine, plain HTTP by the settings


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo():
    with HelmRepoServer(repository_files(CHARTS)) as server:
        yield server


def test_versions_dates_app_version_and_digest_come_from_the_index(repo):
    client = RegistryClient(timeout=3)
    where = location(repo, "podinfo")
    versions = client.versions(where)
    assert versions.releases == ("6.6.0", "6.5.1", "6.5.0") and versions.prereleases == ("6.7.0-rc.1",)
    assert versions.newest == "6.6.0"
    info = client.chart_info(where, "6.5.1")
    archive = repository_files(CHARTS)["podinfo-6.5.1.tgz"]
    assert (info.version, info.app_version, info.description, info.created) == (
        "6.5.1", "app-6.5.1", "podinfo 6.5.1", CREATED)
    assert info.digest == hashlib.sha256(archive).hexdigest()
    assert info.url == f"{repo.url}/podinfo-6.5.1.tgz"  # relative in the index, absolute here
    assert client.require(where, "v6.5.1", "podinfo") == "6.5.1"
    assert client.versions(location(repo, "redis")).newest == "19.0.0"
    assert client.versions(location(repo, "absent")).all_tags == ()
    assert repo.count("index.yaml", 200) == 1  # one download serves every chart of the repository


def test_a_missing_version_names_the_repository_and_the_nearest(repo):
    client = RegistryClient(timeout=3)
    with pytest.raises(VersionNotFound) as e:
        client.require(location(repo, "podinfo"), "6.5.9", "podinfo")
    assert str(e.value) == (f"Chart `podinfo` has no version `6.5.9` in the Helm repository {repo.url}. "
                            "Nearest: 6.5.1, 6.5.0, 6.6.0.")
    with pytest.raises(VersionNotFound, match=f"in the Helm repository {repo.url}. The Helm repository"):
        client.require(location(repo, "absent"), "1.0.0", "absent")


def test_the_cache_then_conditional_requests_reuse_the_parse(repo):
    clock = Clock()
    client = HelmIndexClient(timeout=3, cache_seconds=60, clock=clock)
    where = location(repo, "podinfo")
    assert "6.6.0" in client.entries(where)
    clock.now += 30
    assert "6.6.0" in client.entries(where)
    assert len(repo.received) == 1  # within the TTL: not asked at all
    clock.now += 31
    assert "6.6.0" in client.entries(where)
    assert len(repo.received) == 2 and repo.received[-1][2]  # asked with If-None-Match
    assert repo.count("index.yaml", 304) == 1 and client.downloads == 1
    # The index changes: the next question after the TTL downloads it again.
    repo.publish("index.yaml", repository_files({**CHARTS, "podinfo": CHARTS["podinfo"] + ["6.8.0"]})["index.yaml"])
    clock.now += 61
    assert "6.8.0" in client.entries(where) and client.downloads == 2


def test_last_modified_alone_is_enough_for_a_304():
    files = repository_files(CHARTS)
    with HelmRepoServer(files, etag=False) as repo:
        clock = Clock()
        client = HelmIndexClient(timeout=3, cache_seconds=10, clock=clock)
        client.entries(location(repo, "podinfo"))
        clock.now += 11
        client.entries(location(repo, "podinfo"))
        path, _, etag, since = repo.received[-1]
        assert etag is None and since and repo.count("index.yaml", 304) == 1 and client.downloads == 1


def test_an_index_past_the_size_bound_is_refused_in_one_line(repo):
    client = HelmIndexClient(timeout=3, max_bytes=1000)
    with pytest.raises(RegistryUnavailable) as e:
        client.entries(location(repo, "podinfo"))
    assert str(e.value) == (f"The index of Helm repository {repo.url} is larger than 1,000 bytes: raise "
                            "`helm_index.max_mb` in the settings if that is expected.")


def test_a_slow_index_is_given_up_within_the_time_bound():
    entries = [index_entry("big", f"1.0.{i}") for i in range(3000)]
    with HelmRepoServer({"index.yaml": index_text(entries)}, chunk_delay=0.2) as repo:
        client = HelmIndexClient(timeout=3, seconds=0.3)
        with pytest.raises(RegistryUnavailable, match="did not send its index within 0.3 s"):
            client.entries(location(repo, "big"))


def test_json_index_and_odd_answers():
    entries = [index_entry("podinfo", "6.5.0"), index_entry("podinfo", "6.6.0")]
    with HelmRepoServer({"index.yaml": index_text(entries, as_json=True),
                         "broken/index.yaml": b"entries: [unclosed\n"}) as repo:
        client = RegistryClient(timeout=3)
        assert client.versions(location(repo, "podinfo")).newest == "6.6.0"
        broken = ChartLocation(repo.host, f"{repo.prefix}/broken/podinfo", True, "http")
        with pytest.raises(RegistryUnavailable, match=r"broken is not valid YAML \(line 2: "):
            client.versions(broken)
        nowhere = ChartLocation(repo.host, f"{repo.prefix}/nowhere/podinfo", True, "http")
        with pytest.raises(RegistryUnavailable, match=r"/nowhere has no index.yaml \(404\)"):
            client.versions(nowhere)


def test_parse_keeps_every_scalar_as_written():
    text = (b"apiVersion: v1\nentries:\n  app:\n  - version: 1.10\n    appVersion: 2.0\n"
            b"    created: 2024-05-01T12:00:00.123456789Z\n    digest: ab\n    urls: [https://x/app-1.10.tgz]\n"
            b"  - &old {version: 1.9, urls: []}\n  other:\n  - *old\n")
    charts = parse_index(text)
    assert charts["app"]["1.10"].app_version == "2.0"  # not the float 1.1
    assert charts["app"]["1.10"].created == "2024-05-01T12:00:00.123456789Z"
    assert set(charts["other"]) == {"1.9"}  # aliases are followed too


# ---- credentials stay with their host ---------------------------------------------------------

def test_credentials_go_to_their_host_only_not_to_archives_or_redirects_elsewhere():
    with HelmRepoServer(repository_files({"web": ["1.0.0"]}), address="127.0.0.2") as other:
        elsewhere = f"{other.url}/web-1.0.0.tgz"
        files = repository_files({"web": ["1.0.0", "1.1.0"]}, urls={("web", "1.0.0"): elsewhere})
        with HelmRepoServer(files, users={"ci": PASSWORD},
                            redirects={"moved/index.yaml": f"{other.url}/index.yaml"}) as repo:
            client = RegistryClient([credentials(repo)], timeout=3)
            where = location(repo, "web")
            assert client.versions(where).newest == "1.1.0"
            near = client.chart_info(where, "1.1.0")
            far = client.chart_info(where, "1.0.0")
            assert far.url == elsewhere  # absolute in the index, kept as is
            entries = client.index.entries(where)
            assert hashlib.sha256(client.index.archive(where, entries["1.1.0"])).hexdigest() == near.digest
            assert client.index.archive(where, entries["1.0.0"])  # fetched from 127.0.0.2
            moved = ChartLocation(repo.host, f"{repo.prefix}/moved/web", True, "http")
            assert client.versions(moved).newest == "1.0.0"  # redirected to 127.0.0.2's index
            assert set(repo.credentials_received()) == {
                "Basic " + base64.b64encode(f"ci:{PASSWORD}".encode()).decode()}
            assert len(repo.credentials_received()) == len(repo.received)
        assert [p for p, _, _, _ in other.received] == ["/charts/web-1.0.0.tgz", "/charts/index.yaml"]
        assert other.credentials_received() == []


def test_missing_or_wrong_credentials_are_one_line_and_secret_free():
    with HelmRepoServer(repository_files(CHARTS), users={"ci": PASSWORD}) as repo:
        with pytest.raises(RegistryUnauthorized) as e:
            RegistryClient(timeout=3).versions(location(repo, "podinfo"))
        assert str(e.value) == (f"Helm repository {repo.url} wants credentials (401): give {repo.host} "
                                "its own in the settings' `registry_credentials`.")
        with pytest.raises(RegistryUnauthorized) as e:
            RegistryClient([credentials(repo, "wrong-password")], timeout=3).versions(location(repo, "podinfo"))
        assert str(e.value) == (f"Helm repository {repo.url} refused Ferry's credentials (401): check "
                                "GITOPS_REGISTRY_CHARTS_USERNAME/PASSWORD.")
        assert "wrong-password" not in str(e.value)


def test_credentials_never_travel_over_plain_http_to_an_https_repository():
    client = HelmIndexClient({"charts.example.com": RegistryCredentials("charts.example.com", "u", "p")})
    assert client.may_receive_credentials("https://charts.example.com/index.yaml") is not None
    assert client.may_receive_credentials("http://charts.example.com/index.yaml") is None
    assert client.may_receive_credentials("https://cdn.example.com/x.tgz") is None
    assert client.may_receive_credentials("https://charts.example.com:8443/index.yaml") is None
    # Parsed as the connection parses it: these connect to evil.example.com, or name a user.
    assert client.may_receive_credentials("https://evil.example.com:443\\@charts.example.com/index.yaml") is None
    assert client.may_receive_credentials("https://u:p@charts.example.com/index.yaml") is None


def test_an_unreachable_repository_is_an_outage_in_one_line():
    with HelmRepoServer({}) as gone:
        where = location(gone, "podinfo")
    with pytest.raises(RegistryUnavailable) as e:
        RegistryClient(timeout=2).versions(where)
    assert e.value.outage and str(e.value) == (f"Helm repository http://{gone.host}/charts cannot be "
                                               "reached: connection refused.")
