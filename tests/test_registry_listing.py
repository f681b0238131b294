"""Listing a repository's tags (issue 13, items 5 and 6):

- bearer tokens are kept per repository scope until they expire: against a real
  ``docker-registry`` behind Docker token auth (``tests/token_server.py`` counting its requests),
  going from one chart to another and back asks the realm once per chart;
- the tag list follows the distribution spec's pagination (``n``/``last`` and the ``Link``
  header), against a small server speaking that wire format for a repository holding many
  more tags than one page (distribution 2.8, the local registry, does not paginate).
"""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from gitops.model import ChartLocation
from gitops.sources.registry import RegistryClient
from gitops.sources.tokens import DEFAULT_EXPIRES_IN, TokenCache, lifetime, scope_of
from tests.serving import serving
from tests.test_registry_scope import token_registry
from tests.token_server import TokenKey, TokenServer

# ---- item 5: tokens per repository scope -------------------------------------------------------


@pytest.fixture(scope="module")
def token_host(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokens")
    realm = TokenServer(TokenKey(d), "127.0.0.3").start()
    registry = token_registry(d / "b", realm, {"charts/alpha": ["1.0.0", "1.1.0"], "charts/beta": ["2.0.0"]})
    try:
        yield registry, realm
    finally:
        registry.stop()
        realm.stop()


def token_requests(realm: TokenServer) -> list:
    return [path for path, _ in realm.received if path.startswith("/token")]


def test_moving_between_charts_asks_for_each_token_once(token_host):
    registry, realm = token_host
    realm.received.clear()
    client = RegistryClient(timeout=3, cache_seconds=0)  # no tag cache: every call asks the registry
    alpha = ChartLocation(registry.host, "charts/alpha", True)
    beta = ChartLocation(registry.host, "charts/beta", True)
    for _ in range(3):
        assert client.versions(alpha).newest == "1.1.0"
        assert client.versions(beta).newest == "2.0.0"
    assert client.chart_info(alpha, "1.0.0").version == "1.0.0"  # manifest and blob: the same scope
    asked = token_requests(realm)
    assert len(asked) == 2, asked  # one token per scope, not one per switch
    scopes = sorted(parse_qs(urlsplit(p).query)["scope"][0] for p in asked)
    assert scopes == ["repository:charts/alpha:pull", "repository:charts/beta:pull"]


def test_a_new_client_asks_again(token_host):
    """What is kept is per client and in memory: nothing about tokens outlives the process."""
    registry, realm = token_host
    realm.received.clear()
    for _ in range(2):
        RegistryClient(timeout=3).versions(ChartLocation(registry.host, "charts/alpha", True))
    assert len(token_requests(realm)) == 2


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_tokens_expire_with_expires_in_and_default_to_60_seconds():
    clock = Clock()
    cache = TokenCache(clock)
    cache.put("repository:a:pull", "Bearer a", lifetime({"token": "a", "expires_in": 300}))
    cache.put("repository:b:pull", "Bearer b", lifetime({"token": "b"}))
    assert lifetime({"expires_in": "soon"}) == DEFAULT_EXPIRES_IN == 60
    clock.now += 50
    assert (cache.get("repository:a:pull"), cache.get("repository:b:pull")) == ("Bearer a", "Bearer b")
    clock.now += 10  # 60 s: b is past (given up a little before it expires), a is not
    assert (cache.get("repository:a:pull"), cache.get("repository:b:pull")) == ("Bearer a", None)
    clock.now += 240
    assert cache.get("repository:a:pull") is None and cache.get("repository:c:pull") is None


def test_the_scope_of_a_request_is_its_repository():
    assert scope_of("http://r/v2/charts/podinfo/tags/list?n=100") == "repository:charts/podinfo:pull"
    assert scope_of("https://r/v2/a/b/c/manifests/1.0.0") == "repository:a/b/c:pull"
    assert scope_of("https://r/v2/charts/x/blobs/sha256:abc") == "repository:charts/x:pull"
    assert scope_of("https://r/v2/") == ""


# ---- item 6: pagination as the distribution spec says --------------------------------------------


class TagServer:
    """``GET /v2/<name>/tags/list[?n=&last=]`` as the OCI distribution spec's "Listing Tags": tags
    in lexical order, at most ``n`` (default ``page``) after ``last``, and a ``Link: <…>;
    rel="next"`` header while more remain."""

    def __init__(self, repositories: dict, page: int = 100):
        self.repositories = {name: sorted(tags) for name, tags in repositories.items()}
        self.page, self.paths = page, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.paths.append(self.path)
                status, headers, body = server.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.http.server_address[1]}"

    def answer(self, path: str):
        parts = urlsplit(path)
        name = parts.path[len("/v2/"):-len("/tags/list")] if parts.path.endswith("/tags/list") else ""
        if name not in self.repositories:
            return 404, {}, {"errors": [{"code": "NAME_UNKNOWN"}]}
        query = parse_qs(parts.query)
        n = int(query.get("n", [self.page])[0])
        last = query.get("last", [""])[0]
        rest = [t for t in self.repositories[name] if t > last]
        tags, more = rest[:n], len(rest) > n
        headers = {}
        if more:
            headers["Link"] = f'<{parts.path}?{urlencode({"n": n, "last": tags[-1]})}>; rel="next"'
        return 200, headers, {"name": name, "tags": tags}


def test_a_repository_of_many_pages_is_listed_whole():
    tags = [f"1.{minor}.{patch}" for minor in range(25) for patch in range(100)]  # 2,500 tags
    server = TagServer({"charts/big": tags + ["latest", "2.0.0-rc.1"]})
    with serving(server.http):
        found = RegistryClient(timeout=3).versions(ChartLocation(server.host, "charts/big", True))
    assert len(found.releases) == 2500 and found.newest == "1.24.99"
    assert found.prereleases == ("2.0.0-rc.1",) and found.other == ("latest",)
    assert len(server.paths) == 26  # 2,502 tags, 100 a page
    assert all("last=" in p for p in server.paths[1:])
    pages = [parse_qs(urlsplit(p).query).get("last", [""])[0] for p in server.paths]
    assert pages == sorted(pages)  # each page starts after the previous one's last tag
