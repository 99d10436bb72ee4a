"""Writes ``v1.db``: a database as the single-server release (commit 0463a50) leaves it, with a row of every kind.

Run once with that release installed (``python tests/data/previous/make_db.py``); the file is committed and the
migration tests open a copy of it. Kept so that a reader sees exactly what the fixture holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wesbot.store.cancels import CancelStore
from wesbot.store.db import open_db, record_wes_url
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore

WES_URL = "http://127.0.0.1:8080/ga4gh/wes/v1"
NOW = 1_790_000_000.0


def main(path: Path) -> None:
    path.unlink(missing_ok=True)
    db = open_db(path)
    record_wes_url(db, WES_URL)
    db.close()
    store = WatchStore(path)
    subs = store.subscriptions
    live = subs.subscribe(run_id="run-live", channel_id="C1", user_id="U1", now=NOW, expires_at=NOW + 86400,
                          state="RUNNING", workflow="align.cwl", start_time="2026-09-21T10:00:00Z").subscription
    subs.subscribe(run_id="run-live", channel_id="C1", user_id="U2", now=NOW, expires_at=NOW + 86400,
                   state="RUNNING")
    subs.set_card(live.id, ts="1790000000.000100", version=2)
    ended = subs.subscribe(run_id="run-done", channel_id="C2", user_id="U1", now=NOW, expires_at=NOW + 86400,
                           state="RUNNING", workflow="call.wdl").subscription
    store.runs.record_terminal("run-done", state="COMPLETE", now=NOW + 60, exit_code=0, start_time=None,
                               end_time="2026-09-21T10:05:00Z", owed={ended.id: {"text": "run-done ended"}})
    store.outbox.notice_once("notice:example", channel_id="C2", payload={"text": "a notice"}, now=NOW)
    store.values.set("example", "kept")
    store.leases.acquire("watcher", "wesbot-previous", now=NOW, period=30)
    watches = WatchesStore(store)
    watches.add(channel_id="C3", kind="failed", tag_key="project", tag_value="x", user_id="U3", now=NOW)
    watches.record_sweep(changes=[("run-swept", "EXECUTOR_ERROR")], owed=[], now=NOW, complete=True, activate=True)
    cancels = CancelStore(store, WES_URL)
    cancels.claim(run_id="run-live", user_id="U1", channel_id="C1", state_before="RUNNING", now=NOW,
                  deadline=NOW + 600, response_url=None)
    cancels.audit(now=NOW, user_id="U2", channel_id="C1", run_id="run-done", state_before="COMPLETE",
                  outcome="already-finished")
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("v1.db"))
