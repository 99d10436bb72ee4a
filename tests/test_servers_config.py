"""The WES servers' configuration (wesbot.servers): WES_URL alone, or a wesbot.toml; every problem one line
naming the file, the server and the key; secrets only ever from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from wesbot.config import ConfigError, load_settings
from wesbot.servers import ServerDefaults, UnknownServer, load_servers

TWO = """
[servers.prod]
url = "https://wes.prod.example.org/ga4gh/wes/v1/"
auth_env = "PROD_WES_AUTH"
log_hosts = ["logs.prod.example.org"]
cancelers = ["U0123ABCD", "S0OPS"]
channels = ["C0PROD"]
poll_seconds = 10

[servers.staging]
url = "http://wes.staging.example.org:8080/ga4gh/wes/v1"
token_env = "STAGING_WES_TOKEN"
"""
SECRETS = {"PROD_WES_AUTH": "alice:prod-pw-123", "STAGING_WES_TOKEN": "staging-token-456"}


def servers_in(tmp_path: Path, text: str | None, env: dict[str, str] | None = None,
               defaults: ServerDefaults | None = None) -> tuple[list, list[str]]:
    if text is not None:
        (tmp_path / "wesbot.toml").write_text(text, encoding="utf-8")
    return load_servers({**SECRETS, **(env or {})}, cwd=tmp_path, defaults=defaults)


def test_wes_url_alone_is_the_server_named_default(tmp_path: Path) -> None:
    servers, problems = servers_in(tmp_path, None, {"WES_URL": "https://wes.example.org/ga4gh/wes/v1/",
                                                    "WES_TOKEN": "tok-abcdef"})
    assert problems == []
    [server] = servers
    assert (server.name, server.url, server.token, server.auth) == (
        "default", "https://wes.example.org/ga4gh/wes/v1", "tok-abcdef", None)
    assert server.credential_env == "WES_TOKEN" and server.url_name == "WES_URL" and server.channels == ()


def test_wes_name_names_it(tmp_path: Path) -> None:
    servers, problems = servers_in(tmp_path, None, {"WES_URL": "http://w", "WES_NAME": "lab"})
    assert problems == [] and servers[0].name == "lab"
    _, problems = servers_in(tmp_path, None, {"WES_URL": "http://w", "WES_NAME": "Lab_1"})
    assert problems == ["WES_NAME: a server name is 1 to 20 of a-z, 0-9 and - (got 'Lab_1')"]


def test_a_file_with_two_servers(tmp_path: Path) -> None:
    servers, problems = servers_in(tmp_path, TWO)
    assert problems == []
    prod, staging = servers
    assert (prod.name, prod.url, prod.auth, prod.token) == (
        "prod", "https://wes.prod.example.org/ga4gh/wes/v1", ("alice", "prod-pw-123"), None)
    assert prod.log_hosts == frozenset({"logs.prod.example.org"}) and prod.cancelers == ("U0123ABCD", "S0OPS")
    assert prod.channels == ("C0PROD",) and prod.poll_seconds == 10.0 and prod.credential_env == "PROD_WES_AUTH"
    assert prod.url_name == "wesbot.toml: servers.prod.url"
    assert (staging.name, staging.token, staging.auth) == ("staging", "staging-token-456", None)
    assert "prod-pw-123" not in repr(servers) and "staging-token-456" not in repr(servers)


def test_the_global_settings_are_the_defaults(tmp_path: Path) -> None:
    defaults = ServerDefaults(log_hosts=frozenset({"logs.example"}), cancelers=("U0GLOBAL",), poll_seconds=99)
    prod, staging = servers_in(tmp_path, TWO, defaults=defaults)[0]
    assert prod.poll_seconds == 10 and prod.cancelers == ("U0123ABCD", "S0OPS")
    assert staging.log_hosts == frozenset({"logs.example"}) and staging.cancelers == ("U0GLOBAL",)
    assert staging.poll_seconds == 99


def test_wesbot_config_names_the_file_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "lab.toml").write_text('[servers.lab]\nurl = "http://lab"\n')
    servers, problems = servers_in(tmp_path, None, {"WESBOT_CONFIG": "conf/lab.toml"})
    assert problems == [] and [s.name for s in servers] == ["lab"]
    assert servers[0].url_name == "conf/lab.toml: servers.lab.url"


def test_secrets_come_from_the_named_variables_only(tmp_path: Path) -> None:
    text = '[servers.a]\nurl = "http://a"\nauth_env = "A_AUTH"\n'
    # WES_AUTH is not used for a server from the file: only the variable it names.
    servers, problems = servers_in(tmp_path, text, {"A_AUTH": "bob:pw-a-1234", "WES_AUTH": "eve:other"})
    assert problems == [] and servers[0].auth == ("bob", "pw-a-1234")


PROBLEMS = [
    ('[servers.prod]\nurl = "http://p"\nauth_env = "PROD_MISSING"\n',
     "wesbot.toml: servers.prod.auth_env: PROD_MISSING is not set"),
    ('[servers.prod]\nurl = "http://p"\ntoken_env = "NOPE_TOKEN"\n',
     "wesbot.toml: servers.prod.token_env: NOPE_TOKEN is not set"),
    ('[servers.prod]\nurl = "http://p"\nauth_env = "BAD_PAIR"\n',
     "wesbot.toml: servers.prod.auth_env: BAD_PAIR must be user:password, as in curl --user"),
    ('[servers.Prod]\nurl = "http://p"\n', "wesbot.toml: servers.Prod: a server name is 1 to 20 of a-z, 0-9 and -"),
    ('[servers.a-very-long-server-name]\nurl = "http://p"\n',
     "wesbot.toml: servers.a-very-long-server-name: a server name is 1 to 20 of a-z, 0-9 and -"),
    ('[servers.prod]\nurl = "http://p"\nurll = 1\n', "wesbot.toml: servers.prod.urll: unknown key (the keys are "
     "url, auth_env, token_env, log_hosts, cancelers, channels, poll_seconds, run_url, owner_tag)"),
    ('[servers.prod]\nurl = "http://p"\nowner_tag = "has space"\n',
     "wesbot.toml: servers.prod.owner_tag: must be a tag key: 1 to 100 of letters, digits and _ . : / - "
     "(got 'has space')"),
    ('[servers.prod]\nurl = "http://p"\npoll_seconds = "30"\n',
     "wesbot.toml: servers.prod.poll_seconds: must be a number from 0.1 to 86400 (got '30')"),
    ('[servers.prod]\nurl = "http://p"\npoll_seconds = 0\n',
     "wesbot.toml: servers.prod.poll_seconds: must be a number from 0.1 to 86400 (got 0)"),
    ('[servers.prod]\nurl = "http://p"\ncancelers = "U0123ABCD"\n',
     "wesbot.toml: servers.prod.cancelers: must be a list of strings, e.g. [\"a\", \"b\"] (got a string)"),
    ('[servers.prod]\nurl = "http://p"\ncancelers = ["alice"]\n',
     "wesbot.toml: servers.prod.cancelers: 'alice' is not a Slack user id (U…) or user-group id (S…)"),
    ('[servers.prod]\nurl = "http://p"\nchannels = ["#general"]\n',
     "wesbot.toml: servers.prod.channels: '#general' is not a Slack channel id (C…, as in the channel's details)"),
    ('[servers.prod]\nurl = 42\n', "wesbot.toml: servers.prod.url: must be a string (got a number)"),
    ('[servers.prod]\nauth_env = "PROD_WES_AUTH"\n', "wesbot.toml: servers.prod.url: is missing: the base URL of "
     "the WES API, e.g. https://wes.example.org/ga4gh/wes/v1"),
    ('[servers.prod]\nurl = "ftp://p"\n',
     "wesbot.toml: servers.prod.url must be an http:// or https:// URL with a host (got 'ftp://p')"),
    ('[servers.prod]\nurl = "http://bob:hunter2@p"\n',
     "wesbot.toml: servers.prod.url must not contain credentials; put them in auth_env or token_env"),
    ('[servers.prod]\nurl = "http://p"\nauth_env = "PROD_WES_AUTH"\ntoken_env = "STAGING_WES_TOKEN"\n',
     "wesbot.toml: servers.prod: auth_env and token_env are both set: set only one of them"),
    ('[servers.prod]\nurl = "http://p"\nauth_env = "alice:hunter2"\n', "wesbot.toml: servers.prod.auth_env: must "
     "be the name of an environment variable (letters, digits and _), not the secret itself"),
    ('[servers.a]\nurl = "http://a"\nchannels = ["C0X"]\n[servers.b]\nurl = "http://b"\nchannels = ["C0X"]\n',
     "wesbot.toml: servers.b.channels: C0X is already the default channel of servers.a: a channel has one "
     "default server"),
    ('[servers.prod]\nurl = "http://p"\nauth = "alice:hunter2"\n', "wesbot.toml: servers.prod.auth: secrets never "
     "go in the file: put the secret in an environment variable and name it with auth_env"),
    ('[servers.prod]\nurl = "http://p"\npassword = "hunter2"\n', "wesbot.toml: servers.prod.password: secrets "
     "never go in the file: put the secret in an environment variable and name it with auth_env"),
    ('[servers.prod]\nurl = "http://p"\ntoken = "hunter2"\n', "wesbot.toml: servers.prod.token: secrets never go "
     "in the file: put the secret in an environment variable and name it with token_env"),
    ('[servers.prod]\nurl = "http://p"\n\npoll_seconds = = 3\n',
     "wesbot.toml: not valid TOML: Invalid value (at line 4, column 16)"),
    ('[server.prod]\nurl = "http://p"\n', "wesbot.toml: server: unknown key: the file holds [servers.NAME] "
     "tables only"),
    ('servers = 3\n', "wesbot.toml: servers: no server is named: add a [servers.NAME] table with its url"),
    ('[servers]\nprod = "http://p"\n', "wesbot.toml: servers.prod: must be a table: [servers.NAME] with url = ..."),
]


@pytest.mark.parametrize(("text", "problem"), PROBLEMS, ids=[p.split(": ", 2)[-1][:40] for _, p in PROBLEMS])
def test_each_problem_is_one_line_naming_the_server_and_the_key(tmp_path: Path, text: str, problem: str) -> None:
    env = {"BAD_PAIR": "nocolon-secret"}
    servers, problems = servers_in(tmp_path, text, env)
    if problem.startswith("wesbot.toml: server: "):  # no [servers] at all: that is a problem too
        assert problems[0] == problem and len(problems) == 2
    else:
        assert problems == [problem]
    assert all("hunter2" not in p and "nocolon-secret" not in p and "prod-pw-123" not in p for p in problems)


def test_wes_url_and_a_file_at_once_is_refused(tmp_path: Path) -> None:
    _, problems = servers_in(tmp_path, TWO, {"WES_URL": "http://w"})
    assert problems == ["WES_URL is set and wesbot.toml names the servers too: configure the servers in one place, "
                        "either unset WES_URL (and WES_AUTH/WES_TOKEN) or remove wesbot.toml"]


def test_a_missing_wesbot_config_file(tmp_path: Path) -> None:
    _, problems = servers_in(tmp_path, None, {"WESBOT_CONFIG": "nope.toml"})
    assert problems == [f"WESBOT_CONFIG: there is no file {str(tmp_path / 'nope.toml')!r}"]


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = '[servers.prod]\nurl = "ftp://p"\nauth_env = "MISSING"\npoll_seconds = -1\n[servers.B]\nurl = "http://b"\n'
    (tmp_path / "wesbot.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings({"SLACK_APP_TOKEN": "bad"}, cwd=tmp_path)
    assert [p.split(":")[0:2] for p in info.value.problems] == [
        ["wesbot.toml", " servers.prod.url must be an http"], ["wesbot.toml", " servers.prod.auth_env"],
        ["wesbot.toml", " servers.prod.poll_seconds"], ["wesbot.toml", " servers.B"],
        ["SLACK_APP_TOKEN must be an app-level token starting with xapp-"]]


def test_settings_keep_the_first_servers_values_and_every_secret(tmp_path: Path) -> None:
    (tmp_path / "wesbot.toml").write_text(TWO)
    settings = load_settings({**SECRETS, "WESBOT_POLL_SECONDS": "5"}, cwd=tmp_path)
    assert [s.name for s in settings.servers] == ["prod", "staging"]
    assert settings.wes_url == "https://wes.prod.example.org/ga4gh/wes/v1"
    assert settings.wes_auth == ("alice", "prod-pw-123") and settings.poll_seconds == 10
    assert settings.wes_credential_name == "PROD_WES_AUTH"
    assert settings.server("staging").poll_seconds == 5
    secrets = settings.secrets()
    assert "prod-pw-123" in secrets and "staging-token-456" in secrets
    with pytest.raises(UnknownServer, match="no WES server is named 'lab': the servers are prod, staging"):
        settings.server("lab")


def test_settings_built_directly_have_their_one_server() -> None:
    from wesbot.config import Settings

    settings = Settings(wes_url="http://w", wes_token="tok-123456")
    assert [(s.name, s.url, s.token) for s in settings.servers] == [("default", "http://w", "tok-123456")]
