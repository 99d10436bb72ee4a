"""The listener core without sockets: a bug becomes an apology with an error id; a slow lookup shows a notice."""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from wesbot.commands import parse
from wesbot.slack.app import Deps, answer
from wesbot.wes.models import RunLog, RunState, RunStatus


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


class BrokenWes:
    host = "wes.test"

    def get_status(self, run_id: str) -> RunStatus:
        raise RuntimeError("internal detail with xoxb-secret-token")


class SlowWes:
    host = "wes.test"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def get_status(self, run_id: str) -> RunStatus:
        import time

        time.sleep(self.seconds)
        return RunStatus(run_id=run_id, state=RunState.RUNNING)

    def get_run(self, run_id: str) -> RunLog:  # a running run's status is confirmed by its run log
        return RunLog(run_id=run_id, state=RunState.RUNNING)


def test_a_bug_is_logged_with_an_id_and_the_user_sees_only_the_id(caplog: pytest.LogCaptureFixture) -> None:
    respond = Recorder()
    with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.ERROR, logger="wesbot.slack"):
        result = answer(Deps.single(wes=BrokenWes(), host="wes.test", pool=pool), parse("status r1"),  # type: ignore[arg-type]
                        respond, user_id="U1")
    assert not result.ok
    [call] = respond.calls
    error_id = re.search(r"error id ([0-9a-f]{8})", call["text"])
    assert error_id, call["text"]
    assert "internal detail" not in str(call) and "Traceback" not in str(call)
    assert call["response_type"] == "ephemeral"
    record = next(r for r in caplog.records if error_id.group(1) in r.getMessage())
    assert record.exc_info is not None  # the traceback is in the log


def test_a_shared_lookup_that_fails_is_not_posted_in_the_channel() -> None:
    respond = Recorder()
    with ThreadPoolExecutor(1) as pool:
        answer(Deps.single(wes=BrokenWes(), host="wes.test", pool=pool), parse("status r1 --share"),  # type: ignore[arg-type]
               respond, user_id="U1")
    assert [c["response_type"] for c in respond.calls] == ["ephemeral"]


def test_slow_lookup_shows_a_notice_then_replaces_it() -> None:
    respond = Recorder()
    with ThreadPoolExecutor(1) as pool:
        deps = Deps.single(wes=SlowWes(0.3), host="wes.test", pool=pool, slow_notice_after=0.05)  # type: ignore[arg-type]
        answer(deps, parse("status r1"), respond, user_id="U1")
    notice, final = respond.calls
    assert notice["text"].startswith("Looking up run `r1`")
    assert final["replace_original"] is True and "RUNNING" in final["text"]


def test_fast_lookup_shows_no_notice() -> None:
    respond = Recorder()
    with ThreadPoolExecutor(1) as pool:
        answer(Deps.single(wes=SlowWes(0), host="wes.test", pool=pool, slow_notice_after=1), parse("status r1"),  # type: ignore[arg-type]
               respond, user_id="U1")
    [final] = respond.calls
    assert final["replace_original"] is False
