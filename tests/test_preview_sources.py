"""Where `!preview`'s chart archives come from (issue 23, item 5), end to end through Errbot:
a registry of the test's own (its access log counts blob downloads), so a restart is seen not to
download again and the registry can go down; an HTTPS Helm repository whose certificate the test
makes and trusts through `registry_ca_file`; a hostile archive; an archive past `preview.max_mb`.
A preview that cannot be made is one line and never holds the change."""
from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.artifacts import chart_archive, push_chart
from devtools.helmrepo import HelmRepoServer, index_entry, index_text
from devtools.registry import LocalRegistry, RegistryStartError
from tests.ferrybot import ask, started_bot
from tests.fixtures_git import remote_file, remote_tip
from tests.preview_charts import WEB, release_file
from tests.test_preview import HOSTILE

PINS = {"dev": "7.0.0", "qa": "6.0.0", "prod": "6.0.0"}


def settings(url: str, **more) -> dict:
    return {"repo": {"url": url, "branch": "main"},
            "environments": [{"name": "dev", "path": "apps/dev"}, {"name": "qa", "path": "apps/qa"},
                             {"name": "prod", "path": "apps/prod",
                              "policy": {"approval": False, "preview": "require_clean"}}], **more}


@pytest.fixture
def own_registry(tmp_path):
    registry = LocalRegistry(tmp_path / "registry", access_log=True)
    try:
        registry.start()
    except (RegistryStartError, OSError) as e:
        pytest.fail(f"docker-registry did not start: {e}", pytrace=False)
    for version, (files, metadata) in WEB.items():
        push_chart(registry.host, "preview/web", version, files=files, metadata=metadata)
    yield registry
    registry.stop()


@pytest.fixture
def remote(own_registry, bare_remote):
    return bare_remote({f"apps/{env}/web.yaml": release_file(f"oci://{own_registry.host}/preview", v)
                        for env, v in PINS.items()})


def test_archives_are_kept_on_disk_by_digest_across_a_restart(own_registry, remote, tmp_path):
    with started_bot(tmp_path, settings(remote)) as bot:
        first = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert first.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0"), first
        assert own_registry.requests("GET", "/blobs/") == 2  # the two chart layers, once each
        ask(bot, "!preview web 7.0.0 in qa")
        ask(bot, "!deploy web 7.0.0 to qa --dry-run")
        assert own_registry.requests("GET", "/blobs/") == 2
    with started_bot(tmp_path, settings(remote)) as bot:  # a restart on the same data directory
        again = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert again == first
        assert own_registry.requests("GET", "/blobs/") == 2
        assert bot.bot.plugin_manager.get_plugin_obj_by_name("Ferry").gitops.archives.downloads == 0


def test_registry_down_the_change_still_goes_with_one_line(own_registry, remote, tmp_path):
    with started_bot(tmp_path, settings(remote)) as bot:
        ask(bot, "!versions")  # the registry's tags, known for a while (registry cache)
        own_registry.stop()
        intent, result = ask(bot, "!deploy web 7.0.0 to prod", replies=2)  # require_clean, no preview
        assert "6.0.0 → 7.0.0 in prod" in result, result
        assert result.splitlines()[-1] == (
            f"Preview: could not be made (Registry {own_registry.host} cannot be reached: connection "
            "refused). The change itself is not held by it."), result
        assert "version: 7.0.0" in remote_file(remote, "apps/prod/web.yaml")
        text = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert text == f"Registry {own_registry.host} cannot be reached: connection refused.", text


def test_a_hostile_archive_is_refused_and_the_change_is_not_held(own_registry, remote, tmp_path):
    archive, _ = HOSTILE["symbolic link"]
    push_chart(own_registry.host, "preview/web", "7.1.0", layer=archive)
    with started_bot(tmp_path, settings(remote)) as bot:
        text = ask(bot, "!preview web 7.1.0 in qa")[0]
        assert text == ("web 7.1.0 holds a link (web/values.yaml): refused; Helm packages plain "
                        "files only."), text
        before = remote_tip(remote)
        dry = ask(bot, "!deploy web 7.1.0 to qa --dry-run")[0]
        assert dry.splitlines()[-1].strip() == ("Preview: could not be made (web 7.1.0 holds a link "
                                        "(web/values.yaml): refused; Helm packages plain files only). "
                                        "The change itself is not held by it."), dry
        assert remote_tip(remote) == before


def test_an_archive_past_the_size_bound_is_not_downloaded(own_registry, remote, tmp_path):
    with started_bot(tmp_path, settings(remote, preview={"max_mb": 0.0001})) as bot:
        text = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert text.startswith("The archive of web 6.0.0 is ") and \
            text.endswith("bytes, more than 104 bytes (preview.max_mb): no preview."), text
    assert own_registry.requests("GET", "/blobs/") == 0


# ---- an HTTPS Helm repository --------------------------------------------------------------

def self_signed(directory) -> tuple:
    """(certificate file, key file) for 127.0.0.1, signed by itself: the CA the settings trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry test charts")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "charts.pem", directory / "charts.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def https_repository(tmp_path):
    files, entries = {}, []
    for version, (content, metadata) in WEB.items():
        archive = chart_archive("web", version, files=content, metadata=metadata)
        files[f"web-{version}.tgz"] = archive
        entries.append(index_entry("web", version, archive, app_version="1.0.0", metadata=metadata))
    files["index.yaml"] = index_text(entries)
    tls = self_signed(tmp_path)
    with HelmRepoServer(files, tls=tls) as server:
        yield server, tls[0]


def test_an_https_helm_repository_through_its_own_ca(https_repository, bare_remote, tmp_path):
    server, ca_file = https_repository
    assert server.url.startswith("https://127.0.0.1:")
    url = bare_remote({f"apps/{env}/web.yaml": release_file(server.url, v, oci=False) for env, v in PINS.items()})
    with started_bot(tmp_path, settings(url, registry_ca_file=ca_file)) as bot:
        text = ask(bot, "!preview web to qa")[0]
        assert text.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0 (major version jump)."), text
        assert "- 6.2.0 [note] The service listens on 8080 by default" in text  # from the index
        assert "- 6.1.0 [added] A resources block" in text
        assert "- your ingress.hosts is not in 7.0.0's values" in text
        assert "- replicaCount must be of type integer" in text
    assert server.count("web-6.0.0.tgz", 200) == 1 and server.count("web-7.0.0.tgz", 200) == 1
    assert server.count("web-6.1.0.tgz", 200) == 0  # the notes between come from the index


def test_an_https_helm_repository_not_trusted_is_one_line(https_repository, bare_remote, tmp_path):
    server, _ = https_repository
    url = bare_remote({f"apps/{env}/web.yaml": release_file(server.url, v, oci=False) for env, v in PINS.items()})
    with started_bot(tmp_path, settings(url)) as bot:
        text = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert text == f"Helm repository {server.url} failed the TLS handshake.", text


def test_archives_come_with_the_hosts_own_credentials(registry_auth, bare_remote, tmp_path, monkeypatch):
    for version in ("6.0.0", "7.0.0"):
        files, metadata = WEB[version]
        push_chart(registry_auth.host, "preview/web", version, files=files, metadata=metadata,
                   username=registry_auth.username, password=registry_auth.password)
    url = bare_remote({f"apps/{env}/web.yaml": release_file(f"oci://{registry_auth.host}/preview", v)
                       for env, v in PINS.items()})
    monkeypatch.setenv("GITOPS_REGISTRY_LOCAL_USERNAME", registry_auth.username)
    monkeypatch.setenv("GITOPS_REGISTRY_LOCAL_PASSWORD", registry_auth.password)
    credentials = [{"host": registry_auth.host, "env": "LOCAL", "plain_http": True}]
    with started_bot(tmp_path, settings(url, registry_credentials=credentials)) as bot:
        text = ask(bot, "!preview web 7.0.0 in qa")[0]
        assert text.startswith("Preview of web in qa: chart 6.0.0 → 7.0.0"), text
        assert registry_auth.password not in text


def test_archives_and_labels_use_the_sources_public_methods_only():
    """One way to do a thing: what the OCI and index clients keep private stays theirs (archives and
    image labels go through ``OciRegistry.blob``/``refused``/``unreachable`` and
    ``HelmIndexClient.download``/``unreachable``)."""
    import re
    from pathlib import Path
    sources = Path(__file__).resolve().parent.parent / "plugins" / "gitops" / "sources"
    private = re.compile(r"\b(?!self\b)\w+\._(check_200_response|refused|unreachable)\(")
    found = [f"{path.name}: {m.group(0)}" for path in sorted(sources.glob("*.py"))
             for m in private.finditer(path.read_text())]
    assert found == []
