"""How a run or task ended (wesbot.outcome): the rules as tables, including what real servers report
while something is still running (exit code -1 or null) and Arvados' failed COMPLETE."""

from __future__ import annotations

import pytest

from wesbot.format import task_state
from wesbot.outcome import FAILED_STATES, run_failed, task_failed, task_finished, task_running
from wesbot.wes.models import Log, RunState, State

END = "2024-01-01T01:00:00Z"
S = RunState


@pytest.mark.parametrize(
    ("state", "exit_code", "failed"),
    [
        (S.EXECUTOR_ERROR, 1, True),
        (S.EXECUTOR_ERROR, None, True),
        (S.EXECUTOR_ERROR, 0, True),  # the state says so, whatever the exit code
        (S.SYSTEM_ERROR, None, True),
        (S.PREEMPTED, None, True),
        (S.COMPLETE, 0, False),
        (S.COMPLETE, None, False),
        (S.COMPLETE, -1, False),  # -1 is no exit code, not a failure
        (S.COMPLETE, 1, True),  # Arvados reports failures as COMPLETE with a non-zero exit code
        (S.COMPLETE, -9, True),
        (S.CANCELED, 1, False),  # stopped on purpose: never a failure
        (S.CANCELED, None, False),
        (S.RUNNING, 1, False),  # not terminal: an exit code means nothing yet
        (S.RUNNING, -1, False),
        (S.CANCELING, 1, False),
        (S.UNKNOWN, 1, False),
        ("DELETED", 1, False),  # a state wesbot does not know is not terminal
        (None, 1, False),
    ],
)
def test_run_failed(state: State, exit_code: int | None, failed: bool) -> None:
    assert run_failed(state, exit_code) is failed


def test_failed_states() -> None:
    assert FAILED_STATES == {S.EXECUTOR_ERROR, S.SYSTEM_ERROR, S.PREEMPTED}


@pytest.mark.parametrize(
    ("exit_code", "end_time", "run_terminal", "finished", "failed", "running", "shown"),
    [
        # Still going: -1 and null are what servers report meanwhile.
        (-1, None, False, False, False, True, "no exit code yet"),
        (None, None, False, False, False, True, "no exit code yet"),
        # -1 once the task or its run has ended: it never got a real exit code, it failed.
        (-1, END, False, True, True, False, "failed (exit -1)"),
        (-1, None, True, True, True, False, "failed (exit -1)"),
        # null once ended: no exit code, but not a failure either.
        (None, END, False, True, False, False, "ended, no exit code"),
        (None, None, True, True, False, False, "ended, no exit code"),
        # A real exit code means the process exited, even without an end time.
        (0, None, False, False, False, False, "ok (exit 0)"),
        (0, END, True, True, False, False, "ok (exit 0)"),
        (2, None, False, False, True, False, "failed (exit 2)"),
        (2, END, True, True, True, False, "failed (exit 2)"),
        (-9, None, False, False, True, False, "failed (exit -9)"),
    ],
)
def test_task_rules(exit_code: int | None, end_time: str | None, run_terminal: bool, finished: bool,
                    failed: bool, running: bool, shown: str) -> None:
    task = Log(name="t", exit_code=exit_code, end_time=end_time)
    assert task_finished(task, run_terminal) is finished
    assert task_failed(task, run_terminal) is failed
    assert task_running(task, run_terminal) is running
    assert task_state(task, run_terminal=run_terminal) == shown
