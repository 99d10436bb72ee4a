"""`wesbot check` as an operator runs it (the real console script, against the fake WES and the fake Slack), and
the same checks when `wesbot serve` starts.

A read-only database is made the way SQLite itself defines one, so that it really refuses writes even to root
(who ignores file modes): byte 18 of the file header, the "file format write version", set above 2
(sqlite.org/fileformat.html: such a file "must be treated as read-only"). Every write fails with
SQLITE_READONLY, exactly as on a read-only mount, and no mount or privilege is needed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from sqlite_utils import Database

from tests.botproc import BotProcess, clean_env, run
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack, manifest_bot_scopes
from tests.fakes.fake_wes import FakeWes
from tests.fakes.spec import repo_root
from wesbot.check import MANIFEST_BOT_SCOPES
from wesbot.store import open_db
from wesbot.store.db import migrations
from wesbot.store.watch import WatchStore

PASSWORD = "pw-check-very-secret"


@pytest.fixture
def wes() -> Iterator[FakeWes]:
    """The fake WES with basic auth (alice and PASSWORD); it shadows conftest's open one."""
    with FakeWes(auth=("alice", PASSWORD)) as fake:
        yield fake
        assert fake.spec_violations == []


@pytest.fixture
def db(workdir: str) -> Path:
    """A database as `wesbot serve` leaves it: created, migrated, in WAL mode."""
    path = Path(workdir) / "wesbot.db"
    open_db(path).close()
    return path


def env_for(wes: FakeWes, slack: FakeSlack, db: Path, **extra: str) -> dict[str, str]:
    settings = {"WES_URL": wes.url, "WES_AUTH": f"alice:{PASSWORD}", "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "WESBOT_DB": str(db)}
    return clean_env(**{**settings, **extra})


def check(env: dict[str, str], cwd: Path | str, *args: str) -> tuple[int, list[str]]:
    out = run(["check", *args], env, Path(cwd))
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    assert out.stderr == "", out.stderr
    return out.returncode, out.stdout.splitlines()


def items(lines: list[str]) -> list[str]:
    return [line[5:].split(": ", 1)[0] for line in lines]


def failed(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL ")]


def make_read_only(path: Path) -> None:
    """SQLite's own read-only flag: a file-format write version above 2 in the header (see the module doc)."""
    with path.open("r+b") as file:
        file.seek(18)
        file.write(bytes([3]))


def expected_items(wes: FakeWes) -> list[str]:
    host = wes.root_url.removeprefix("http://")
    return ["configuration", f"WES {host} URL", f"WES {host} service-info", f"WES {host} credentials",
            "Slack auth.test", "Slack scopes", "Slack Socket Mode", "database", "database migrations",
            "database WAL", "watcher lease"]


def test_the_embedded_scopes_are_manifest_ymls_bot_scopes() -> None:
    manifest: dict[str, Any] = yaml.safe_load((repo_root() / "manifest.yml").read_text(encoding="utf-8"))
    assert list(MANIFEST_BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]
    assert manifest_bot_scopes() == MANIFEST_BOT_SCOPES  # and the fake Slack grants them by default


def test_all_ok_is_exit_0_with_one_line_per_item(wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    code, lines = check(env_for(wes, slack, db), db.parent)
    assert code == 0, lines
    assert items(lines) == expected_items(wes)
    assert all(line.startswith("ok   ") for line in lines), lines
    text = "\n".join(lines)
    assert "Fake WES 1.1.0" in text and "engines cwltool 3.1" in text and " ms" in text
    assert "team Fake Team (T0001)" in text and "UBOT" in text
    defined = len(migrations.pending(Database(memory=True)))
    assert f"all {defined} applied" in text and "journal mode wal" in text and "no watcher has held it yet" in text
    assert not slack.connections_opened  # apps.connections.open was asked, the WebSocket never opened
    assert slack.calls_to("apps.connections.open")[0]["token"] == APP_TOKEN


def _wrong_password(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    env["WES_AUTH"] = "alice:not-the-password"


def _wrong_path(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    env["WES_URL"] = wes.root_url


def _invalid_auth(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    slack.auth_error = "invalid_auth"


def _missing_scope(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    slack.scopes.remove("chat:write.public")


def _read_only_database(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    make_read_only(db)


def _app_token_refused(env: dict[str, str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    slack.connections_error = "invalid_auth"


@pytest.mark.parametrize(
    ("break_it", "item", "says"),
    [
        (_wrong_password, "credentials", ["WES rejected the credentials (401)", "check WES_AUTH"]),
        (_wrong_path, "service-info", ["answered 404", "WES_URL may be missing /ga4gh/wes/v1"]),
        (_invalid_auth, "Slack auth.test", ["Slack refused SLACK_BOT_TOKEN (invalid_auth)"]),
        (_missing_scope, "Slack scopes", ["lacks chat:write.public", "reinstall the app with the scopes in manifest"]),
        (_read_only_database, "database", ["cannot write its database", "read-only"]),
        (_app_token_refused, "Slack Socket Mode", ["Slack refused SLACK_APP_TOKEN (invalid_auth)"]),
    ],
    ids=["wrong-password", "wrong-path", "invalid-auth", "missing-scope", "read-only-database", "app-token"],
)
def test_each_broken_item_is_named_in_one_line_with_exit_1(
        break_it: Any, item: str, says: list[str], wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    env = env_for(wes, slack, db)
    break_it(env, wes, slack, db)
    code, lines = check(env, db.parent)
    assert code == 1, lines
    [line] = failed(lines)
    assert items([line])[0].endswith(item), line
    for words in says:
        assert words in line, line
    assert len(lines) == len(expected_items(wes)), lines  # the other items are still there, one line each


def test_a_database_not_created_yet_is_a_warning_and_is_not_created(wes: FakeWes, slack: FakeSlack,
                                                                      workdir: str) -> None:
    path = Path(workdir) / "new.db"
    code, lines = check(env_for(wes, slack, path), workdir)
    assert code == 0, lines
    assert f"warn database: {path} does not exist yet; it will be created at start-up" in lines
    assert not path.exists() and list(Path(workdir).iterdir()) == []


def test_a_database_path_that_is_a_folder_fails(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    code, lines = check(env_for(wes, slack, Path(workdir)), workdir)
    assert code == 1
    [line] = failed(lines)
    assert line.startswith("FAIL database:") and "is a folder" in line


def test_pending_migrations_are_reported_and_not_applied(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    path = Path(workdir) / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m004_create_channel_watches")
    old.close()
    code, lines = check(env_for(wes, slack, path), workdir)
    assert code == 0, lines
    [line] = [line for line in lines if "database migrations" in line]
    defined = len(migrations.pending(Database(memory=True)))
    assert line.startswith("warn ") and f"{defined - 3} of {defined} pending" in line
    assert "m004_create_channel_watches" in line
    assert "watcher lease: not read" in "\n".join(lines)  # its host and pid columns come with m005
    with sqlite3.connect(path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations")] == [
            "m001_create_meta", "m002_create_watch_tables", "m003_create_cancel_tables"]


def test_the_lease_holder_is_shown(wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    store = WatchStore(db)
    assert store.leases.acquire("watcher", "wesbot-holder1", now=time.time(), period=600)
    store.close()
    code, lines = check(env_for(wes, slack, db), db.parent)
    assert code == 0, lines
    [line] = [line for line in lines if line.startswith("ok   watcher lease:")]
    assert "held by wesbot-holder1 on this host, pid " in line and "for 10 min more" in line


def test_json_lists_every_item_with_its_status_detail_and_fix(wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    slack.scopes.remove("usergroups:read")
    code, _ = check(env_for(wes, slack, db), db.parent)
    out = run(["check", "--json"], env_for(wes, slack, db), db.parent)
    assert out.returncode == code == 1
    listed = json.loads(out.stdout)
    assert [entry["item"] for entry in listed] == expected_items(wes)
    assert all(set(entry) == {"item", "status", "detail", "fix"} for entry in listed)
    assert {entry["status"] for entry in listed} == {"ok", "fail"}
    [scopes] = [entry for entry in listed if entry["status"] == "fail"]
    assert scopes["item"] == "Slack scopes" and "usergroups:read" in scopes["detail"]
    assert "manifest.yml" in scopes["fix"]


def test_configuration_problems_are_one_line_each_and_exit_2(workdir: str) -> None:
    code, lines = check(clean_env(WES_AUTH="nocolon", SLACK_BOT_TOKEN="xoxp-wrong-kind"), workdir)
    assert code == 2
    assert all(line.startswith("FAIL configuration: ") for line in lines) and len(lines) >= 3
    assert any("WES_URL" in line for line in lines) and any("WES_AUTH" in line for line in lines)
    out = run(["check", "--json", "--http"], clean_env(), Path(workdir))
    assert out.returncode == 2 and {entry["status"] for entry in json.loads(out.stdout)} == {"fail"}


def test_no_secret_appears_in_any_output(workdir: str) -> None:
    bot, app, signing = "xoxb-check-bot-secret-1", "xapp-check-app-secret-2", "check-signing-secret-3"
    secrets = [bot, app, signing, PASSWORD]
    with FakeWes(auth=("alice", PASSWORD)) as wes, FakeSlack(bot_token=bot, app_token=app) as slack:
        path = Path(workdir) / "wesbot.db"
        open_db(path).close()
        env = env_for(wes, slack, path, SLACK_BOT_TOKEN=bot, SLACK_APP_TOKEN=app, SLACK_SIGNING_SECRET=signing)
        outputs = [run(["check"], env, Path(workdir)), run(["check", "--json"], env, Path(workdir))]
        # Servers that echo what they were sent: the secrets come back in their errors.
        wes.overrides["/runs"] = (500, {"msg": f"no user alice:{PASSWORD} {PASSWORD}", "status_code": 500},
                                  "application/json")
        slack.fail_next("auth.test", error=f"bad_token_{bot}", count=2)
        slack.connections_error = f"refused {app}"
        outputs += [run(["check"], env, Path(workdir)), run(["check", "--json"], env, Path(workdir))]
    assert [out.returncode for out in outputs] == [0, 0, 1, 1]
    text = "".join(out.stdout + out.stderr for out in outputs)
    assert "***" in text  # the echoed secrets were there, masked
    for secret in secrets:
        assert secret not in text


# -- `wesbot serve` runs the same checks -------------------------------------------------------------


def test_serve_stops_with_the_checks_line_when_slack_refuses_the_token(wes: FakeWes, workdir: str) -> None:
    path = Path(workdir) / "wesbot.db"
    with FakeSlack(auth_error="invalid_auth") as slack:
        out = run(["serve"], env_for(wes, slack, path), Path(workdir))
        assert slack.connections_opened == 0
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    [line] = [line for line in out.stderr.splitlines() if line.startswith("wesbot:")]
    assert line.startswith("wesbot: cannot start: Slack auth.test: Slack refused SLACK_BOT_TOKEN (invalid_auth)")
    assert not path.exists()  # the check ran before anything was opened


def test_serve_stops_on_a_read_only_database(wes: FakeWes, slack: FakeSlack, db: Path) -> None:
    make_read_only(db)
    out = run(["serve"], env_for(wes, slack, db), db.parent)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("wesbot:")]
    assert line.startswith("wesbot: cannot start: database: ") and "read-only" in line


def test_serve_logs_what_it_serves_and_warns_of_the_rest(slack: FakeSlack) -> None:
    def started(wes_url: str) -> str:
        bot = BotProcess(wes_url=wes_url, slack_api_url=slack.api_url, http=False)
        try:
            slack.wait_connected(timeout=20)
        finally:
            assert bot.stop() == 0, bot.log_text()
        slack.wait_disconnected()
        return bot.log_text()

    with FakeWes() as wes:
        log = started(wes.url)
        host = wes.root_url.removeprefix("http://")
    assert f"INFO wesbot.check: serving WES server {host}: Fake WES 1.1.0, WES API 1.1.0, engines cwltool 3.1" in log
    assert "serving Slack team Fake Team (T0001) as bot user wesbot (UBOT)" in log
    assert "WARNING" not in log
    # A WES server that is down is a warning: the bot starts anyway and says why lookups will fail.
    log = started("http://127.0.0.1:9/ga4gh/wes/v1")
    [warning] = [line for line in log.splitlines() if "WARNING" in line and "service-info" in line]
    assert "could not connect to the WES server at 127.0.0.1:9" in warning
