"""Block Kit rendering: hostile text from WES pings no one, and every message fits Slack's limits."""

from __future__ import annotations

import json

import pytest

from wesbot.commands import parse
from wesbot.results import (
    DetailsResult,
    ErrorResult,
    HelpResult,
    LogsResult,
    NextPage,
    Result,
    RunsResult,
    StatusResult,
    TaskResult,
    TasksResult,
)
from wesbot.slack.blocks import ACTION_PAGE, ACTION_SHARE, check_limits, code, code_block, escape
from wesbot.slack.replies import render
from wesbot.textview import render_text
from wesbot.wes.logs import LogTail
from wesbot.wes.models import Log, RunLog, RunRequest, RunState, RunStatus, RunSummary

HOSTILE = "<!channel> <!here> <@U123> <http://evil.example|click> @channel @here ```break``` `tick` &amp;"


def all_text(message: dict[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False)


def rendered_mrkdwn(message: dict[str, object]) -> str:
    """Every string Slack parses as mrkdwn: the fallback and mrkdwn text objects (not button values)."""
    found = [str(message["text"])]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node["text"]))
            for key, value in node.items():
                if key != "value":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message["blocks"])
    return "\n".join(found)


def assert_inert(message: dict[str, object]) -> None:
    text = rendered_mrkdwn(message)
    for bad in ("<!channel>", "<!here>", "<@U123>", "<http://evil.example|click>"):
        assert bad not in text, bad
    assert "@channel" not in text and "@here" not in text
    assert check_limits(message) == []  # type: ignore[arg-type]


def test_escape_neutralises_mentions_and_links() -> None:
    out = escape(HOSTILE)
    assert "<" not in out and ">" not in out
    assert "&lt;!channel&gt;" in out
    assert "@\u200bchannel" in out
    assert "&amp;amp;" in out  # an existing entity stays visible as text


def test_code_spans_cannot_be_closed_by_wes_text() -> None:
    span = code("a`b``c\nd")
    assert span.startswith("`") and span.endswith("`") and span.count("`") == 2
    block = code_block("x```y", 100)
    assert block.startswith("```") and block.endswith("```") and block.count("```") == 2


def hostile_log(i: int = 0) -> Log:
    return Log(
        name=HOSTILE + str(i), id=f"t{i}<!channel>", cmd=[HOSTILE] * 50, stdout="http://logs/x?a=1&b=<2>",
        stderr="line\n" * 5000 + HOSTILE, exit_code=1, start_time="2026-01-01T00:00:00Z",
        end_time="2026-01-01T01:02:03Z", system_logs=[HOSTILE] * 100,
    )


def results() -> list[Result]:
    huge = {f"param{i}<!channel>": "v" * 500 for i in range(200)}
    runs = [
        RunSummary(run_id=f"run-{i}-" + "x" * 200, state=RunState.RUNNING, start_time="2026-01-01T00:00:00Z",
                   tags={HOSTILE: HOSTILE * 3}) for i in range(25)
    ]
    run = RunLog(
        run_id="r1<!channel>",
        state=RunState.COMPLETE,
        request=RunRequest(workflow_url="https://x/wf.cwl?a=<b>|c", workflow_type="CWL", workflow_type_version="v1.0",
                           workflow_params=huge, tags={HOSTILE: HOSTILE}),
        run_log=hostile_log(),
        outputs=huge,
        task_logs=[hostile_log(i) for i in range(3)],
    )
    return [
        HelpResult(command=parse("help")),
        ErrorResult(command=None, message=HOSTILE, usage="Usage: /wes status RUN_ID", kind="usage"),
        RunsResult(command=parse("runs failed"), runs=runs, next_page=NextPage(page_token="t" * 100, skip=3)),
        RunsResult(command=parse("runs"), runs=[]),
        StatusResult(command=parse("status r1"), status=RunStatus(run_id=HOSTILE, state="DELETED<!channel>")),
        DetailsResult(command=parse("details r1"), run=run, task_count=3),
        TasksResult(command=parse("tasks r1"), run_id="r1", tasks=[hostile_log(i) for i in range(25)],
                    next_page=NextPage(page_token="p2"), source="inline"),
        TaskResult(command=parse("task r1 t1"), run_id="r1", task=hostile_log()),
    ]


@pytest.mark.parametrize("result", results(), ids=lambda r: type(r).__name__)
def test_every_reply_is_inert_and_within_limits(result: Result) -> None:
    message = render(result, host="wes.example.org")
    assert message["text"]
    assert_inert(message)


def test_complete_with_nonzero_exit_is_flagged() -> None:
    run = RunLog(run_id="r", state=RunState.COMPLETE, run_log=Log(exit_code=1))
    text = all_text(render(DetailsResult(command=parse("details r"), run=run), host="h"))
    assert "COMPLETE (exit 1)" in text and "non-zero exit code" in text


def test_unknown_and_null_states_are_shown_raw() -> None:
    text = all_text(render(StatusResult(command=parse("status r"), status=RunStatus(run_id="r", state="DELETED")),
                           host="h"))
    assert "DELETED" in text
    text = all_text(render(StatusResult(command=parse("status r"), status=RunStatus(run_id="r", state=None)),
                           host="h"))
    assert "(no state)" in text


def test_next_page_and_share_buttons_carry_command_text() -> None:
    result = RunsResult(command=parse("runs failed"), runs=[], next_page=NextPage(page_token="tok/1", skip=4))
    message = render(result, host="h")
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    by_action = {b["action_id"]: b["value"] for b in buttons}
    assert parse(by_action[ACTION_PAGE]).page_token == "tok/1"
    assert parse(by_action[ACTION_PAGE]).skip == 4
    assert parse(by_action[ACTION_SHARE]).state_filter is not None


def test_status_buttons_have_unique_action_ids() -> None:
    message = render(StatusResult(command=parse("status r"), status=RunStatus(run_id="r", state=RunState.RUNNING)),
                     host="h")
    assert check_limits(message) == []
    ids = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["wes_run:details", "wes_run:tasks", "wes_run:subscribe", "wes_run:cancel", ACTION_SHARE]
    broken = {"text": "x", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "action_id": "a", "value": "1", "text": {"type": "plain_text", "text": "A"}},
        {"type": "button", "action_id": "a", "value": "2", "text": {"type": "plain_text", "text": "B"}}]}]}
    assert check_limits(broken) != []


def test_page_token_too_long_for_a_button_drops_the_button_not_the_reply() -> None:
    result = RunsResult(command=parse("runs"), runs=[], next_page=NextPage(page_token="t" * 3000))
    message = render(result, host="h")
    assert check_limits(message) == []
    assert ACTION_PAGE not in all_text(message)


def test_shared_reply_names_who_shared_and_has_no_share_button() -> None:
    result = StatusResult(command=parse("status r --share"), status=RunStatus(run_id="r", state=RunState.RUNNING))
    message = render(result, host="h", shared_by="U42")
    text = all_text(message)
    assert "<@U42>" in text and ACTION_SHARE not in text


def test_inline_stderr_shows_the_tail_without_ansi() -> None:
    stderr = "".join(f"\x1b[1;30mline {i}\x1b[0m\n" for i in range(100))
    run = RunLog(run_id="r", state=RunState.EXECUTOR_ERROR, run_log=Log(stderr=stderr, exit_code=1))
    text = all_text(render(DetailsResult(command=parse("details r"), run=run), host="h"))
    assert "line 99" in text and "line 80" not in text and "\\u001b" not in text


def test_a_digest_of_many_runs_fits_one_message() -> None:
    from wesbot.outcome import RunOutcome
    from wesbot.slack.cards import digest

    outcomes = [RunOutcome(run_id=f"{i:08d}-aaaa-bbbb-cccc-{i:012d}", state="EXECUTOR_ERROR", exit_code=1,
                           start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T01:00:00Z") for i in range(500)]
    message = digest(outcomes, what="failed", host="h")
    assert check_limits(message) == []
    text = all_text(message)
    assert text.count("EXECUTOR_ERROR") >= 300 and "and 200 more" in text
    assert len(text) < 40000


def test_an_empty_log_says_empty_and_a_missing_one_says_nothing() -> None:
    empty = LogsResult(command=parse("logs r"), run_id="r", task_id=None, stream="stderr", what="stderr of run r",
                       tail=LogTail(text="", truncated=False, source="url", location="http://wes/x"))
    text = all_text(render(empty, host="h"))
    assert "*Stderr of run r*: _empty_" in text and "```" not in text
    assert render_text(empty, host="h") == "stderr of run r:\n  (empty)"
    task = TaskResult(command=parse("task r t"), run_id="r", task=Log(id="t", stdout="", exit_code=0))
    text = all_text(render(task, host="h"))
    assert "*stdout:* _empty_" in text and "stderr" not in text  # "" is empty; None (stderr) is not there
    assert "stdout: (empty)" in render_text(task, host="h")


def test_details_name_the_run_when_its_stderr_stands_in_for_the_task() -> None:
    run = RunLog(run_id="r", state=RunState.EXECUTOR_ERROR, run_log=Log(exit_code=1))
    what = "stderr of run r (task align has no stderr of its own)"
    result = DetailsResult(command=parse("details r"), run=run, log_what=what, log_task_id="t1",
                           log_tail=LogTail(text="boom", truncated=False, source="url", location="http://wes/x"))
    message = render(result, host="h")
    assert "*Stderr of run r (task align has no stderr of its own)*" in all_text(message)
    assert "stderr of run r (task align has no stderr of its own):\n  boom" in render_text(result, host="h")


@pytest.mark.parametrize(("run_terminal", "shown"), [(False, "no exit code yet"), (True, "failed (exit -1)")])
def test_a_task_with_minus_one_is_failed_only_once_the_run_ended(run_terminal: bool, shown: str) -> None:
    task = Log(id="t", name="align", exit_code=-1)
    tasks = TasksResult(command=parse("tasks r"), run_id="r", tasks=[task], run_terminal=run_terminal)
    assert f"*{shown}*" in all_text(render(tasks, host="h"))
    one = TaskResult(command=parse("task r t"), run_id="r", task=task, run_terminal=run_terminal)
    assert render(one, host="h")["text"] == f"Task align: {shown}"
