"""Cancelling: permissions, click-time checks, exactly one cancel per run, WES errors, the audit trail."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.fakes.cancelling import NOW, StubWes
from wesbot.cancel import Cancelers, confirm, follow, parse_cancelers, prompt
from wesbot.slack.cards import cancel_outcome
from wesbot.store.cancels import CancelStore
from wesbot.store.watch import WatchStore
from wesbot.wes.errors import NotFound, WesAuthError, WesHTTPError, WesProtocolError, WesUnreachable
from wesbot.wes.models import RunStatus, parse_state


@pytest.fixture
def store(tmp_path: Path) -> CancelStore:
    return CancelStore(WatchStore(tmp_path / "w.db"), "http://wes.test/ga4gh/wes/v1")


def click(wes: StubWes, store: CancelStore, user: str = "U1", cancelers: Cancelers | None = None,
          announce_error: str | None = None, now: float = NOW):  # type: ignore[no-untyped-def]
    announced: list[str] = []

    def announce(before: str) -> tuple[str | None, str | None]:
        announced.append(before)
        return (None, announce_error) if announce_error else ("1700000000.000100", None)

    view = confirm(wes, run_id="r1", user_id=user, channel_id="C1", cancelers=cancelers or Cancelers(()),
                   store=store, now=now, timeout=600, response_url="http://127.0.0.1:9/respond", announce=announce)
    return view, announced


def test_cancelers_setting() -> None:
    assert parse_cancelers(" U1 , S2,W3 ") == ("U1", "S2", "W3")
    assert parse_cancelers("") == ()
    with pytest.raises(ValueError, match="'bob'"):
        parse_cancelers("U1,bob")


def test_groups_are_resolved_and_cached() -> None:
    calls: list[str] = []
    clock = [0.0]

    def resolve(group: str) -> list[str]:
        calls.append(group)
        return ["U7"]

    cancelers = Cancelers(("U1", "S9"), resolve, ttl=300, clock=lambda: clock[0])
    assert cancelers.allowed("U1") and cancelers.allowed("U7") and not cancelers.allowed("U8")
    assert cancelers.allowed("U7") and calls == ["S9"]  # cached
    clock[0] = 301
    cancelers.allowed("U7")
    assert calls == ["S9", "S9"]
    assert cancelers.describe() == "<@U1>, <!subteam^S9>"
    assert Cancelers(()).describe().startswith("anyone")


def test_a_group_that_cannot_be_resolved_refuses_its_members() -> None:
    def broken(group: str) -> list[str]:
        raise RuntimeError("missing_scope")

    assert not Cancelers(("S9",), broken).allowed("U7")


def test_the_prompt_shows_the_run_and_who_may(store: CancelStore) -> None:
    view = prompt(StubWes(), run_id="r1", user_id="U1", channel_id="C1", cancelers=Cancelers(("U1",)), store=store,
                  now=NOW)
    assert view.stage == "prompt" and view.workflow == "a.cwl" and view.who_may == "<@U1>"
    assert view.running_for and "so far" in view.running_for
    ended = prompt(StubWes(state="COMPLETE"), run_id="r1", user_id="U1", channel_id="C1", cancelers=Cancelers(()),
                   store=store, now=NOW)
    assert ended.stage == "already-finished"


def test_a_click_cancels_once_and_is_audited(store: CancelStore) -> None:
    wes = StubWes()
    view, announced = click(wes, store)
    assert view.stage == "requested" and wes.cancel_calls == ["r1"] and announced == ["RUNNING"]
    [row] = store.recent_audit("r1")
    assert (row.user_id, row.state_before, row.outcome, row.channel_id) == ("U1", "RUNNING", "requested", "C1")
    again, _ = click(wes, store, user="U2", now=NOW + 5)
    assert again.stage == "already-requested" and again.by_user == "U1" and again.at == NOW
    assert wes.cancel_calls == ["r1"]
    assert [r.outcome for r in store.recent_audit("r1")] == ["already-requested", "requested"]


def test_two_people_clicking_at_the_same_moment_send_one_cancel(store: CancelStore, tmp_path: Path) -> None:
    wes = StubWes(slow_cancel=threading.Event())
    results: list[str] = []
    barrier = threading.Barrier(2)

    def one(user: str) -> None:
        barrier.wait()
        view, _ = click(wes, CancelStore(WatchStore(tmp_path / "w.db"), "http://wes.test"), user=user)
        results.append(view.stage)

    threads = [threading.Thread(target=one, args=(u,)) for u in ("U1", "U2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == ["already-requested", "requested"]
    assert wes.cancel_calls == ["r1"]


def test_a_user_who_may_not_cancel_sends_nothing(store: CancelStore) -> None:
    wes = StubWes()
    view, announced = click(wes, store, user="U5", cancelers=Cancelers(("U1",)))
    assert view.stage == "denied" and view.who_may == "<@U1>"
    assert wes.cancel_calls == [] and announced == []
    assert store.recent_audit()[0].outcome == "denied"


def test_a_run_that_ended_meanwhile_is_not_cancelled(store: CancelStore) -> None:
    wes = StubWes(state="EXECUTOR_ERROR")
    view, _ = click(wes, store, now=NOW + 6 * 3600)  # a confirmation hours old acts on the current state
    assert view.stage == "already-finished" and str(view.state) == "EXECUTOR_ERROR" and wes.cancel_calls == []


@pytest.mark.parametrize("error", [
    WesAuthError("WES refused access (403): not yours", status_code=403),
    NotFound("run r1 not found on the WES server at wes.test"),
    WesHTTPError("WES server at wes.test answered 409: run is finishing", status_code=409),
    WesHTTPError("WES server at wes.test answered 500: boom", status_code=500),
    WesUnreachable("WES server at wes.test did not answer within 10 s"),
    WesHTTPError("WES server at wes.test answered 502 with an HTML page (a proxy in front of it?)", status_code=502),
    WesProtocolError("WES server at wes.test sent an HTML page instead of JSON for POST /runs/r1/cancel"),
])
def test_wes_errors_are_one_sentence_and_recorded(store: CancelStore, error: Exception) -> None:
    wes = StubWes(cancel_error=error)
    view, announced = click(wes, store)
    assert view.stage == "wes-error" and view.detail == str(error) and announced == []
    [row] = store.recent_audit("r1")
    assert row.outcome == "wes-error" and row.detail == str(error)
    assert row.wes_status == getattr(error, "status_code", None)
    wes.cancel_error = None
    assert click(wes, store)[0].stage == "requested"  # the claim was released: someone may try again


def test_the_channel_refusing_the_message_is_reported_to_the_canceller(store: CancelStore) -> None:
    view, _ = click(StubWes(), store, announce_error="not_in_channel")
    assert view.stage == "requested" and view.channel_error == "not_in_channel"
    cancel = store.get("r1")
    assert cancel is not None and cancel.message_ts is None and cancel.response_url


def test_follow_decides_the_outcome(store: CancelStore) -> None:
    click(StubWes(), store)
    cancel = store.get("r1")
    assert cancel is not None
    status = lambda s: RunStatus(run_id="r1", state=parse_state(s))  # noqa: E731
    assert follow(cancel, status("CANCELING"), NOW + 10) is None
    assert follow(cancel, status("CANCELED"), NOW + 10) == ("confirmed-canceled", "CANCELED")
    assert follow(cancel, status("COMPLETE"), NOW + 10) == ("ended-otherwise", "COMPLETE")
    assert follow(cancel, status("RUNNING"), NOW + 601) == ("no-effect", "RUNNING")
    assert follow(cancel, None, NOW + 601) == ("no-effect", None)
    store.finish("r1", final_state="RUNNING", outcome="no-effect")
    done = store.get("r1")
    assert done is not None
    text = str(cancel_outcome(done, NOW + 601)["text"])
    assert "<@U1> requested cancellation of run `r1` (was RUNNING)" in text
    assert "accepted the cancel, but the run is still *RUNNING*" in text and "never" not in text
    assert store.recent_audit("r1")[0].outcome == "no-effect"
