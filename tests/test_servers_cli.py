"""Several WES servers on the terminal, through the real console script: `wesbot ask --server NAME` reaches that
server with its own credentials only, `wesbot check` checks every server, and `wesbot watch` watches each."""

from __future__ import annotations

import base64
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.botproc import BotProcess, clean_env, run
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


def test_watch_runs_one_watcher_per_server_each_with_its_own_lease(two: tuple[FakeWes, FakeWes], slack: FakeSlack,
                                                                    tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    bot = BotProcess(wes_url=None, slack_api_url=slack.api_url, http=False, command="watch", workdir=str(tmp_path),
                     extra_env={"A_WES_AUTH": f"alice:{PASSWORD}", "B_WES_TOKEN": TOKEN,
                                "WESBOT_POLL_SECONDS": "0.3"})
    try:
        def leases() -> set[str] | None:
            try:
                with closing(sqlite3.connect(tmp_path / "wesbot.db")) as db:
                    names = {row[0] for row in db.execute("SELECT name FROM leases").fetchall()}
            except sqlite3.Error:
                return None
            return names if names == {"watcher:a", "watcher:b"} else None

        slack.wait_for(leases, timeout=20, what="a lease per server")
    finally:
        assert bot.stop() == 0, bot.log_text()
    assert "Traceback" not in (bot.final_log or "")


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
        out = run(["ask", "runs"], clean_env(), tmp_path)
        assert a.requests == [] and b.requests == []  # no guessing: neither server was asked
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "wesbot: several WES servers are configured (a, b): name one with --server NAME"


def test_ask_without_a_server_finds_the_run_in_the_run_lists_only(two: tuple[FakeWes, FakeWes],
                                                                   tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    out = run(["ask", "status", "run-on-b"], env_for(tmp_path), tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "run-on-b\tCOMPLETE\n"
    assert not any("/runs/run-on-b" in r.path for r in a.requests)  # a was only asked for its list
    out = run(["ask", "status", "nowhere"], env_for(tmp_path), tmp_path)
    assert out.returncode == 2
    assert out.stderr == ("wesbot: run nowhere is not in the recent runs of any server: name one with --server "
                          "NAME (a, b)\n")
    assert not any("/runs/nowhere" in r.path for r in (*a.requests, *b.requests))


def test_rows_of_a_server_no_longer_configured_are_kept_and_said(two: tuple[FakeWes, FakeWes],
                                                                   tmp_path: Path) -> None:
    a, b = two
    write_config(tmp_path, a, b)
    shutil.copy(Path(__file__).parent / "data" / "previous" / "v1.db", tmp_path / "wesbot.db")
    out = run(["ask", "servers"], env_for(tmp_path), tmp_path)
    assert out.returncode == 0, out.stderr
    held = [line for line in out.stdout.splitlines() if line.startswith("kept in the database")]
    assert held == ["kept in the database, no longer configured: (unnamed) at http://127.0.0.1:8080/ga4gh/wes/v1: "
                    "1 subscription, 1 channel watch, 1 cancel kept untouched, not watched, until a server of that "
                    "name and URL is configured again"]
