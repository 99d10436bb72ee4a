"""Cancel hardening: a crash mid-POST is recovered, confirmations are never shared, /wes audit stays in its channel."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.fakes.cancelling import NOW, StubWes
from tests.fakes.watching import FakeClock, RecordingPoster
from wesbot.cancel import Cancelers, confirm, recover
from wesbot.commands import parse
from wesbot.core import Context, execute
from wesbot.results import CancelResult
from wesbot.slack.replies import render
from wesbot.store.cancels import CancelStore
from wesbot.store.watch import WatchStore
from wesbot.watcher import Delivery, WatcherSettings, Workers

URL = "http://wes.test/ga4gh/wes/v1"


class Crash(BaseException):
    """The process dying during the POST (nothing in wesbot catches it)."""


def test_a_crash_during_the_post_is_audited_and_announced_once_after_a_restart(tmp_path: Path) -> None:
    wes = StubWes(cancel_error=Crash())  # type: ignore[arg-type]
    with pytest.raises(Crash):
        confirm(wes, run_id="r1", user_id="U1", channel_id="C1", cancelers=Cancelers(()),
                store=CancelStore(WatchStore(tmp_path / "w.db"), URL), now=NOW, timeout=600, response_url=None,
                announce=lambda before: ("1.1", None))
    assert wes.cancel_calls == ["r1"]
    watch_store = WatchStore(tmp_path / "w.db")  # a fresh process on the same file
    store = CancelStore(watch_store, URL)
    assert [row.outcome for row in store.recent_audit()] == ["sending"]
    poster = RecordingPoster()
    clock = FakeClock()
    delivery = Delivery(watch_store, poster, Workers(threading.Event()), host="wes.test", settings=WatcherSettings(),
                        clock=clock, cancels=store)

    def announced() -> list[tuple[str, str]]:
        return [(p.channel, str(p.message["text"])) for p in poster.posts if p.method == "post"]

    assert recover(store, NOW + 10) == 0  # may still be in flight
    delivery.deliver()
    assert announced() == []
    assert recover(store, NOW + 200) == 1
    delivery.deliver()
    assert recover(store, NOW + 300) == 0
    clock.advance(5)
    delivery.deliver()
    posted = announced()
    assert len(posted) == 1 and posted[0][0] == "C1" and "<@U1> requested cancellation of run `r1`" in posted[0][1]
    rows = store.recent_audit()
    assert [row.outcome for row in rows] == ["requested"] and "restarted" in (rows[0].detail or "")
    cancel = store.get("r1")
    assert cancel is not None and cancel.status == "requested" and cancel.message_ts == poster.posts[0].ts
    store.finish("r1", final_state="CANCELED", outcome="confirmed-canceled")
    assert [row.outcome for row in store.recent_audit()] == ["confirmed-canceled"]


def test_a_failed_post_updates_its_sending_row(tmp_path: Path) -> None:
    from wesbot.wes.errors import WesUnreachable
    store = CancelStore(WatchStore(tmp_path / "w.db"), URL)
    wes = StubWes(cancel_error=WesUnreachable("down"))
    view = confirm(wes, run_id="r1", user_id="U1", channel_id="C1", cancelers=Cancelers(()), store=store, now=NOW,
                   timeout=600, response_url=None, announce=lambda before: ("1.1", None))
    assert view.stage == "wes-error"
    assert [row.outcome for row in store.recent_audit()] == ["wes-error"] and store.get("r1") is None
    assert recover(store, NOW + 999) == 0


def _ctx(store: CancelStore, channel: str) -> Context:
    return Context(store=store.store, channel_id=channel, user_id="U1", now=NOW, cancels=store,
                   cancelers=Cancelers(()))


@pytest.mark.parametrize("text", ["cancel r1 --share", "cancel r1"])
def test_a_cancel_confirmation_is_never_shared(tmp_path: Path, text: str) -> None:
    store = CancelStore(WatchStore(tmp_path / "w.db"), URL)
    command = parse(text)
    assert not command.share
    # a Share button whose value is "cancel r1": app.py sets share=True after parsing; the result says no
    result = execute(command, StubWes(), _ctx(store, "C1"))
    assert isinstance(result, CancelResult) and result.view.stage == "prompt"
    assert result.ok and not result.shareable
    assert "Cancel run" in render(result, host="wes.test")["text"]


def test_audit_in_slack_shows_only_this_channels_attempts(tmp_path: Path) -> None:
    store = CancelStore(WatchStore(tmp_path / "w.db"), URL)
    store.audit(now=NOW, user_id="U1", channel_id="CPRIVATE", run_id="secret", state_before="RUNNING",
                outcome="requested")
    store.audit(now=NOW + 1, user_id="U2", channel_id="C1", run_id="r1", state_before="RUNNING", outcome="denied")
    here = execute(parse("audit"), StubWes(), _ctx(store, "C1"))
    shown = str(render(here, host="wes.test"))
    assert "r1" in shown and "secret" not in shown and "CPRIVATE" not in shown
    elsewhere = str(render(execute(parse("audit secret"), StubWes(), _ctx(store, "C1")), host="wes.test"))
    assert "secret" in elsewhere and "No cancel attempts recorded in this channel" in elsewhere
    assert {row.run_id for row in store.recent_audit()} == {"secret", "r1"}  # the terminal still sees all
