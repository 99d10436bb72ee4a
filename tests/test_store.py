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
