"""Two servers' watchers on one database, against a fake clock: each sees only its own runs, keeps its own
backoff and lease, names its server in every message and binds its buttons to it; one server being down
changes nothing for the other."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, cycle, make, subscribe
from wesbot.store.watch import WatchStore
from wesbot.wes.errors import WesUnreachable


def two_servers(tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    lab = WatchStore(tmp_path / "w.db", server="lab", url="http://lab.test/ga4gh/wes/v1")
    return lab, lab.scoped("cloud", "http://cloud.test/ga4gh/wes/v1")


def test_each_watcher_polls_its_own_runs_and_names_its_server(tmp_path: Path, clock: FakeClock,
                                                               poster: RecordingPoster) -> None:
    lab_store, cloud_store = two_servers(tmp_path)
    lab_wes = StubWes(states={"same": "RUNNING"}, host="lab.test")
    cloud_wes = StubWes(states={"same": "RUNNING"}, host="cloud.test")
    lab = make(lab_store, lab_wes, poster, clock, server="lab")
    cloud = make(cloud_store, cloud_wes, poster, clock, server="cloud")
    subscribe(lab_store, clock, "same", channel="C1")
    subscribe(cloud_store, clock, "same", channel="C1")  # the same id on another server: another run
    cycle(lab, clock, 0)
    cycle(cloud, clock, 31)
    cards = [p for p in poster.posts if p.method == "post"]
    assert sorted(json.dumps(p.message).count("lab (wes.test)") > 0 for p in cards) == [False, True]
    cloud_wes.states["same"] = "EXECUTOR_ERROR"
    cycle(lab, clock, 0)
    cycle(cloud, clock, 2)
    cycle(cloud, clock, 2)
    [note] = poster.notifications()
    text = json.dumps(note.message)
    assert "cloud (wes.test)" in text and "lab (" not in text
    buttons = [e["value"] for b in note.message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons and all(value.endswith("--server=cloud") for value in buttons)
    assert lab_store.subscriptions.of_run("same")[0].status == "active"  # lab's run goes on
    assert cloud_store.subscriptions.of_run("same", active_only=False)[0].status == "ended"
    assert lab_wes.status_calls.count("same") >= 2 and cloud_wes.run_calls == ["same"]


def test_a_server_that_is_down_backs_off_alone(tmp_path: Path, clock: FakeClock, poster: RecordingPoster) -> None:
    lab_store, cloud_store = two_servers(tmp_path)
    lab_wes = StubWes(states={"l1": "RUNNING"}, host="lab.test",
                      errors={"l1": WesUnreachable("WES at lab.test did not answer")})
    cloud_wes = StubWes(states={"c1": "RUNNING"}, host="cloud.test")
    lab = make(lab_store, lab_wes, poster, clock, server="lab")
    cloud = make(cloud_store, cloud_wes, poster, clock, server="cloud")
    subscribe(lab_store, clock, "l1")
    subscribe(cloud_store, clock, "c1")
    for _ in range(6):  # lab fails every poll and backs off; cloud is polled every period
        cycle(lab, clock, 0)
        cycle(cloud, clock, 30)
    [lab_run] = lab_store.runs.due(clock.now() + 10_000)
    assert lab_run.failures >= 3
    assert cloud_store.runs.due(clock.now() + 10_000)[0].failures == 0
    assert len(cloud_wes.status_calls) >= 6 > len(lab_wes.status_calls)
    # Each holds its own lease: both watchers run in one process, neither waits for the other.
    assert lab_store.leases.holder("watcher:lab") is not None
    assert cloud_store.leases.holder("watcher:cloud") is not None
    cloud_wes.states["c1"] = "COMPLETE"
    cycle(cloud, clock, 2)
    cycle(cloud, clock, 2)
    assert [json.dumps(n.message).count("c1") > 0 for n in poster.notifications()] == [True]
