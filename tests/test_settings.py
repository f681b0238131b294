"""Settings: the shape of DESIGN.md, validated with messages that name the key and say why."""
import pytest

from gitops.errors import SettingsError, UnknownEnvironment
from gitops.model import ChartLocation
from gitops.settings import load_settings, parse_settings

BASE = {
    "repo": {"url": "file:///srv/flux.git", "branch": "main"},
    "registry": {"url": "oci://127.0.0.1:5000/charts", "insecure": True},
    "environments": [
        {"name": "dev", "path": "apps/dev"},
        {"name": "qa", "path": ["apps/qa", "infrastructure/qa"]},
        {"name": "stag", "path": "components/*/staging", "aliases": ["stage", "Staging"]},
        {"name": "prod", "path": "apps/prod", "repo": {"url": "git@github.com:acme/prod.git"},
         "branch": "release", "aliases": ["production"]},
    ],
    "apps": {"web": {"chart": "podinfo", "registry": "oci://ghcr.io/acme/charts"}},
}


def parse(raw, environ=None):
    return parse_settings(raw, environ or {})


def test_full_shape():
    s = parse(BASE)
    assert s.environment_names == ["dev", "qa", "stag", "prod"]
    assert s.environment("qa").paths == ("apps/qa", "infrastructure/qa")
    assert s.environment("STAGING").name == "stag"
    assert s.environment("production").repo.url == "git@github.com:acme/prod.git"
    assert s.environment("prod").repo.branch == "release"
    assert s.environment("dev").repo.branch == "main"
    assert len(s.repos()) == 2
    assert s.previous(s.environment("qa")).name == "dev"
    assert s.previous(s.environment("dev")) is None
    assert s.registry.location("podinfo") == ChartLocation("127.0.0.1:5000", "charts/podinfo", True)
    assert s.apps["web"].chart == "podinfo"
    assert s.apps["web"].registry.location("podinfo") == ChartLocation("ghcr.io", "acme/charts/podinfo")


def test_unknown_environment_suggests_nearest():
    with pytest.raises(UnknownEnvironment, match="did you mean `prod`"):
        parse(BASE).environment("prd")


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("repo"), "`repo` is missing"),
    (lambda r: r.pop("environments"), "`environments` is missing"),
    (lambda r: r.update(environments=[]), "`environments` must be a list"),
    (lambda r: r.update(environments=[{"name": "dev"}]), "`environments[0].path` is missing"),
    (lambda r: r.update(environments=[{"name": "Dev env", "path": "x"}]), "`environments[0].name`"),
    (lambda r: r.update(environments=[{"name": "dev", "path": "../x"}]), "must stay inside"),
    (lambda r: r.update(environments=[{"name": "dev", "path": "a"}, {"name": "qa", "path": "b",
                                                                       "aliases": ["dev"]}]),
     "already used by environment dev"),
    (lambda r: r.update(registry={"url": "ftp://example.com"}), "`registry.url` must look like oci://"),
        (lambda r: r.update(registry={"url": "https://u:p@example.com"}), "`registry.url` holds credentials"),
        (lambda r: r.update(helm_index={"max_mb": 0}), "`helm_index.max_mb` must be a number"),
        (lambda r: r.update(helm_index={"timeout": "30"}), "`helm_index.timeout` must be a number"),
        (lambda r: r.update(helm_index={"url": "x"}), "`helm_index` has an unknown key `url`"),
    (lambda r: r.update(registry={"url": "oci://x", "insecure": "yes"}), "`registry.insecure` must be true or false"),
    (lambda r: r["repo"].update(token="s3cret"), "`repo` has an unknown key `token`"),
    (lambda r: r.update(colour="blue"), "unknown key `colour`"),
    (lambda r: r["repo"].update(url="https://bob:s3cret@git.example.com/x.git"), "`repo.url` holds credentials"),
    # A token alone as the user name is a credential too (issue 19, item 3).
    (lambda r: r["repo"].update(url="https://ghp_s3cret@github.com/acme/flux.git"),
     "`repo.url` holds credentials"),
    (lambda r: r["environments"].append({"name": "edge", "path": "x",
                                         "repo": "https://ghp_s3cret@gitlab.com/acme/edge.git"}),
     "`environments[4].repo.url` holds credentials"),
    (lambda r: r.update(registry_busy_seconds=0), "`registry_busy_seconds` must be a number"),
    (lambda r: r.update(ssh={"known_hosts": "/nonexistent/known_hosts"}), "which is not a file"),
    (lambda r: r.update(ssh={"accept_new_host_keys": "yes"}), "`ssh.accept_new_host_keys` must be true"),
    (lambda r: r.update(ssh={"trust": True}), "`ssh` has an unknown key `trust`"),
    (lambda r: r.update(registry_timeout=0), "`registry_timeout`"),
    (lambda r: r.update(flux={"timeout_minutes": 0}), "`flux.timeout_minutes` must be a number of minutes"),
    (lambda r: r.update(flux={"max_age_minutes": "15"}), "`flux.max_age_minutes` must be a number"),
    (lambda r: r.update(flux={"token": "s3cret"}), "`flux` has an unknown key `token`"),
    (lambda r: r.update(flux=[]), "`flux` must be a mapping"),
    (lambda r: r.update(environments=[{"name": "dev", "path": "a", "notify": ""}]),
     "`environments[0].notify` must be a non-empty string"),
])
def test_wrong_settings_name_the_key(change, message):
    raw = {**BASE, "repo": dict(BASE["repo"]), "environments": list(BASE["environments"])}
    change(raw)
    with pytest.raises(SettingsError) as e:
        parse(raw)
    assert message in str(e.value)
    assert "s3cret" not in str(e.value)


def test_load_from_gitops_config(tmp_path):
    f = tmp_path / "ferry.yaml"
    f.write_text("repo:\n  url: file:///x.git\nenvironments:\n  - name: dev\n    path: apps/dev\n")
    s = load_settings(environ={"GITOPS_CONFIG": str(f)})
    assert s.environment_names == ["dev"]
    assert s.data_dir == str(tmp_path / "data")


def test_broken_yaml_says_where(tmp_path):
    f = tmp_path / "ferry.yaml"
    f.write_text("repo:\n  url: [unclosed\n")
    with pytest.raises(SettingsError, match=r"not valid YAML \(line \d+: "):
        load_settings(str(f), environ={})


def test_missing_file_and_variable():
    with pytest.raises(SettingsError, match="GITOPS_CONFIG is not set"):
        load_settings(environ={})
    with pytest.raises(SettingsError, match="Cannot read settings file /nonexistent"):
        load_settings("/nonexistent/ferry.yaml", environ={})


def test_secrets_from_environment_and_files_never_in_repr(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2\n")
    s = parse(BASE, {"GITOPS_GIT_TOKEN": "ghp_abc", "GITOPS_REGISTRY_USERNAME": "bot",
                     "GITOPS_REGISTRY_PASSWORD_FILE": str(pw)})
    assert s.secrets.git_token == "ghp_abc"
    # The single pair is for the host of `registry.url`, and only for it.
    (creds,) = s.secrets.registries
    assert (creds.host, creds.username, creds.password) == ("127.0.0.1:5000", "bot", "hunter2")
    assert s.secrets.registry("127.0.0.1:5000") is creds and s.secrets.registry("ghcr.io") is None
    assert "hunter2" not in repr(s) and "ghp_abc" not in repr(s)
    assert set(s.secrets.values()) == {"ghp_abc", "hunter2"}


def test_registry_credentials_are_bound_to_their_hosts():
    raw = {**BASE, "registry_credentials": [
        {"host": "ghcr.io", "env": "GHCR"},
        {"host": "registry-1.docker.io", "env": "DOCKERHUB", "token_hosts": ["auth.docker.io"]},
    ]}
    s = parse(raw, {"GITOPS_REGISTRY_GHCR_USERNAME": "gh", "GITOPS_REGISTRY_GHCR_PASSWORD": "ghp-pw",
                    "GITOPS_REGISTRY_DOCKERHUB_USERNAME": "hub", "GITOPS_REGISTRY_DOCKERHUB_PASSWORD": "hub-pw"})
    ghcr, hub = s.secrets.registry("ghcr.io"), s.secrets.registry("registry-1.docker.io")
    assert (ghcr.username, ghcr.password, ghcr.token_hosts) == ("gh", "ghp-pw", ())
    assert (hub.username, hub.password, hub.token_hosts) == ("hub", "hub-pw", ("auth.docker.io",))
    assert s.secrets.registry("127.0.0.1:5000") is None  # registry.url's host has none
    assert "ghp-pw" not in repr(s) and "hub-pw" not in repr(s)
    assert set(s.secrets.values()) == {"ghp-pw", "hub-pw"}


@pytest.mark.parametrize("raw, environ, message", [
    ({k: v for k, v in BASE.items() if k != "registry"},
     {"GITOPS_REGISTRY_USERNAME": "u", "GITOPS_REGISTRY_PASSWORD": "p"},
     "GITOPS_REGISTRY_USERNAME/PASSWORD are set but `registry.url` is not"),
    (BASE, {"GITOPS_REGISTRY_USERNAME": "u"}, "Set both GITOPS_REGISTRY_USERNAME and GITOPS_REGISTRY_PASSWORD"),
    ({**BASE, "registry_credentials": [{"host": "ghcr.io", "env": "GHCR"}]}, {},
     "names GITOPS_REGISTRY_GHCR_USERNAME/PASSWORD for ghcr.io, but they are not both set"),
    ({**BASE, "registry_credentials": [{"host": "https://ghcr.io", "env": "GHCR"}]}, {},
     "must be a registry host[:port]"),
    ({**BASE, "registry_credentials": [{"host": "ghcr.io", "env": "ghcr"}]}, {}, "upper-case"),
    ({**BASE, "registry_credentials": [{"host": "ghcr.io", "env": "G", "password": "x"}]}, {},
     "unknown key `password`"),
    ({**BASE, "registry_credentials": [{"host": "127.0.0.1:5000", "env": "LOCAL"}]},
     {"GITOPS_REGISTRY_LOCAL_USERNAME": "a", "GITOPS_REGISTRY_LOCAL_PASSWORD": "b",
      "GITOPS_REGISTRY_USERNAME": "u", "GITOPS_REGISTRY_PASSWORD": "p"}, "keep one"),
])
def test_registry_credentials_mistakes_are_named(raw, environ, message):
    with pytest.raises(SettingsError) as e:
        parse(raw, environ)
    assert message in str(e.value)


def test_unreadable_secret_file():
    with pytest.raises(SettingsError, match="Cannot read GITOPS_GIT_TOKEN_FILE"):
        parse(BASE, {"GITOPS_GIT_TOKEN_FILE": "/nonexistent"})


def test_the_example_settings_file_loads():
    from pathlib import Path
    example = Path(__file__).resolve().parent.parent / "ferry.example.yaml"
    s = load_settings(str(example), environ={})
    assert s.environment_names == ["dev", "qa", "stag", "prod"]
    assert s.environment("production").repo.url == "git@github.com:acme/fleet-prod.git"
    assert s.apps["web"].chart == "podinfo"
    assert s.environment("prod").notify == "#deploys-prod" and s.flux.timeout_minutes == 10


def test_flux_feedback_settings_and_tokens(tmp_path):
    s = parse(BASE)
    assert (s.flux.timeout_minutes, s.flux.max_age_minutes) == (10, 15)
    assert s.environment("prod").notify == "" and s.secrets.flux_token("prod") == ""
    raw = {**BASE, "flux": {"timeout_minutes": 0.5, "max_age_minutes": 30},
           "environments": [dict(e) for e in BASE["environments"]]}
    raw["environments"][3]["notify"] = "#deploys-prod"
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    s = parse(raw, {"GITOPS_FLUX_TOKEN_PROD": "prod-hmac", "GITOPS_FLUX_TOKEN_QA_FILE": str(token),
                    "GITOPS_FLUX_TOKEN_DEV": ""})
    assert (s.flux.timeout_minutes, s.flux.max_age_minutes) == (0.5, 30)
    assert s.environment("production").notify == "#deploys-prod"
    assert s.secrets.flux_token("prod") == "prod-hmac" and s.secrets.flux_token("qa") == "from-a-file"
    assert s.secrets.flux_token("dev") == "" and s.secrets.flux_token("stag") == ""
    assert "prod-hmac" not in repr(s) and {"prod-hmac", "from-a-file"} <= set(s.secrets.values())
    odd = parse({**BASE, "environments": [{"name": "eu-west.prod", "path": "x"}]},
                {"GITOPS_FLUX_TOKEN_EU_WEST_PROD": "t"})
    assert odd.secrets.flux_token("eu-west.prod") == "t"


# ---- issue 19, item 3: credentials never travel --------------------------------------------

GIT_HOSTS = {**BASE, "repo": {"url": "https://git.example.com/acme/flux.git"},
             "environments": [{"name": "dev", "path": "apps/dev"},
                              {"name": "edge", "path": "apps/edge",
                               "repo": "https://gitlab.example.org:8443/acme/edge.git"},
                              {"name": "lab", "path": "apps/lab", "repo": "https://lab.example.net/x.git"}]}


def test_the_git_token_belongs_to_repo_url_s_host_only():
    s = parse(GIT_HOSTS, {"GITOPS_GIT_TOKEN": "ghp_main"})
    assert s.secrets.git("https://git.example.com/acme/flux.git").token == "ghp_main"
    assert s.secrets.git("https://GIT.example.com/other.git").token == "ghp_main"  # the host, any path
    assert s.secrets.git("https://gitlab.example.org:8443/acme/edge.git") is None
    assert s.secrets.git("https://git.example.com:8443/acme/flux.git") is None  # another port
    assert s.secrets.git("git@git.example.com:acme/flux.git") is None  # SSH: the key, never the token


def test_another_git_host_has_credentials_of_its_own():
    raw = {**GIT_HOSTS, "git_credentials": [{"host": "gitlab.example.org:8443", "env": "EDGE"}]}
    s = parse(raw, {"GITOPS_GIT_TOKEN": "ghp_main", "GITOPS_GIT_EDGE_TOKEN": "glpat-edge",
                    "GITOPS_GIT_EDGE_USERNAME": "oauth2"})
    edge = s.secrets.git("https://gitlab.example.org:8443/acme/edge.git")
    assert (edge.token, edge.username, edge.variables) == ("glpat-edge", "oauth2", "GITOPS_GIT_EDGE_TOKEN")
    assert s.secrets.git("https://lab.example.net/x.git") is None
    assert {"ghp_main", "glpat-edge"} <= set(s.secrets.values())
    assert "glpat-edge" not in repr(s)


@pytest.mark.parametrize("raw, environ, message", [
    ({**GIT_HOSTS, "git_credentials": [{"host": "gitlab.example.org", "env": "EDGE"}]}, {},
     "names GITOPS_GIT_EDGE_TOKEN for gitlab.example.org, but it is not set"),
    ({**GIT_HOSTS, "git_credentials": [{"host": "git.example.com", "env": "MAIN"}]},
     {"GITOPS_GIT_TOKEN": "a", "GITOPS_GIT_MAIN_TOKEN": "b"}, "already has a token (GITOPS_GIT_TOKEN)"),
    ({**GIT_HOSTS, "git_credentials": [{"host": "https://x.org", "env": "X"}]}, {}, "must be a Git host"),
    ({**GIT_HOSTS, "git_credentials": {"host": "x.org"}}, {}, "`git_credentials` must be a list"),
    # Plain HTTP with credentials: only to this machine, unless the settings allow it.
    ({**GIT_HOSTS, "repo": {"url": "http://git.example.com/acme/flux.git"}}, {"GITOPS_GIT_TOKEN": "t"},
     "GITOPS_GIT_TOKEN would go over plain HTTP to git.example.com"),
    ({**BASE, "registry_credentials": [{"host": "registry.example.com", "env": "R", "plain_http": True}]},
     {"GITOPS_REGISTRY_R_USERNAME": "u", "GITOPS_REGISTRY_R_PASSWORD": "p"},
     "would go over plain HTTP to registry.example.com, which is not this machine"),
    ({**BASE, "registry_credentials": [{"host": "r.example.com", "env": "R", "plain_http": "yes"}]},
     {"GITOPS_REGISTRY_R_USERNAME": "u", "GITOPS_REGISTRY_R_PASSWORD": "p"}, "must be true or false"),
    ({**BASE, "allow_plain_http_credentials": "yes"}, {}, "`allow_plain_http_credentials` must be true"),
])
def test_credential_mistakes_are_named(raw, environ, message):
    with pytest.raises(SettingsError) as e:
        parse(raw, environ)
    assert message in str(e.value)


def test_plain_http_credentials_where_the_settings_say_so():
    local = {**BASE, "repo": {"url": "http://127.0.0.1:8080/flux.git"},
             "registry_credentials": [{"host": "localhost:5000", "env": "L", "plain_http": True},
                                      {"host": "ghcr.io", "env": "G"}]}
    environ = {"GITOPS_GIT_TOKEN": "t", "GITOPS_REGISTRY_L_USERNAME": "u", "GITOPS_REGISTRY_L_PASSWORD": "p",
               "GITOPS_REGISTRY_G_USERNAME": "u", "GITOPS_REGISTRY_G_PASSWORD": "p"}
    s = parse(local, environ)
    assert s.secrets.registry("localhost:5000").plain_http and not s.secrets.registry("ghcr.io").plain_http
    assert s.secrets.git("http://127.0.0.1:8080/flux.git").token == "t"
    far = {**local, "repo": {"url": "http://git.lan:8080/flux.git"},
           "registry_credentials": [{"host": "registry.lan", "env": "L", "plain_http": True}]}
    with pytest.raises(SettingsError):
        parse(far, environ)
    s = parse({**far, "allow_plain_http_credentials": True}, environ)
    assert s.secrets.registry("registry.lan").plain_http


def test_ssh_known_hosts_from_the_settings(tmp_path):
    (tmp_path / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (tmp_path / "ferry.yaml").write_text("repo: git@github.com:acme/flux.git\n"
                                         "environments: [{name: dev, path: apps/dev}]\n"
                                         "ssh: {known_hosts: known_hosts}\n")
    s = load_settings(str(tmp_path / "ferry.yaml"), environ={})
    assert s.ssh.known_hosts == str(tmp_path / "known_hosts") and not s.ssh.accept_new_host_keys
    assert parse(BASE).ssh.known_hosts == "" and parse(BASE).registry_busy_seconds == 5
