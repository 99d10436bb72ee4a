"""Run the real `wesbot serve` as a child process, pointed at the loopback fakes, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_body,
    signed_request_headers,
    slash_command_payload,
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any WES_, SLACK_ or WESBOT_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WES_", "SLACK_", "WESBOT_"))}
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m wesbot ARGS`` to completion (at most 60 s), its output captured as text."""
    return subprocess.run([sys.executable, "-m", "wesbot", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BotProcess:
    """`python -m wesbot serve` in a temp working directory; ``stop()`` sends SIGTERM and reaps it."""

    def __init__(self, *, wes_url: str | None, slack_api_url: str, http: bool, extra_env: dict[str, str] | None = None,
                 wes_auth: str | None = None, workdir: str | None = None, command: str = "serve",
                 log_name: str = "bot.log") -> None:
        """``workdir``: reuse a folder (and so its wesbot.db) across processes; it is then not deleted.
        ``wes_url`` None: the servers come from a ``wesbot.toml`` in ``workdir``."""
        self._own_dir = tempfile.TemporaryDirectory(prefix="wesbot-e2e-") if workdir is None else None
        self.dir = workdir if workdir is not None else self._own_dir.name  # type: ignore[union-attr]
        self.port = free_port() if http else None
        self.log_path = Path(self.dir) / log_name
        env = clean_env(
            SLACK_API_URL=slack_api_url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            WESBOT_DB=str(Path(self.dir) / "wesbot.db"),
            PYTHONUNBUFFERED="1",
        )
        if wes_url is not None:
            env["WES_URL"] = wes_url
        if wes_auth:
            env["WES_AUTH"] = wes_auth
        if http:
            env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
        else:
            env["SLACK_APP_TOKEN"] = APP_TOKEN
        env.update(extra_env or {})
        args = [sys.executable, "-m", "wesbot", command]
        if http and command == "serve":
            args += ["--http", "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, cwd=self.dir, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.exit_seconds: float | None = None
        self.final_log: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_http_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wesbot exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"wesbot did not become healthy:\n{self.log_text()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM; returns the exit code and records how long the exit took in ``exit_seconds``."""
        if self.proc.poll() is None:
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.exit_seconds = time.monotonic() - started
        self._log.close()
        self.final_log = self.log_text()
        if self._own_dir is not None:
            self._own_dir.cleanup()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL: the process dies at once, wherever it is."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        self.final_log = self.log_text()


def post_signed(bot: BotProcess, payload: dict[str, Any], *, secret: str | None = None,
                timestamp: int | None = None) -> httpx.Response:
    """POST a slash command or an interactive payload to the bot, signed as Slack signs it."""
    body = form_body(payload)
    headers = signed_request_headers(body, secret or SIGNING_SECRET, timestamp)
    return httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10)


def final_answer(slack: FakeSlack, name: str, timeout: float = 10.0) -> dict[str, Any]:
    """The answer that reached response_url ``name``, after any "Looking up…" notice."""
    found: dict[str, Any] = slack.wait_for(
        lambda: next((r for r in slack.responses_to(name) if "Looking up" not in r.get("text", "")), None),
        timeout=timeout, what=f"an answer at {name}")
    return found


def ask_bot(bot: BotProcess, slack: FakeSlack, text: str, *, name: str | None = None, channel_id: str = "C123",
            user_id: str = "U123", timeout: float = 10.0) -> dict[str, Any]:
    """Type ``/wes TEXT`` (signed, over HTTP) and return the answer that reaches its response_url."""
    name = name or f"{text}-{channel_id}-{user_id}".replace(" ", "_")
    payload = slash_command_payload(text, channel_id=channel_id, user_id=user_id,
                                    response_url=slack.response_url(name))
    assert post_signed(bot, payload).status_code == 200
    return final_answer(slack, name, timeout)


def slash(bot: BotProcess, slack: FakeSlack, text: str, *, channel: str = "C1", user: str = "U1",
          name: str | None = None) -> dict[str, Any]:
    """``ask_bot`` for the watcher's end-to-end tests, whose channels and users default to C1 and U1."""
    return ask_bot(bot, slack, text, name=name, channel_id=channel, user_id=user)
