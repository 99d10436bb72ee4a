"""Golden tests: the main messages as a reader sees them, kept as text files in tests/golden/, so that a change
to what wesbot says shows in the diff of the pull request that makes it.

A message is written out block by block: section text and fields, context lines, buttons as
``[Text] -> value`` (``url`` for a link button). ``UPDATE_GOLDEN=1 pytest tests/test_golden_messages.py``
rewrites the files after an intended change; review them before committing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from wesbot.commands import parse
from wesbot.outcome import FailedTask, RunOutcome
from wesbot.results import DetailsResult, RunsResult, StatusResult
from wesbot.slack.cards import card, digest, notification
from wesbot.slack.replies import render
from wesbot.store.subscriptions import Subscription
from wesbot.wes.logs import LogTail, reason_lines
from wesbot.wes.models import Log, RunLog, RunRequest, RunState, RunStatus, RunSummary

GOLDEN = Path(__file__).parent / "golden"
START = "2026-12-04T07:28:33Z"
EPOCH = 1_796_369_313.0  # START
STDERR = ("INFO [workflow ] start\nINFO [step align] start\n"
          "ERROR [job align] Job error:\n('Error collecting output for parameter 'bam': "
          "sample.bam: No such file or directory')\n"
          "WARNING [job align] completed permanentFail\n"
          "INFO Final process status is permanentFail\n")


def readable(message: dict[str, Any]) -> str:
    """The message as a reader sees it, one line per line of text, buttons last in their block."""
    lines = [f"(notification text) {message.get('text', '')}"]
    for block in message.get("blocks") or []:
        lines.append(f"--- {block['type']}")
        lines += _block_lines(block)
    return "\n".join(lines) + "\n"


def _block_lines(block: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if isinstance(block.get("text"), dict):
        lines += block["text"]["text"].splitlines()
    for field in block.get("fields") or []:
        lines += ["| " + line for line in field["text"].splitlines()]
    if block["type"] == "context":
        lines += [line for e in block["elements"] for line in str(e.get("text", "")).splitlines()]
    elements = block.get("elements") if block["type"] == "actions" else [block["accessory"]] if "accessory" in \
        block else []
    for element in elements or []:
        target = element.get("url") or element.get("value", "")
        lines.append(f"[{element['text']['text']}] -> {target}")
    return lines


def subscription(**changes: Any) -> Subscription:
    values: dict[str, Any] = dict(
        id=7, run_id="359a26e315104a449a9b81b5ecc82eed", channel_id="C1", status="active", created_at=EPOCH + 60,
        expires_at=EPOCH + 14 * 86400, workflow="align.cwl", card_ts="1.2", card_version=3, card_synced=2,
        card_failed=None, reason=None, users=("UALICE", "UBOB"), state="RUNNING", state_since=EPOCH + 60,
        exit_code=None, start_time=START, end_time=None)
    values.update(changes)
    return Subscription(**values)


def failed_outcome() -> RunOutcome:
    return RunOutcome(run_id="359a26e315104a449a9b81b5ecc82eed", state="EXECUTOR_ERROR", exit_code=1,
                      start_time=START, end_time="2026-12-04T09:30:35Z", workflow="align.cwl",
                      failed_tasks=[FailedTask(name="align", exit_code=3, stderr="https://logs.example.org/t/align.err")],
                      log_what="stderr of task align", log_text=STDERR, log_reasons=tuple(reason_lines(STDERR)))


def failed_run() -> RunLog:
    return RunLog(
        run_id="359a26e315104a449a9b81b5ecc82eed", state=RunState.EXECUTOR_ERROR,
        request=RunRequest(workflow_url="https://github.com/lab/flows/align.cwl", workflow_type="CWL",
                           workflow_type_version="v1.0", workflow_params={"reads": "s3://lab/sample.fq"},
                           tags={"project": "rnaseq"}),
        run_log=Log(name="align.cwl", cmd=["cwltool", "--outdir", "/work/out", "align.cwl", "params.json"],
                    start_time=START, end_time="2026-12-04T09:30:35Z", stdout="", stderr=STDERR, exit_code=1),
        task_logs=[Log(name="align", id="t1", exit_code=3, start_time=START, end_time="2026-12-04T09:30:00Z",
                       stderr="https://logs.example.org/t/align.err")],
        outputs={})


MESSAGES = {
    "status_running": lambda: render(StatusResult(command=parse("status 359a26e3"), status=RunStatus(
        run_id="359a26e315104a449a9b81b5ecc82eed", state=RunState.RUNNING)), host="wes.example.org"),
    "details_failed": lambda: render(DetailsResult(
        command=parse("details 359a26e3"), run=failed_run(), task_count=1, log_what="stderr of task align",
        log_task_id="t1", log_tail=LogTail(text=STDERR, truncated=True, source="url",
                                           reasons=tuple(reason_lines(STDERR)))), host="wes.example.org"),
    "runs": lambda: render(RunsResult(command=parse("runs"), runs=[
        RunSummary(run_id="359a26e315104a449a9b81b5ecc82eed", state=RunState.RUNNING, start_time=START),
        RunSummary(run_id="9134f0aa", state=RunState.EXECUTOR_ERROR, start_time=START, end_time="2026-12-04T07:35:48Z",
                   tags={"project": "rnaseq"})]), host="wes.example.org"),
    "card_running": lambda: card(subscription(read_at=EPOCH + 2 * 3600 + 700), host="wes.example.org"),
    "notification_failed": lambda: notification(subscription(status="ended"), failed_outcome(),
                                                host="prod (wes.example.org)"),
    "digest": lambda: digest([failed_outcome()] * 7, what="failed", host="wes.example.org"),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_golden(name: str) -> None:
    text = readable(MESSAGES[name]())
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: if intended, rerun with UPDATE_GOLDEN=1"
