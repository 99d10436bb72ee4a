"""One database, several WES servers: each store is scoped to one server and sees its rows only, since the same
run id on two servers is two runs. Which server a (name, URL) is (claim_server), and each channel's default."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from wesbot.store import open_db
from wesbot.store.cancels import Cancel, CancelStore
from wesbot.store.outbox import enqueue
from wesbot.store.servers import ChannelServers, HeldServer, claim_server, held_servers
from wesbot.store.watch import WatchStore
from wesbot.store.watches import Owed, WatchesStore

A_URL, B_URL = "http://a.test/ga4gh/wes/v1", "http://b.test/ga4gh/wes/v1"
NOW = 1_000_000.0
LATER = NOW + 3600


def on_one_file(tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    return (WatchStore(tmp_path / "w.db", server="a", url=A_URL),
            WatchStore(tmp_path / "w.db", server="b", url=B_URL))


def scoped_file(tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    a = WatchStore(tmp_path / "w.db", server="a", url=A_URL)
    return a, a.scoped("b", B_URL)


def scoped_memory(tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    a = WatchStore(memory=True, server="a", url=A_URL)
    return a, a.scoped("b", B_URL)


@pytest.fixture(params=[on_one_file, scoped_file, scoped_memory], ids=["two stores", "scoped file", "scoped memory"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    """Server a's store and server b's, on one database."""
    make: Callable[[Path], tuple[WatchStore, WatchStore]] = request.param
    return make(tmp_path)


def subscribe(store: WatchStore, run_id: str = "r1", channel_id: str = "C1", user_id: str = "U1") -> int:
    return store.subscriptions.subscribe(run_id=run_id, channel_id=channel_id, user_id=user_id, now=NOW,
                                         expires_at=NOW + 86400, state="RUNNING").subscription.id


def test_each_store_names_its_server_and_gets_its_own_id(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    assert (a.server, a.url, b.server, b.url) == ("a", A_URL, "b", B_URL)
    assert {a.server_id, b.server_id} == {1, 2}
    assert servers(a.db) == servers(b.db) == [(1, "a", A_URL), (2, "b", B_URL)]  # one database
    assert a.scoped("a", A_URL + "/").server_id == a.server_id  # claiming again: the same server


def test_the_same_run_on_two_servers_is_two_subscriptions(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    first, second = subscribe(a), subscribe(b, user_id="U2")
    assert first != second
    assert [(s.id, s.users) for s in a.subscriptions.of_run("r1")] == [(first, ("U1",))]
    assert [(s.id, s.users) for s in b.subscriptions.of_channel("C1")] == [(second, ("U2",))]
    assert a.subscriptions.unsubscribe(run_id="r1", channel_id="C1", user_id="U1") == "subscription_removed"
    assert [s.id for s in b.subscriptions.of_run("r1")] == [second]
    assert a.subscriptions.card_candidates() == [] and b.subscriptions.card_candidates() == [(second, "C1")]


def test_due_runs_and_their_states_are_per_server(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    subscribe(a)
    assert [r.run_id for r in a.runs.due(LATER)] == ["r1"] and b.runs.due(LATER) == []
    subscribe(b)
    a.runs.record_states([("r1", "QUEUED")], now=NOW, next_poll_at=LATER + 60)
    assert [r.run_id for r in b.runs.due(LATER)] == ["r1"] and a.runs.due(LATER) == []
    [on_b] = b.subscriptions.of_run("r1")
    assert on_b.state == "RUNNING" and a.subscriptions.of_run("r1")[0].state == "QUEUED"
    b.runs.record_failure("r1", now=NOW, reason="timeout", next_poll_at=LATER)
    assert a.runs.failing_since("r1") is None and b.runs.failing_since("r1") == NOW
    assert (a.runs.next_due(), b.runs.next_due()) == (LATER + 60, LATER)


def test_a_terminal_state_ends_only_its_servers_subscription(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    on_a, on_b = subscribe(a), subscribe(b)
    queued = a.runs.record_terminal("r1", state="COMPLETE", now=NOW, exit_code=0, start_time=None, end_time=None,
                                    owed={on_a: {"text": "done"}, on_b: {"text": "not a's"}})
    assert len(queued) == 1  # b's subscription is not a's to end
    assert a.subscriptions.get(on_a).status == "ended" and b.subscriptions.get(on_b).status == "active"
    assert [row.dedupe_key for row in a.outbox.deliverable(LATER)] == ["end:r1:COMPLETE:C1"]
    assert b.outbox.deliverable(LATER) == []


def test_dedupe_keys_and_owed_messages_are_per_server(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    first = a.outbox.notice_once("notice:k", channel_id="C1", payload={"text": "a"}, now=NOW)
    second = b.outbox.notice_once("notice:k", channel_id="C1", payload={"text": "b"}, now=NOW)
    assert first is not None and second is not None and first != second
    assert a.outbox.notice_once("notice:k", channel_id="C1", payload={"text": "again"}, now=NOW) is None
    with b.transaction() as db:
        assert enqueue(db, b.server_id, key="notice:k", kind="notice", channel_id="C1", payload={}, now=NOW) is None
    assert [(r.id, r.payload) for r in a.outbox.deliverable(LATER)] == [(first, {"text": "a"})]
    assert [(r.id, r.payload) for r in b.outbox.deliverable(LATER)] == [(second, {"text": "b"})]
    a.outbox.mark_sent(first, ts="1.1", now=NOW)
    assert (a.outbox.pending_count(), b.outbox.pending_count()) == (0, 1)
    assert a.outbox.pending_channels(LATER) == set() and b.outbox.pending_channels(LATER) == {"C1"}
    assert (a.outbox.oldest_pending(), b.outbox.oldest_pending()) == (None, NOW)


def test_failing_a_channel_fails_only_this_servers_rows(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    subscribe(a), subscribe(b)
    a.outbox.notice_once("notice:k", channel_id="C1", payload={}, now=NOW)
    b.outbox.notice_once("notice:k", channel_id="C1", payload={}, now=NOW)
    assert len(a.subscriptions.fail_channel("C1", error="channel_not_found", now=NOW)) == 1
    assert a.subscriptions.of_channel("C1") == [] and len(b.subscriptions.of_channel("C1")) == 1
    assert (a.outbox.pending_count(), b.outbox.pending_count()) == (0, 1)


def test_values_are_per_server(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = two
    a.values.set("auth_refused_since", "1")
    assert (a.values.get("auth_refused_since"), b.values.get("auth_refused_since")) == ("1", None)
    b.values.set("auth_refused_since", "2")
    a.values.set("auth_refused_since", None)
    assert (a.values.get("auth_refused_since"), b.values.get("auth_refused_since")) == (None, "2")


def test_channel_watches_and_swept_states_are_per_server(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = WatchesStore(two[0]), WatchesStore(two[1])
    kind = {"channel_id": "C1", "kind": "failed", "tag_key": "", "tag_value": ""}
    (on_a, created_a), (on_b, created_b) = (w.add(**kind, user_id="U1", now=NOW) for w in (a, b))
    assert created_a and created_b and on_a.id != on_b.id
    assert a.record_sweep(changes=[("r1", "EXECUTOR_ERROR")], complete=True, activate=True, now=NOW,
                          owed=[Owed(key="failed:r1:C1", channel_id="C1", payload={"text": "r1 failed"})]) == 1
    assert [w.active_from for w in a.active()] == [NOW] and [w.active_from for w in b.active()] == [None]
    assert a.swept_states() == {"r1": "EXECUTOR_ERROR"} and b.swept_states() == {}
    assert (two[0].values.get("sweep_complete"), two[1].values.get("sweep_complete")) == ("1", None)
    assert a.remove(**kind) and a.of_channel("C1") == [] and [w.id for w in b.of_channel("C1")] == [on_b.id]
    assert not a.any_active() and b.any_active()
    subscribe(two[1])
    assert a.subscribed_channels(["r1"]) == set() and b.subscribed_channels(["r1"]) == {("r1", "C1")}


def test_a_cancel_of_the_same_run_id_is_won_on_each_server(two: tuple[WatchStore, WatchStore]) -> None:
    a, b = CancelStore(two[0], A_URL), CancelStore(two[1], B_URL)

    def claim(cancels: CancelStore) -> Cancel | None:
        return cancels.claim(run_id="r1", user_id="U1", channel_id="C1", state_before="RUNNING", now=NOW,
                             deadline=NOW + 600, response_url=None)

    assert claim(a) is None and claim(b) is None  # both win: two runs
    assert claim(a) is not None  # a second click on a's is a's cancel in flight
    a.release("r1")
    assert a.get("r1") is None and b.get("r1") is not None
    a.audit(now=NOW + 1, user_id="U2", channel_id="C1", run_id="r1", state_before="RUNNING", outcome="denied")
    assert [(r.server, r.wes_url, r.outcome) for r in a.recent_audit("r1")] == [
        ("a", A_URL, "denied"), ("a", A_URL, "sending")]
    assert [(r.server, r.wes_url, r.outcome) for r in b.recent_audit(channel_id="C1")] == [("b", B_URL, "sending")]
    b.requested("r1", audit_id=0, now=NOW, message_ts=None, message_error=None)
    assert (a.following(), b.following()) == (0, 1)
    assert a.to_follow(LATER) == [] and [c.run_id for c in b.to_follow(LATER)] == ["r1"]


def servers(db: Database) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute("SELECT id, name, url FROM servers ORDER BY id").fetchall()]


@pytest.mark.parametrize(("before", "claim", "expected_id", "after"), [
    pytest.param([], ("a", "http://a"), 1, [(1, "a", "http://a")], id="first claim: a new row"),
    pytest.param([(1, "a", "http://a")], ("a", "http://a/"), 1, [(1, "a", "http://a")],
                 id="the same name and URL (trailing / stripped)"),
    pytest.param([(1, None, "http://a")], ("a", "http://a"), 1, [(1, "a", "http://a")],
                 id="the legacy server with this URL takes the name"),
    pytest.param([(1, None, "")], ("a", "http://a"), 1, [(1, "a", "http://a")],
                 id="a legacy server that never recorded its URL belongs to the first claim"),
    pytest.param([(1, None, "http://a")], ("b", "http://b"), 2, [(1, None, "http://a"), (2, "b", "http://b")],
                 id="the legacy server of another URL is left alone"),
    pytest.param([(1, "a", "http://a")], ("a", "http://moved"), 2, [(1, "a", "http://a"), (2, "a", "http://moved")],
                 id="a name pointed at another URL is another server"),
    pytest.param([(1, "a", "http://a"), (2, "a", "http://moved")], ("a", "http://a"), 1,
                 [(1, "a", "http://a"), (2, "a", "http://moved")], id="the old URL configured again resumes"),
    pytest.param([(1, "a", "http://a"), (2, None, "")], ("a", "http://a"), 1, [(1, "a", "http://a"), (2, None, "")],
                 id="an exact row wins over the legacy one"),
    pytest.param([(1, "a", "http://a")], ("b", "http://a"), 2, [(1, "a", "http://a"), (2, "b", "http://a")],
                 id="another name on the same URL is another server"),
])
def test_claim_server(before: list[tuple[Any, ...]], claim: tuple[str, str], expected_id: int,
                      after: list[tuple[Any, ...]]) -> None:
    db = open_db(memory=True)
    for row in before:
        db.execute("INSERT INTO servers (id, name, url, created_at) VALUES (?, ?, ?, 0)", list(row))
    with db.atomic():
        assert claim_server(db, *claim, now=NOW) == expected_id
        assert claim_server(db, *claim, now=NOW) == expected_id  # claiming twice is the same
    assert servers(db) == after


def test_held_servers_are_the_unconfigured_ones_with_live_rows(tmp_path: Path) -> None:
    a, b = scoped_file(tmp_path)
    c = a.scoped("c", "http://c.test")
    subscribe(a), subscribe(b)
    WatchesStore(b).add(channel_id="C1", kind="failed", tag_key="", tag_value="", user_id="U1", now=NOW)
    CancelStore(c, c.url).claim(run_id="r9", user_id="U1", channel_id=None, state_before=None, now=NOW,
                                deadline=NOW + 60, response_url=None)
    assert held_servers(a.db, [("a", A_URL + "/")]) == [
        HeldServer(name="b", url=B_URL, subscriptions=1, watches=1, cancels=0),
        HeldServer(name="c", url="http://c.test", subscriptions=0, watches=0, cancels=1)]
    b.subscriptions.unsubscribe(run_id="r1", channel_id="C1", user_id="U1")
    WatchesStore(b).remove(channel_id="C1", kind="failed", tag_key="", tag_value="")
    assert held_servers(a.db, [("a", A_URL), ("c", "http://c.test")]) == []


def test_a_channels_default_server(store: WatchStore) -> None:
    channels = ChannelServers(store)
    assert channels.get("C1") is None
    channels.set("C1", "prod", "U1", NOW)
    channels.set("C2", "lab", "U1", NOW)
    channels.set("C1", "lab", "U2", LATER)
    assert (channels.get("C1"), channels.get("C2")) == ("lab", "lab")
    channels.clear("C1")
    assert (channels.get("C1"), channels.get("C2")) == (None, "lab")
    assert ChannelServers(store.scoped("other", "http://other")).get("C2") == "lab"  # not scoped to a server
