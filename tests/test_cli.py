"""The `wesbot` command line: help, configuration problems before anything connects, and `ask` on a fake WES."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botproc import clean_env, run
from tests.fakes.fake_wes import FakeWes, make_task
from wesbot.cli import main


@pytest.fixture(scope="module")
def wes() -> Iterator[FakeWes]:
    with FakeWes(auth=("alice", "pw-very-secret")) as fake:
        yield fake
        assert fake.spec_violations == []


def test_help_describes_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["serve", "--help"], ["ask", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("serve", "ask", "--http", "--port", "--host", "--json", "status RUN_ID", "tasks RUN_ID [failed]",
                 "SIGTERM", "/healthz"):
        assert word in out, word


def test_serve_reports_every_configuration_problem_before_connecting(tmp_path: Path) -> None:
    out = run(["serve"], clean_env(SLACK_BOT_TOKEN="xoxp-wrong-kind", WES_AUTH="nocolon"), tmp_path)
    assert out.returncode == 2
    lines = [line.strip() for line in out.stderr.splitlines() if line.strip().startswith("- ")]
    assert any(line.startswith("- WES_URL") for line in lines)
    assert any(line.startswith("- WES_AUTH") for line in lines)
    assert any(line.startswith("- SLACK_BOT_TOKEN") for line in lines)
    assert any(line.startswith("- SLACK_APP_TOKEN") for line in lines)
    assert "xoxp-wrong-kind" not in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "wesbot.db").exists()  # nothing was created before the settings were valid
    out = run(["serve", "--http"], clean_env(SLACK_BOT_TOKEN="xoxb-1", WES_URL="http://127.0.0.1:9/"), tmp_path)
    assert out.returncode == 2 and "SLACK_SIGNING_SECRET is not set" in out.stderr


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path, wes: FakeWes) -> None:
    wes.add_run("cli-env", "COMPLETE")
    (tmp_path / ".env").write_text(f"WES_URL={wes.url}\nWES_AUTH=alice:pw-very-secret\n")
    out = run(["ask", "status", "cli-env"], clean_env(), tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cli-env\tCOMPLETE"


def test_wrong_credentials_are_named_not_shown(tmp_path: Path, wes: FakeWes) -> None:
    out = run(["--log-level", "debug", "ask", "status", "x"],
              clean_env(WES_URL=wes.url, WES_AUTH="alice:wrong-secret-pw"), tmp_path)
    assert out.returncode == 1
    assert "WES rejected the credentials (401): check WES_AUTH" in out.stderr
    assert "wrong-secret-pw" not in out.stderr + out.stdout


def test_ask_json_and_tasks(tmp_path: Path, wes: FakeWes) -> None:
    wes.add_run("cli-tasks", "EXECUTOR_ERROR", exit_code=1,
                task_logs=[make_task("t1", name="align", exit_code=3), make_task("t2", name="sort", exit_code=0)])
    env = clean_env(WES_URL=wes.url, WES_AUTH="alice:pw-very-secret")
    out = run(["ask", "--json", "tasks", "cli-tasks", "failed"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["kind"] == "tasks" and [t["name"] for t in data["tasks"]] == ["align"]
    out = run(["ask", "task", "cli-tasks", "t1"], env, tmp_path)
    assert out.returncode == 0 and "failed (exit 3)" in out.stdout


def test_ask_on_thousands_of_runs_from_a_server_that_ignores_paging(tmp_path: Path) -> None:
    with FakeWes(validate=False) as fake:
        fake.ignore_paging = True
        fake.many_runs(5000, states=("COMPLETE", "COMPLETE", "COMPLETE", "EXECUTOR_ERROR"))
        out = run(["ask", "--json", "runs", "failed"], clean_env(WES_URL=fake.url), tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["runs"]) == 25 and all(r["state"] == "EXECUTOR_ERROR" for r in data["runs"])
    assert data["next_page"] == {"page_token": None, "skip": 100}


def test_audit_prints_the_trail(tmp_path: Path) -> None:
    from wesbot.store import open_db
    from wesbot.store.cancels import CancelStore
    from wesbot.store.watch import WatchStore

    db_path = tmp_path / "wesbot.db"
    open_db(db_path).close()
    wes_url = "http://127.0.0.1:9/ga4gh/wes/v1"
    cancels = CancelStore(WatchStore(db_path, server="default", url=wes_url), wes_url)
    cancels.audit(now=1_800_000_000, user_id="U1", channel_id="C1", run_id="r1", state_before="RUNNING",
                  outcome="requested")
    cancels.audit(now=1_800_000_060, user_id="U2", channel_id="C1", run_id="r2", state_before="QUEUED",
                  outcome="wes-error", wes_status=409, detail="WES server at h answered 409: busy")
    env = clean_env(WES_URL="http://127.0.0.1:9/ga4gh/wes/v1", WESBOT_DB=str(db_path))
    out = run(["audit"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.strip().splitlines()
    assert header.split() == ["WHEN", "USER", "RUN", "BEFORE", "OUTCOME", "DETAIL"]
    assert len(lines) == 2 and "U2" in lines[0] and "wes-error (409)" in lines[0] and "answered 409" in lines[0]
    assert "U1" in lines[1] and "RUNNING" in lines[1] and "requested" in lines[1]
    data = json.loads(run(["audit", "--json", "r1"], env, tmp_path).stdout)
    assert [row["outcome"] for row in data["rows"]] == ["requested"]


def test_audit_needs_only_the_database_and_names_each_server(tmp_path: Path) -> None:
    from wesbot.store.cancels import CancelStore
    from wesbot.store.watch import WatchStore

    db_path = tmp_path / "wesbot.db"
    for name, when in (("prod", 1_800_000_000), ("staging", 1_800_000_060)):
        url = f"https://{name}.example.org/ga4gh/wes/v1"
        CancelStore(WatchStore(db_path, server=name, url=url), url).audit(
            now=when, user_id="U1", channel_id="C1", run_id=f"run-{name}", state_before="RUNNING",
            outcome="requested")
    out = run(["audit"], clean_env(WESBOT_DB=str(db_path)), tmp_path)  # no WES_URL, no Slack token
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.strip().splitlines()
    assert header.split()[:3] == ["WHEN", "USER", "SERVER"]
    assert ["staging" in lines[0] and "run-staging" in lines[0], "prod" in lines[1] and "run-prod" in lines[1]] \
        == [True, True]
    missing = run(["audit"], clean_env(WESBOT_DB=str(tmp_path / "none.db")), tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("wesbot: there is no database at ")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["--log-level", "debug", "ask", "status", "r1"], "debug"),
        (["ask", "status", "r1", "--log-level", "debug"], "debug"),
        (["ask", "--log-level", "error", "status", "r1"], "error"),
        (["serve", "--log-level", "warning"], "warning"),
        (["--log-level", "info", "watch"], "info"),
        (["audit"], None),
    ],
)
def test_log_level_goes_before_or_after_the_subcommand(argv: list[str], level: str | None) -> None:
    from wesbot.cli import build_parser

    assert build_parser().parse_args(argv).log_level == level
