"""Start-up: every failure is one line and exit code 2, never a traceback; log levels and formats (issue 12).

The failures run the real console script (``.venv/bin/wesbot``) with a clean environment, against the loopback
fakes; "unreachable" is a loopback port nobody listens on.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.botproc import BotProcess, clean_env, free_port
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.fake_wes import FakeWes
from wesbot.config import Settings, load_settings
from wesbot.logsetup import LOG_LEVELS, JsonFormatter, RedactSecrets, TextFormatter, setup_logging

WES_PASSWORD = "pw-startup-secret-9"
WRONG_BOT_TOKEN = "xoxb-wrong-startup-token-7"
WRONG_APP_TOKEN = "xapp-1-wrong-startup-token-8"
SECRETS = (WES_PASSWORD, WRONG_BOT_TOKEN, WRONG_APP_TOKEN, BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
CONSOLE_SCRIPT = Path(sys.executable).parent / "wesbot"


def wesbot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``wesbot`` console script (``python -m wesbot`` where it is not installed), to the end."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "wesbot"]
    return subprocess.run([*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_failure(out: subprocess.CompletedProcess[str]) -> str:
    """The failure's one line, once the rest of the contract is checked: exit 2, no traceback, no secret."""
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("wesbot: "), lines[0]
    for secret in SECRETS:
        assert secret not in out.stderr + out.stdout, secret
    return lines[0]


@pytest.fixture
def env(tmp_path: Path, wes: FakeWes, slack: FakeSlack) -> dict[str, str]:
    """Settings that start `wesbot serve` in Socket Mode against the fakes."""
    wes.auth = ("alice", WES_PASSWORD)
    return clean_env(WES_URL=wes.url, WES_AUTH=f"alice:{WES_PASSWORD}", SLACK_API_URL=slack.api_url,
                     SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, WESBOT_DB=str(tmp_path / "wesbot.db"))


def http_env(env: dict[str, str]) -> dict[str, str]:
    http = {k: v for k, v in env.items() if k != "SLACK_APP_TOKEN"}
    http["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    return http


# -- Slack -------------------------------------------------------------------------------------------


def test_a_bot_token_slack_refuses(tmp_path: Path, env: dict[str, str], slack: FakeSlack) -> None:
    line = one_line_failure(wesbot(["serve"], {**env, "SLACK_BOT_TOKEN": WRONG_BOT_TOKEN}, tmp_path))
    assert "SLACK_BOT_TOKEN" in line and "invalid_auth" in line
    assert slack.calls_to("auth.test")


def test_slack_unreachable(tmp_path: Path, env: dict[str, str]) -> None:
    closed = free_port()  # bound once and released: nothing listens there
    api_url = f"http://127.0.0.1:{closed}/api/"
    line = one_line_failure(wesbot(["serve"], {**env, "SLACK_API_URL": api_url}, tmp_path))
    assert "Slack" in line and f"127.0.0.1:{closed}" in line and "reach" in line
    assert "refused" in line.lower()


def test_an_app_token_slack_refuses(tmp_path: Path, env: dict[str, str]) -> None:
    line = one_line_failure(wesbot(["serve"], {**env, "SLACK_APP_TOKEN": WRONG_APP_TOKEN}, tmp_path))
    assert "SLACK_APP_TOKEN" in line and "invalid_auth" in line


# -- log settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "accepted"), [
    ("WESBOT_LOG_LEVEL", "verbose", ", ".join(LOG_LEVELS)),
    ("WESBOT_LOG_FORMAT", "xml", "text, json"),
])
def test_a_log_setting_that_is_not_one_of_its_values(tmp_path: Path, env: dict[str, str], name: str, value: str,
                                                     accepted: str) -> None:
    line = one_line_failure(wesbot(["ask", "status", "r1"], {**env, name: value}, tmp_path))
    assert name in line and repr(value) in line and accepted in line


def test_serve_lists_a_bad_log_level_with_the_other_problems(tmp_path: Path, slack: FakeSlack) -> None:
    out = wesbot(["serve"], clean_env(WESBOT_LOG_LEVEL="verbose", WESBOT_LOG_FORMAT="yaml",
                                      SLACK_API_URL=slack.api_url), tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    problems = [line.strip() for line in out.stderr.splitlines() if line.strip().startswith("- ")]
    assert any(p.startswith("- WES_URL") for p in problems), out.stderr
    assert any(p.startswith("- WESBOT_LOG_LEVEL") and "debug-all" in p for p in problems), out.stderr
    assert any(p.startswith("- WESBOT_LOG_FORMAT") for p in problems), out.stderr
    assert slack.calls == []  # nothing connected


def test_the_log_level_is_read_from_dotenv_too() -> None:
    assert load_settings({"WES_URL": "http://w", "WESBOT_LOG_LEVEL": "DEBUG"}).log_level == "debug"
    assert load_settings({"WES_URL": "http://w"}).log_level is None
    assert load_settings({"WES_URL": "http://w", "WESBOT_LOG_FORMAT": "JSON"}).log_format == "json"


# -- the HTTP port -----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "0", "-1", "abc", "65536"])
def test_a_port_out_of_range_is_refused_before_connecting(tmp_path: Path, env: dict[str, str], slack: FakeSlack,
                                                          wes: FakeWes, port: str) -> None:
    line = one_line_failure(wesbot(["serve", "--http", "--port", port], http_env(env), tmp_path))
    assert "--port" in line and repr(port) in line and "1 to 65535" in line
    assert slack.calls == [] and wes.requests == []


def test_a_bad_dollar_port_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    line = one_line_failure(wesbot(["serve", "--http"], {**http_env(env), "PORT": "eighty"}, tmp_path))
    assert "PORT" in line and "'eighty'" in line


def test_a_port_in_use_names_the_port_and_the_fix(tmp_path: Path, env: dict[str, str], slack: FakeSlack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = wesbot(["serve", "--http", "--host", "127.0.0.1", "--port", str(port)], http_env(env), tmp_path)
    line = one_line_failure(out)
    assert f"port {port} is already in use" in line and "--port" in line
    assert slack.calls == []


# -- noise -------------------------------------------------------------------------------------------


def test_a_start_at_debug_logs_wesbot_not_the_libraries(tmp_path: Path, slack: FakeSlack, wes: FakeWes) -> None:
    """Bolt's "token will be unused" never appears, and neither does httpcore nor slack_sdk at --log-level debug."""
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False, workdir=str(tmp_path),
                     extra_env={"WESBOT_LOG_LEVEL": "debug"})
    try:
        slack.wait_connected(timeout=20)
        time.sleep(0.3)
    finally:
        bot.stop()
    log = bot.log_text()
    assert "token` will be unused" not in log and "token will be unused" not in log
    assert " DEBUG wesbot." in log  # debug really was on, for wesbot
    for library in ("httpcore", "slack_sdk", "slack_bolt", "urllib3", "wesbot.bolt"):
        assert f" {library}" not in log, library


def test_bolt_is_built_without_the_token_warning(monkeypatch: pytest.MonkeyPatch, slack: FakeSlack,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from wesbot.slack.app import Deps, build_app

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # what makes Bolt warn: the variable is set
    settings = Settings(wes_url="http://w", slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.DEBUG):
        build_app(settings, Deps.single(wes=None, host="h", pool=pool), http_mode=False)  # type: ignore[arg-type]
        build_app(settings, Deps.single(wes=None, host="h", pool=pool), http_mode=False)  # type: ignore[arg-type]
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
    assert len(slack.calls_to("auth.test")) == 2


# -- JSON logs ---------------------------------------------------------------------------------------


def log_lines(stderr: str) -> list[dict[str, Any]]:
    """Every line that is a log line parsed; the rest must be the command's own answer (``error: ...``)."""
    entries = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        if not line.startswith("{"):
            assert line.startswith("error: "), line
            continue
        entry = json.loads(line)
        assert isinstance(entry, dict)
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        assert datetime.fromisoformat(entry["time"]).tzinfo is not None, entry["time"]
        entries.append(entry)
    return entries


@pytest.mark.parametrize("level", ["info", "debug", "debug-all"])
def test_json_logs_one_object_a_line_and_no_secret(tmp_path: Path, wes: FakeWes, level: str) -> None:
    wes.auth = ("alice", WES_PASSWORD)
    wes.add_run("json-run", "RUNNING")
    env = clean_env(WES_URL=wes.url, WES_AUTH=f"alice:{WES_PASSWORD}", WESBOT_LOG_FORMAT="json")
    out = wesbot(["--log-level", level, "ask", "status", "json-run"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "json-run\tRUNNING"
    entries = log_lines(out.stderr)
    wrong = wesbot(["--log-level", level, "ask", "status", "json-run"],
                   {**env, "WES_AUTH": f"alice:{WES_PASSWORD}-old"}, tmp_path)
    assert wrong.returncode == 1 and "check WES_AUTH" in wrong.stderr
    entries += log_lines(wrong.stderr)
    if level != "info":
        loggers = {entry["logger"] for entry in entries}
        assert any(name.startswith("wesbot.") for name in loggers), loggers
        assert "httpx" in loggers
        assert ("httpcore.connection" in loggers) == (level == "debug-all"), loggers
    for secret in (WES_PASSWORD, "YWxpY2U6"):  # the password, and the start of its Basic form
        assert secret not in out.stderr + wrong.stderr


# -- the formatters, in process ----------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("wesbot", "httpx", "httpcore", "slack_sdk", "wesbot.bolt")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def captured(log_format: str, level: str = "debug") -> io.StringIO:
    stream = io.StringIO()
    settings = Settings(wes_url="http://w", wes_auth=("alice", WES_PASSWORD), slack_bot_token=BOT_TOKEN,
                        log_format=log_format)
    setup_logging(settings, level)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    return stream


def emit_everything() -> None:
    logger = logging.getLogger("wesbot.events")
    logger.info("command", extra={"user": "U1", "channel": "C1", "command": "status", "server": "wes.test",
                                  "outcome": "ok", "ms": 12, "note": f"said {WES_PASSWORD} twice"})
    try:
        raise RuntimeError(f"the server echoed {BOT_TOKEN}")
    except RuntimeError:
        logger.exception("broke at https://hooks.slack.com/commands/T1/2/SECRETHOOK", extra={"time": "mine"})


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_extra_fields_redacted() -> None:
    stream = captured("json")
    emit_everything()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "command" and first["level"] == "INFO" and first["logger"] == "wesbot.events"
    assert {k: first[k] for k in ("user", "channel", "command", "server", "outcome", "ms")} == {
        "user": "U1", "channel": "C1", "command": "status", "server": "wes.test", "outcome": "ok", "ms": 12}
    assert first["note"] == "said [redacted] twice"
    assert "RuntimeError" in second["exception"] and "[redacted]" in second["exception"]
    assert second["time_"] == "mine" and second["time"] != "mine"
    assert "SECRETHOOK" not in stream.getvalue() and WES_PASSWORD not in stream.getvalue()
    assert BOT_TOKEN not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_append_the_extra_fields_as_key_value() -> None:
    stream = captured("text")
    emit_everything()
    text = stream.getvalue()
    first = text.splitlines()[0]
    assert first.endswith(': command user=U1 channel=C1 command=status server=wes.test outcome=ok ms=12 '
                          'note="said [redacted] twice"'), first
    assert " INFO wesbot.events: " in first
    assert "Traceback" in text and "SECRETHOOK" not in text and WES_PASSWORD not in text and BOT_TOKEN not in text


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("level", "wesbot_debug", "httpx_info", "httpcore_debug"), [
    ("info", False, False, False),
    ("debug", True, True, False),
    ("debug-all", True, True, True),
])
def test_levels_keep_the_libraries_at_warning_unless_asked(level: str, wesbot_debug: bool, httpx_info: bool,
                                                           httpcore_debug: bool) -> None:
    captured("text", level)
    assert logging.getLogger("wesbot.core").isEnabledFor(logging.DEBUG) is wesbot_debug
    assert logging.getLogger("wesbot.core").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.INFO) is httpx_info
    assert logging.getLogger("httpcore.http11").isEnabledFor(logging.DEBUG) is httpcore_debug
    for library in ("urllib3", "slack_sdk.web.base_client", "slack_bolt.App", "wesbot.bolt", "waitress"):
        assert logging.getLogger(library).isEnabledFor(logging.DEBUG) is httpcore_debug, library
        assert logging.getLogger(library).isEnabledFor(logging.WARNING), library


def test_the_formatters_on_a_bare_record() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "plain %s", ("line",), None)
    RedactSecrets([]).filter(record)
    assert TextFormatter().format(record).endswith("WARNING x: plain line")
    assert json.loads(JsonFormatter().format(record))["message"] == "plain line"
