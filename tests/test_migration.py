"""m006 on a database the single-server release wrote (tests/data/previous/v1.db, see make_db.py there): every
row and every id is kept, on one legacy server that the first server configured with its URL claims; a server
configured with another URL sees none of it, and is told what waits there."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from wesbot.store import migrations, open_db
from wesbot.store.cancels import CancelStore
from wesbot.store.outbox import enqueue
from wesbot.store.servers import HeldServer, held_servers
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore

PREVIOUS = Path(__file__).parent / "data" / "previous" / "v1.db"
URL = "http://127.0.0.1:8080/ga4gh/wes/v1"  # what make_db.py recorded
OTHER = "http://127.0.0.1:9090/ga4gh/wes/v1"
NOW = 1_790_000_000.0
LATER = NOW + 10 * 86400
# The tables whose rows now carry a server_id; the others are as they were.
KEYED = ("subscriptions", "watched_runs", "outbox", "notices", "audit", "cancels", "channel_watches", "swept_runs")
UNKEYED = ("meta", "subscribers", "leases")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the previous release's database (the committed file itself is never opened for writing)."""
    path = tmp_path / "v1.db"
    shutil.copy(PREVIOUS, path)
    return path


def rows(path: Path, table: str) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]


def servers(db: Database) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute("SELECT id, name, url FROM servers ORDER BY id").fetchall()]


ADDED_COLUMNS = {"watched_runs": ("tasks", "tasks_read_at"), "channel_watches": ("after_seconds",),
                 "swept_runs": ("first_seen",), "subscriptions": ("deadline_after", "deadline_told")}


def test_every_row_is_kept_with_its_id_on_server_1(copy: Path) -> None:
    before = {table: rows(copy, table) for table in KEYED + UNKEYED}
    store = WatchStore(copy, server="default", url=URL)
    assert store.server_id == 1
    assert servers(store.db) == [(1, "default", URL)]
    for table in KEYED:
        after = rows(copy, table)
        assert {row.pop("server_id") for row in after} <= {1}, table
        # Columns added since (a running run's task progress) start empty.
        added = {key: None for key in ADDED_COLUMNS.get(table, ())}
        assert after == [{**row, **added} for row in before[table]], table
    for table in UNKEYED:
        assert rows(copy, table) == before[table], table


def test_the_repositories_read_the_old_rows_once_the_server_is_claimed(copy: Path) -> None:
    store = WatchStore(copy, server="default", url=URL)
    [live] = store.subscriptions.of_channel("C1")
    assert (live.id, live.run_id, live.users, live.card_ts, live.state) == (
        1, "run-live", ("U1", "U2"), "1790000000.000100", "RUNNING")
    [done] = store.subscriptions.of_run("run-done", active_only=False)
    assert (done.id, done.status, done.state, done.users) == (2, "ended", "COMPLETE", ("U1",))
    assert [run.run_id for run in store.runs.due(LATER)] == ["run-live"]
    assert store.values.get("example") == "kept"
    watches = WatchesStore(store)
    assert [(w.id, w.channel_id, w.tag_key, w.tag_value) for w in watches.active()] == [(1, "C3", "project", "x")]
    assert watches.swept_states() == {"run-swept": "EXECUTOR_ERROR"}
    cancels = CancelStore(store, URL)
    cancel = cancels.get("run-live")
    assert cancel is not None and (cancel.status, cancel.audit_id) == ("requesting", 1)
    assert [(a.id, a.server, a.outcome) for a in cancels.recent_audit()] == [
        (2, "default", "already-finished"), (1, "default", "sending")]
    assert store.leases.holder("watcher") == ("wesbot-previous", NOW + 30)


def test_owed_messages_are_neither_lost_nor_duplicated(copy: Path) -> None:
    store = WatchStore(copy, server="default", url=URL)
    owed = store.outbox.deliverable(LATER)
    assert [(row.id, row.dedupe_key, row.thread_ts) for row in owed] == [
        (1, "end:run-done:COMPLETE:C2", None), (2, "notice:example", None)]
    store.outbox.mark_sent(1, ts="1790000100.000200", now=LATER)
    assert store.outbox.notice_once("notice:example", channel_id="C2", payload={"text": "again"}, now=LATER) is None
    with store.transaction() as db:
        again = enqueue(db, store.server_id, key="end:run-done:COMPLETE:C2", kind="notification", channel_id="C2",
                        payload={"text": "again"}, now=LATER)
    assert again is None
    reopened = WatchStore(copy, server="default", url=URL)  # a restart
    assert [row.id for row in reopened.outbox.deliverable(LATER)] == [2]
    assert [(r["id"], r["status"]) for r in rows(copy, "outbox")] == [(1, "sent"), (2, "pending")]


def assert_sees_nothing(store: WatchStore) -> None:
    assert store.subscriptions.of_channel("C1") == [] and store.subscriptions.of_run("run-live") == []
    assert store.runs.due(LATER) == [] and store.runs.watched_count() == 0
    assert store.outbox.deliverable(LATER) == [] and store.outbox.pending_count() == 0
    assert store.values.get("example") is None
    watches = WatchesStore(store)
    assert watches.active() == [] and watches.swept_states() == {}
    cancels = CancelStore(store, store.url)
    assert cancels.get("run-live") is None and cancels.recent_audit() == []


def test_another_url_gets_a_new_server_that_sees_none_of_the_old_rows(copy: Path) -> None:
    elsewhere = WatchStore(copy, server="default", url=OTHER)
    assert elsewhere.server_id == 2
    assert_sees_nothing(elsewhere)
    assert held_servers(elsewhere.db, [("default", OTHER)]) == [
        HeldServer(name=None, url=URL, subscriptions=1, watches=1, cancels=1)]
    back = WatchStore(copy, server="default", url=URL + "/")  # configured again: a trailing / is the same URL
    assert back.server_id == 1
    assert [s.id for s in back.subscriptions.of_channel("C1")] == [1]
    assert held_servers(back.db, [("default", URL)]) == []  # server 2 has nothing live: not listed
    assert servers(back.db) == [(1, "default", URL), (2, "default", OTHER)]


def test_a_server_moved_to_another_url_leaves_its_rows_until_it_comes_back(copy: Path) -> None:
    assert WatchStore(copy, server="default", url=URL).server_id == 1
    moved = WatchStore(copy, server="default", url=OTHER)
    assert moved.server_id == 2
    assert_sees_nothing(moved)
    assert held_servers(moved.db, [("default", OTHER)]) == [
        HeldServer(name="default", url=URL, subscriptions=1, watches=1, cancels=1)]
    assert [run.run_id for run in WatchStore(copy, server="default", url=URL).runs.due(LATER)] == ["run-live"]


@pytest.mark.parametrize(("old_rows", "expected"), [
    pytest.param([], [], id="nothing: no legacy server"),
    pytest.param(["INSERT INTO meta VALUES ('wes_url', 'http://wes.test/')"], [(1, None, "http://wes.test")],
                 id="a recorded URL, its / stripped"),
    pytest.param(["INSERT INTO notices VALUES ('k', 'v')"], [(1, None, "")], id="rows but no URL"),
    pytest.param(["INSERT INTO leases VALUES ('watcher', 'w', 0, NULL, NULL)"], [],
                 id="a lease is not a row of a server"),
])
def test_which_old_databases_get_a_legacy_server(tmp_path: Path, old_rows: list[str],
                                                 expected: list[tuple[Any, ...]]) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m006_key_rows_by_server")
    for sql in old_rows:
        old.execute(sql)
    old.conn.commit()
    old.close()
    assert servers(open_db(path)) == expected


def test_a_fresh_database_has_no_servers_until_one_is_claimed(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    assert servers(open_db(path)) == []
    store = WatchStore(path, server="lab", url="http://lab/wes/")
    assert store.server_id == 1 and servers(store.db) == [(1, "lab", "http://lab/wes")]


def schema(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_migrating_twice_is_a_no_op(copy: Path) -> None:
    open_db(copy).close()
    first = schema(copy), {table: rows(copy, table) for table in KEYED + ("servers", "_sqlite_migrations")}
    db = open_db(copy)
    migrations.apply(db)
    assert migrations.pending(db) == []
    db.close()
    assert (schema(copy), {table: rows(copy, table) for table in KEYED + ("servers", "_sqlite_migrations")}) == first
    applied = [r["name"] for r in rows(copy, "_sqlite_migrations")]
    assert "m006_key_rows_by_server" in applied and applied == [
        row[0] for row in open_db(memory=True).execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
