"""A server that answers RUNNING to the status of any id (the reference wes-service does, and lists the "ghost"
forever after): wesbot never shows an unknown id as a running run, in a lookup or a subscription."""

from __future__ import annotations

import time

from tests.fakes.fake_wes import FakeWes
from wesbot.core import Context, run_text
from wesbot.results import ErrorResult, StatusResult
from wesbot.store.watch import WatchStore
from wesbot.wes.client import WesClient


def test_status_of_an_id_the_server_never_ran_is_no_such_run(wes: FakeWes) -> None:
    wes.ghost_running = True
    wes.add_run("real", "RUNNING")
    with WesClient(wes.url, retries=0) as client:
        ghost = run_text("status nope", client)
        real = run_text("status real", client)
    assert isinstance(ghost, ErrorResult)
    assert ghost.message.startswith(f"no such run nope on the WES server at {client.host}: it answers RUNNING")
    assert "if the run exists, try again" in ghost.message
    assert isinstance(real, StatusResult) and str(real.status.state) == "RUNNING"


def test_subscribing_to_a_ghost_stores_nothing(wes: FakeWes, store: WatchStore) -> None:
    wes.ghost_running = True
    ctx = Context(store=store, channel_id="C1", user_id="U1", now=time.time())
    with WesClient(wes.url, retries=0) as client:
        result = run_text("subscribe nope", client, ctx)
    assert isinstance(result, ErrorResult) and "no such run nope" in result.message
    assert store.subscriptions.of_channel("C1") == []


def test_an_ended_run_needs_no_second_call(wes: FakeWes) -> None:
    wes.add_run("done", "COMPLETE", exit_code=0)
    with WesClient(wes.url, retries=0) as client:
        assert isinstance(run_text("status done", client), StatusResult)
    assert [r.path.rsplit("/", 1)[-1] for r in wes.requests] == ["status"]
