"""The SQLite store: created with its schema on first open, migrations safe to apply again."""

from __future__ import annotations

from pathlib import Path

from wesbot.store import migrations, open_db
from wesbot.store.db import record_wes_url


def test_first_open_creates_the_schema_and_reopening_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    db = open_db(path)
    assert "meta" in db.table_names()
    created = db.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()[0]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    again = open_db(path)
    migrations.apply(again)  # applying twice changes nothing
    assert again.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()[0] == created
    assert migrations.pending(again) == []


def test_a_change_of_wes_server_is_noticed() -> None:
    db = open_db(memory=True)
    assert record_wes_url(db, "http://a") is None
    assert record_wes_url(db, "http://a") is None
    assert record_wes_url(db, "http://b") == "http://a"


def test_two_processes_creating_the_database_at_once(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "new.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        barrier.wait()
        try:
            open_db(path).close()
        except BaseException as error:  # pragma: no cover - the failure this test guards against
            errors.append(error)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    db = open_db(path)
    assert migrations.pending(db) == [] and "cancels" in db.table_names()
