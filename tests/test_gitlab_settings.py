"""The GitLab forge's settings: the client's arguments from a `forge:` mapping, secrets from the
environment (or their `_FILE`), one line for each mistake."""
import pytest

from gitops.errors import SettingsError
from gitops.forges.gitlab import GitLab, parse_gitlab_forge

TOKEN = "glpat-ferry-0123456789abcdef"
SECRET = "hook-secret-4711"


def test_settings_give_the_clients_arguments(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    environ = {"GITOPS_FORGE_PLATFORM_TOKEN_FILE": str(secret),
               "GITOPS_FORGE_PLATFORM_WEBHOOK_SECRET": SECRET}
    parsed = parse_gitlab_forge({"kind": "gitlab", "api_url": "https://gitlab.example.com/api/v4/",
                                 "project": "platform/deploy/fleet", "env": "PLATFORM",
                                 "labels": ["ferry"], "auto_merge": True}, environ)
    assert parsed == {"api_url": "https://gitlab.example.com/api/v4", "project": "platform/deploy/fleet",
                      "token": TOKEN, "auth": "private-token", "timeout": 10.0,
                      "token_variable": "GITOPS_FORGE_PLATFORM_TOKEN", "webhook_secret": SECRET}
    assert GitLab(**parsed).api.base == "https://gitlab.example.com/api/v4"
    default = parse_gitlab_forge({"repository": "group/app"}, {"GITOPS_FORGE_GITLAB_TOKEN": TOKEN})
    assert default["api_url"] == "https://gitlab.com/api/v4" and default["webhook_secret"] == ""


@pytest.mark.parametrize("raw, environ, said", [
    ({"project": "g/p"}, {}, "GITOPS_FORGE_GITLAB_TOKEN"),
    ({"project": "g/p", "api_url": "http://gitlab.example.com/api/v4"}, {"GITOPS_FORGE_GITLAB_TOKEN": "t"},
     "plain HTTP"),
    ({"project": "g/p", "api_url": "ftp://gitlab.example.com"}, {"GITOPS_FORGE_GITLAB_TOKEN": "t"}, "api_url"),
    ({"project": "../p"}, {"GITOPS_FORGE_GITLAB_TOKEN": "t"}, "project"),
    ({"project": "g/p", "token": "t"}, {}, "environment variables"),
    ({"project": "g/p", "auth": "basic"}, {"GITOPS_FORGE_GITLAB_TOKEN": "t"}, "auth"),
    ({"project": "g/p", "colour": 1}, {"GITOPS_FORGE_GITLAB_TOKEN": "t"}, "unknown key"),
])
def test_settings_mistakes_are_one_line(raw, environ, said):
    with pytest.raises(SettingsError) as wrong:
        parse_gitlab_forge(raw, environ)
    assert said in str(wrong.value) and "\n" not in str(wrong.value)


def test_plain_http_is_allowed_to_this_machine_only_unless_said():
    environ = {"GITOPS_FORGE_GITLAB_TOKEN": "t"}
    assert parse_gitlab_forge({"project": "g/p", "api_url": "http://127.0.0.1:8080/api/v4"}, environ)
    assert parse_gitlab_forge({"project": "g/p", "api_url": "http://gitlab.lan/api/v4"}, environ,
                              allow_plain_http_credentials=True)
