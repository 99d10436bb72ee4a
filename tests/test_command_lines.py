"""The whole command line of a run or a task is one click away (issue 11): details and task shorten a long one
in its middle and offer a "Whole command" button, which runs `/wes command RUN_ID [TASK_ID]`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.botproc import BotProcess, ask_bot, post_signed
from tests.fakes.fake_slack import FakeSlack, block_actions_payload
from tests.fakes.fake_wes import FakeWes
from wesbot.commands import UsageError, parse
from wesbot.results import CommandLineResult
from wesbot.slack.replies import COMMAND_PIECE, COMMAND_PIECES, render
from wesbot.textview import render_text

LONG = ["bwa", "mem", "-t", "8", *(f"--opt{i}=value" for i in range(300)), "ref.fa", "reads.fq", "-o", "out.sam"]


@pytest.mark.parametrize(("text", "run_id", "task_id"), [
    ("command r1", "r1", None),
    ("command r1 align", "r1", "align"),
    ("command r1 align --server prod", "r1", "align"),
])
def test_command_takes_a_run_and_an_optional_task(text: str, run_id: str, task_id: str | None) -> None:
    command = parse(text)
    assert (command.name, command.run_id, command.task_id) == ("command", run_id, task_id)
    assert parse(command.text()).task_id == task_id  # a button value reads back the same


@pytest.mark.parametrize("text", ["command", "command r1 t1 extra"])
def test_command_refuses_the_wrong_number_of_words(text: str) -> None:
    with pytest.raises(UsageError, match="argument|unexpected"):
        parse(text)


def pieces(message: dict[str, object]) -> list[str]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    return [text.strip("`") for text in texts if text.startswith("```")]


def test_the_whole_command_is_shown_in_pieces_that_join_back_to_it() -> None:
    cmd = LONG
    message = render(CommandLineResult(command=parse("command r1 t1"), run_id="r1", task_id="t1", cmd=cmd), host="h")
    assert "".join(pieces(message)) == " ".join(cmd)
    assert all(len(piece) <= COMMAND_PIECE for piece in pieces(message))
    assert "task `t1` of run `r1`" in message["blocks"][0]["text"]["text"]


def test_a_command_too_long_for_one_message_says_where_to_read_it_whole() -> None:
    cmd = ["x" * (COMMAND_PIECE * (COMMAND_PIECES + 3))]
    message = render(CommandLineResult(command=parse("command r1"), run_id="r1", task_id=None, cmd=cmd), host="h")
    assert len(pieces(message)) == COMMAND_PIECES
    assert "wesbot ask command r1" in json.dumps(message["blocks"]) and "more characters" in json.dumps(message)
    # The terminal prints it unshortened.
    printed = render_text(CommandLineResult(command=parse("command r1"), run_id="r1", task_id=None, cmd=cmd),
                          host="h")
    assert "x" * (COMMAND_PIECE * (COMMAND_PIECES + 3)) in printed


def test_no_command_line_is_said_plainly() -> None:
    message = render(CommandLineResult(command=parse("command r1"), run_id="r1", task_id=None, cmd=[]), host="h")
    assert "gives none" in message["text"] + json.dumps(message["blocks"])


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]}


def test_the_whole_command_button_of_details_and_task_shows_it_whole(wes: FakeWes, slack: FakeSlack,
                                                                     workdir: str) -> None:
    wes.add_run("r1", "EXECUTOR_ERROR", run_log={"name": "wf", "cmd": LONG, "exit_code": 1},
                task_logs=[{"id": "t1", "name": "align", "cmd": LONG, "exit_code": 1}])
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir)
    bot.wait_http_ready()
    try:
        _click_through(bot, slack)
    finally:
        assert bot.stop() == 0


def _click_through(bot: BotProcess, slack: FakeSlack) -> None:
    for text, value in (("details r1", "command r1"), ("task r1 t1", "command r1 t1")):
        shown = ask_bot(bot, slack, text)
        assert "shortened in the middle" in json.dumps(shown["blocks"])
        assert buttons(shown)["wes_run:command"] == value
        name = f"click-{value}".replace(" ", "_")
        post_signed(bot, block_actions_payload("wes_run:command", value, response_url=slack.response_url(name)))
        whole = slack.wait_for(lambda n=name: next((r for r in slack.responses_to(n)
                                                    if "Looking up" not in r.get("text", "")), None), timeout=10)
        assert "".join(pieces(whole)) == " ".join(LONG)
