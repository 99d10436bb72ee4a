"""Several WES servers on the terminal, through the real console script: `wesbot ask --server NAME` reaches that
server with its own credentials only, `wesbot check` checks every server, and `serve` and `watch` (one server
for now) refuse several in one line."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botproc import clean_env, run
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.fake_wes import FakeWes

PASSWORD = "pw-servers-secret"
TOKEN = "tok-servers-secret"
BASIC = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
BEARER = f"Bearer {TOKEN}"


@pytest.fixture
def two() -> Iterator[tuple[FakeWes, FakeWes]]:
    """Server a with basic auth, server b with a bearer token."""
    with FakeWes(auth=("alice", PASSWORD)) as a, FakeWes(auth=TOKEN) as b:
        a.add_run("run-on-a", "RUNNING")
        b.add_run("run-on-b", "COMPLETE")
        yield a, b
        assert a.spec_violations == [] and b.spec_violations == []


def write_config(folder: Path, a: FakeWes, b: FakeWes) -> None:
    (folder / "wesbot.toml").write_text(
        f'[servers.a]\nurl = "{a.url}"\nauth_env = "A_WES_AUTH"\nchannels = ["C0A"]\n\n'
        f'[servers.b]\nurl = "{b.url}"\ntoken_env = "B_WES_TOKEN"\n', encoding="utf-8")


def env_for(folder: Path, **extra: str) -> dict[str, str]:
    return clean_env(**{"A_WES_AUTH": f"alice:{PASSWORD}", "B_WES_TOKEN": TOKEN,
                        "WESBOT_DB": str(folder / "wesbot.db"), **extra})


def authorizations(wes: FakeWes) -> set[str | None]:
    return {next((v for k, v in request.headers.items() if k.lower() == "authorization"), None)
            for request in wes.requests}


@pytest.mark.parametrize("flag", ["--server", "-s"])
def test_ask_server_reaches_that_server_with_its_own_credentials(two: tuple[FakeWes, FakeWes], tmp_path: Path,
                                                                  flag: str) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    env = env_for(tmp_path)
    out = run(["ask", flag, "a", "status", "run-on-a"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "run-on-a" in out.stdout and "RUNNING" in out.stdout
    assert b.requests == []
    out = run(["ask", flag, "b", "status", "run-on-b"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "COMPLETE" in out.stdout
    assert authorizations(a) == {BASIC} and authorizations(b) == {BEARER}
    # Each server saw only its own runs being asked for.
    assert all("run-on-b" not in request.path for request in a.requests)
    assert all("run-on-a" not in request.path for request in b.requests)


def test_an_unknown_server_is_one_line_listing_the_names(two: tuple[FakeWes, FakeWes], tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    out = run(["ask", "--server", "prod", "status", "run-on-a"], env_for(tmp_path), tmp_path)
    assert out.returncode == 2
    assert out.stderr == "wesbot: no WES server is named 'prod': the servers are a, b\n"
    assert a.requests == [] and b.requests == []


def test_a_problem_in_the_file_stops_ask_before_anything_connects(two: tuple[FakeWes, FakeWes],
                                                                 tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    env = env_for(tmp_path)
    del env["B_WES_TOKEN"]
    out = run(["ask", "--server", "a", "status", "run-on-a"], env, tmp_path)
    assert out.returncode == 2
    assert out.stderr == "wesbot: cannot start: wesbot.toml: servers.b.token_env: B_WES_TOKEN is not set\n"
    assert a.requests == []


@pytest.mark.parametrize("command", ["serve", "watch"])
def test_serve_and_watch_refuse_several_servers_in_one_line(two: tuple[FakeWes, FakeWes], slack: FakeSlack,
                                                            tmp_path: Path, command: str) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    env = env_for(tmp_path, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    out = run([command], env, tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"wesbot: wesbot.toml names 2 servers (a, b); wesbot {command} runs with one "
                                 "server for now: keep one [servers.NAME] table, or run one wesbot per server")
    assert a.requests == [] and b.requests == [] and slack.calls_to("auth.test") == []


def test_one_server_from_the_file_serves_asks_as_before(two: tuple[FakeWes, FakeWes], tmp_path: Path) -> None:
    a, _ = two
    (tmp_path / "lab.toml").write_text(f'[servers.lab]\nurl = "{a.url}"\nauth_env = "A_WES_AUTH"\n')
    out = run(["ask", "status", "run-on-a"], env_for(tmp_path, WESBOT_CONFIG="lab.toml"), tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RUNNING" in out.stdout


def test_check_checks_every_server(two: tuple[FakeWes, FakeWes], slack: FakeSlack, tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    env = env_for(tmp_path, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    out = run(["check"], env, tmp_path)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    lines = out.stdout.splitlines()
    wes_lines = [line for line in lines if line[5:].startswith("WES ")]
    host_a, host_b = (wes.root_url.removeprefix("http://") for wes in (a, b))
    assert [line[5:].split(": ", 1)[0] for line in wes_lines] == [
        f"WES a ({host_a}) URL", f"WES a ({host_a}) service-info", f"WES a ({host_a}) credentials",
        f"WES b ({host_b}) URL", f"WES b ({host_b}) service-info", f"WES b ({host_b}) credentials"]
    assert all(line.startswith("ok   ") for line in wes_lines), wes_lines
    assert "accepted A_WES_AUTH" in out.stdout and "accepted B_WES_TOKEN" in out.stdout
    assert lines[0].startswith("ok   configuration: Socket Mode, 2 WES servers (a, b)")
    assert authorizations(a) == {BASIC} and authorizations(b) == {BEARER}
    assert PASSWORD not in out.stdout and TOKEN not in out.stdout


def test_check_names_the_servers_key_in_its_fix(two: tuple[FakeWes, FakeWes], slack: FakeSlack,
                                               tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    env = env_for(tmp_path, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN,
                  B_WES_TOKEN="tok-wrong-one")
    out = run(["check"], env, tmp_path)
    assert out.returncode == 1
    [failed] = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert failed.startswith(f"FAIL WES b ({b.root_url.removeprefix('http://')}) credentials: WES rejected the "
                             "credentials (401)")
    assert "check B_WES_TOKEN (tokens expire)" in failed


def test_ask_with_several_servers_and_none_named_asks_for_one(tmp_path: Path) -> None:
    with FakeWes() as a, FakeWes() as b:
        (tmp_path / "wesbot.toml").write_text(f'[servers.a]\nurl = "{a.url}"\n\n[servers.b]\nurl = "{b.url}"\n')
        out = run(["ask", "status", "r1"], clean_env(), tmp_path)
        assert a.requests == [] and b.requests == []  # no guessing: neither server was asked
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "wesbot: several WES servers are configured (a, b): name one with --server NAME"
