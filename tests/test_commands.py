"""The /wes parser: every subcommand, aliases, usage lines for mistakes, and round-trips of button values."""

from __future__ import annotations

import pytest

from wesbot.commands import SUBCOMMANDS, Command, UsageError, parse, usage


def test_empty_text_is_help() -> None:
    assert parse("").name == "help"
    assert parse("   ").name == "help"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status abc", Command(name="status", run_id="abc")),
        ("STATUS abc", Command(name="status", run_id="abc")),
        ("show abc", Command(name="details", run_id="abc")),
        ("details abc --share", Command(name="details", run_id="abc", share=True)),
        ("tasks abc failed", Command(name="tasks", run_id="abc", only_failed=True)),
        ("task abc t-1", Command(name="task", run_id="abc", task_id="t-1")),
        ("help tasks", Command(name="help", topic="tasks")),
        ("help show", Command(name="help", topic="details")),
        ("servers", Command(name="servers")),
        ("SERVERS --share", Command(name="servers", share=True)),
        ("help servers", Command(name="help", topic="servers")),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_runs_state_filters_are_case_insensitive() -> None:
    failed = parse("runs FAILED").state_filter
    assert failed is not None
    assert failed.matches("EXECUTOR_ERROR") and failed.matches("SYSTEM_ERROR")
    assert not failed.matches("COMPLETE") and not failed.matches(None)
    running = parse("runs running").state_filter
    assert running is not None and running.matches("RUNNING") and not running.matches("QUEUED")
    # A state the server invented (sapporo) can still be filtered on.
    deleted = parse("runs deleted").state_filter
    assert deleted is not None and deleted.matches("DELETED")


@pytest.mark.parametrize(
    ("text", "usage_line"),
    [
        ("status", "Usage: /wes status RUN_ID"),
        ("details", "Usage: /wes details RUN_ID"),
        ("task abc", "Usage: /wes task RUN_ID TASK_ID"),
        ("tasks abc nonsense", "Usage: /wes tasks RUN_ID [failed]"),
        ("status a b", "Usage: /wes status RUN_ID"),
        ("runs 123!", "Usage: /wes runs [STATE|failed|finished|active]"),
        ("help nope", "Usage: /wes help [SUBCOMMAND]"),
        ("servers prod", "Usage: /wes servers"),
    ],
)
def test_mistakes_get_the_usage_line(text: str, usage_line: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text)
    assert info.value.usage == usage_line


def test_unknown_subcommand_lists_the_subcommands() -> None:
    with pytest.raises(UsageError) as info:
        parse("frobnicate x")
    assert "frobnicate" in info.value.message
    for sub in SUBCOMMANDS:
        assert sub.name in info.value.usage


def test_ids_are_checked() -> None:
    with pytest.raises(UsageError):
        parse("status " + "x" * 300)
    with pytest.raises(UsageError):
        parse("status ab\x07c")
    with pytest.raises(UsageError):
        parse("status abc --frob")


@pytest.mark.parametrize(
    "command",
    [
        Command(name="runs"),
        Command(name="runs", page_token="tok en/?&=%", skip=7),
        Command(name="tasks", run_id="r1", only_failed=True, page_token="p2", skip=3),
        Command(name="details", run_id="r1", share=True),
        Command(name="task", run_id="r1", task_id="t1"),
    ],
)
def test_button_values_round_trip(command: Command) -> None:
    again = parse(command.text(page_token=command.page_token, skip=command.skip, share=command.share))
    assert again == command


def test_runs_filter_round_trips() -> None:
    command = parse("runs failed")
    assert parse(command.text(page_token="t", skip=2)) == Command(
        name="runs", state_filter=command.state_filter, page_token="t", skip=2
    )


def test_every_subcommand_has_usage_and_summary() -> None:
    for sub in SUBCOMMANDS:
        assert usage(sub.name).startswith("Usage: /wes " + sub.name)
        assert len(sub.summary) > 10
