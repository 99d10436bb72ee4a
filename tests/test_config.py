"""Settings: one clear line per problem, naming the variable, and no secret in any message or repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from wesbot.config import ConfigError, environment, load_settings, read_dotenv

GOOD = {"WES_URL": "https://wes.example.org/ga4gh/wes/v1/", "WES_AUTH": "alice:s3cret-pw"}


def test_minimal_settings_for_ask() -> None:
    settings = load_settings(GOOD)
    assert settings.wes_url == "https://wes.example.org/ga4gh/wes/v1"
    assert settings.wes_auth == ("alice", "s3cret-pw")
    assert "s3cret-pw" not in repr(settings)
    assert settings.wes_credential_name == "WES_AUTH"


def test_every_problem_is_reported_at_once_and_names_its_variable() -> None:
    env = {"WES_URL": "ftp://x", "WES_AUTH": "nocolon", "WES_TOKEN": "tok-123456",
           "SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_APP_TOKEN": "bad", "WESBOT_DB": "/nonexistent/dir/w.db"}
    with pytest.raises(ConfigError) as info:
        load_settings(env, need_slack=True)
    problems = info.value.problems
    for name in ("WES_URL", "WES_AUTH", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "WESBOT_DB"):
        assert any(p.startswith(name) for p in problems), (name, problems)
    assert any("both set" in p for p in problems)
    assert all("tok-123456" not in p and "xoxp-user-token" not in p for p in problems)


def test_missing_settings_for_serve() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({}, need_slack=True)
    text = str(info.value)
    assert "WES_URL is not set" in text and "SLACK_BOT_TOKEN is not set" in text and "SLACK_APP_TOKEN" in text
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, "SLACK_BOT_TOKEN": "xoxb-1"}, need_slack=True, http_mode=True)
    assert info.value.problems == ["SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests"]


def test_credentials_in_wes_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"WES_URL": "https://bob:hunter2@wes.example.org/"})
    assert "hunter2" not in str(info.value)
    assert "WES_URL must not contain credentials" in str(info.value)


def test_slack_api_url_gets_a_trailing_slash() -> None:
    settings = load_settings({**GOOD, "SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport WES_URL='http://from-file/'\nWES_TOKEN=\"abc def\"\nWESBOT_DB=x.db # trailing\nbroken\n"
    )
    assert read_dotenv(dotenv) == {"WES_URL": "http://from-file/", "WES_TOKEN": "abc def", "WESBOT_DB": "x.db"}
    merged = environment({"WES_URL": "http://from-env/"}, dotenv)
    assert merged["WES_URL"] == "http://from-env/" and merged["WES_TOKEN"] == "abc def"
    assert read_dotenv(tmp_path / "missing") == {}
