"""Messages a team can scan at a glance: a word wesbot does not know is refused with the words it knows and
the nearest one; `/wes help` is grouped, one line and one example per subcommand, on one screen; `/wes help
NAME` tells one subcommand in full; `wesbot ask help` shows what the terminal can do, as it is typed there."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from wesbot.commands import (
    GROUPS,
    SERVER,
    SHARE,
    SLACK_ONLY,
    STATE_WORDS,
    SUBCOMMANDS,
    UsageError,
    parse,
    subcommand,
)
from wesbot.results import HelpResult
from wesbot.routing import ACROSS_SERVERS
from wesbot.slack.app import _Listeners
from wesbot.slack.blocks import check_limits, help_message
from wesbot.slack.deps import Deps
from wesbot.textview import render_text
from wesbot.wes.models import RunState


def refusal(text: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        parse(text)
    return info.value


def mrkdwn_lines(message: dict[str, Any]) -> list[str]:
    """Every line a person reads in a Block Kit message (sections and contexts)."""
    texts = [block["text"]["text"] for block in message["blocks"] if "text" in block]
    texts += [e["text"] for block in message["blocks"] for e in block.get("elements", []) if "text" in e]
    return [line for text in texts for line in text.split("\n")]


def terminal_help(topic: str | None = None) -> list[str]:
    return render_text(HelpResult(command=None, topic=topic), host="wes.test").splitlines()


# -- closed word sets: known words are taken, others refused with the nearest one ---------------------------


@pytest.mark.parametrize(
    ("word", "label"),
    [*((state.value, state.value) for state in RunState), *((state.lower(), state.value) for state in RunState),
     ("failed", "failed"), ("FINISHED", "finished"), ("Active", "active"),
     ("DELETED", "DELETED"), ("deleting", "DELETING")],  # sapporo's own states (WES-NOTES "Quirks")
)
def test_runs_takes_spec_states_groups_and_known_server_states(word: str, label: str) -> None:
    state_filter = parse(f"runs {word}").state_filter
    assert state_filter is not None and state_filter.label == label


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("runs faild", "did you mean failed?"),
        ("runs FINISHD", "did you mean finished?"),
        ("runs runing", "did you mean RUNNING?"),
        ("runs executor-error", "did you mean EXECUTOR_ERROR?"),
        ("runs delet", "did you mean DELETED?"),
        ("watch faild", "did you mean failed?"),
        ("unwatch tag project=rnaseq finishd", "did you mean finished?"),
        ("tasks r1 faild", "did you mean failed?"),
        ("logs r1 align stdrr", "did you mean stderr?"),
        ("logs r1 STDOT", "did you mean stdout?"),
        ("stauts abc", "did you mean status?"),
        ("shw abc", "did you mean show?"),  # aliases too
        ("detials abc", "did you mean details?"),
        ("subscibe abc", "did you mean subscribe?"),
        ("help stauts", "did you mean status?"),
        ("status abc --shar", "did you mean --share?"),
    ],
)
def test_a_word_wesbot_does_not_know_is_refused_with_the_nearest_one(text: str, suggestion: str) -> None:
    assert suggestion in refusal(text).message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("runs faild", STATE_WORDS),
        ("runs xyzzy", STATE_WORDS),
        ("watch faild", ("failed", "finished")),
        ("watch tag a=b zzz", ("failed", "finished")),
        ("logs r1 align stdrr", ("stdout", "stderr")),
        ("tasks r1 zzz", ("failed",)),
    ],
)
def test_a_refusal_lists_the_words_there_are(text: str, words: tuple[str, ...]) -> None:
    message = refusal(text).message
    assert all(word in message for word in words), message


@pytest.mark.parametrize("text", ["runs xyzzy", "runs 123!", "watch zzz", "tasks r1 zzz", "frobnicate x",
                                  "help qqq", "status r --frob"])
def test_nothing_is_suggested_when_nothing_is_near(text: str) -> None:
    assert "did you mean" not in refusal(text).message


def test_a_server_invented_state_wesbot_has_not_heard_of_is_refused() -> None:
    # Before, any word of letters was taken for a state a server invented; now only the known ones are.
    assert "is not a run state" in refusal("runs foo_bar").message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stauts abc", "unknown subcommand 'stauts': did you mean status?"),
        ("frobnicate x", "unknown subcommand 'frobnicate'"),
        ("runs faild", "'faild' is not a run state: did you mean failed? Say failed, finished, active or a state: "
                       "UNKNOWN, QUEUED, INITIALIZING, RUNNING, PAUSED, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, "
                       "CANCELED, CANCELING, PREEMPTED, DELETED, DELETING"),
        ("watch zzz", "'zzz' is not a kind of watch; say failed, finished, long or queued"),
    ],
)
def test_refusals_read_like_this(text: str, message: str) -> None:
    assert refusal(text).message == message


@pytest.mark.parametrize(
    ("text", "usage_line"),
    [
        ("runs faild", "Usage: /wes runs [STATE|failed|finished|active]"),
        ("watch faild", "Usage: /wes watch [tag KEY=VALUE|mine] failed|finished | /wes watch [tag KEY=VALUE] "
                        "long|queued DURATION"),
        ("tasks r1 faild", "Usage: /wes tasks RUN_ID [failed]"),
        ("logs r1 t1 stdrr", "Usage: /wes logs RUN_ID [TASK_ID] [stdout|stderr]"),
        ("help stauts", "Usage: /wes help [SUBCOMMAND]"),
    ],
)
def test_a_refusal_keeps_the_usage_line_of_its_subcommand(text: str, usage_line: str) -> None:
    assert refusal(text).usage == usage_line


@pytest.mark.parametrize(
    ("text", "task_id", "stream"),
    [
        ("logs r1 align", "align", None),  # a word far from a stream is a task id
        ("logs r1 stderr", None, "stderr"),
        ("logs r1 stdrr stderr", "stdrr", "stderr"),  # a task called like a misspelt stream, named with a stream
    ],
)
def test_logs_tells_a_task_id_from_a_misspelt_stream(text: str, task_id: str | None, stream: str | None) -> None:
    command = parse(text)
    assert (command.task_id, command.stream) == (task_id, stream)


def test_a_misspelt_stream_says_how_to_name_a_task_called_so() -> None:
    assert "logs RUN_ID stdrr stderr" in refusal("logs r1 stdrr").message


# -- the help as data -----------------------------------------------------------------------------------------


def test_the_help_is_grouped_as_the_team_reads_it() -> None:
    assert [(group.title, group.names) for group in GROUPS] == [
        ("Look up", ("runs", "status", "details", "tasks", "task", "logs", "command", "timeline")),
        ("Follow", ("subscribe", "unsubscribe", "subscriptions", "watch", "unwatch", "report")),
        ("Cancel", ("cancel", "audit")),
        ("Admin", ("servers", "use", "help")),
    ]


@pytest.mark.parametrize("sub", SUBCOMMANDS, ids=lambda sub: sub.name)
def test_every_example_is_a_command_wesbot_takes(sub: Any) -> None:
    assert sub.example.startswith(f"/wes {sub.name}")
    assert parse(sub.example.removeprefix("/wes ")).name == sub.name
    assert sub.brief and len(sub.brief) <= 40 and not sub.brief.endswith(".")


def test_options_are_offered_where_they_work() -> None:
    # --share posts a lookup's answer in the channel; --server sends what goes to one WES server there.
    # The report is a lookup too, and answers for every server unless one is named.
    lookups = {sub.name for sub in SUBCOMMANDS if SHARE in sub.options}
    assert lookups == set(GROUPS[0].names) | {"report"}
    assert {sub.name for sub in SUBCOMMANDS if SERVER in sub.options} == {sub.name for sub in SUBCOMMANDS} \
        - ACROSS_SERVERS | {"report"}


# -- /wes help in Slack -----------------------------------------------------------------------------------------


def test_slack_help_fits_one_screen_grouped_with_one_example_each() -> None:
    message = help_message()
    lines = mrkdwn_lines(message)
    assert check_limits(message) == []
    assert len(lines) <= 25 and max(map(len, lines)) <= 160
    titles = [line for line in lines if line in {f"*{group.title}*" for group in GROUPS}]
    assert titles == [f"*{group.title}*" for group in GROUPS]
    for group in GROUPS:
        start = lines.index(f"*{group.title}*")
        for offset, name in enumerate(group.names, start=1):
            sub = subcommand(name)
            line = lines[start + offset]
            assert line.startswith(f"`{sub.usage.split(' | ')[0]}` — {sub.brief}"), line
            assert f"`{sub.example}`" in line or sub.example == sub.usage, line
    assert "`show`" in next(line for line in lines if line.startswith("`/wes details"))
    assert "--share" in lines[-1] and "--server NAME" in lines[-1] and "/wes help COMMAND" in lines[-1]


@pytest.mark.parametrize(
    ("topic", "shown", "not_shown"),
    [
        ("details", ["`/wes details RUN_ID`", "alias `show`", "under Look up", "The run in full",
                     "*Example:* `/wes details 3f2a…`", "`--share`", "`--server NAME`",
                     "*On the terminal:* `wesbot ask details RUN_ID`"], []),
        ("watch", ["`/wes watch [tag KEY=VALUE|mine] failed|finished`",
                   "`/wes watch [tag KEY=VALUE] long|queued DURATION`",
                   "*Example:* `/wes watch long 6h tag project=rnaseq`", "`--server NAME`"],
         ["--share", "On the terminal"]),
        ("subscriptions", ["`/wes subscriptions`", "under Follow"], ["--share", "--server", "alias"]),
        ("audit", ["*On the terminal:* `wesbot audit [RUN_ID]`"], ["--share", "--server"]),
        ("use", ["`/wes use [SERVER]`", "*Example:* `/wes use prod`"], ["Options"]),
    ],
)
def test_slack_help_of_one_subcommand(topic: str, shown: list[str], not_shown: list[str]) -> None:
    message = help_message(topic)
    text = "\n".join(mrkdwn_lines(message))
    assert check_limits(message) == []
    assert subcommand(topic).summary in text
    for piece in shown:
        assert piece in text, piece
    for piece in not_shown:
        assert piece not in text, piece


def test_help_and_a_misspelling_are_answered_in_the_ack() -> None:
    with ThreadPoolExecutor(1) as pool:
        listeners = _Listeners(Deps.single(wes=None, host="wes.test", pool=pool))  # type: ignore[arg-type]
        acks: list[dict[str, Any]] = []
        listeners.ack_command(lambda **kwargs: acks.append(kwargs), {"text": "help"})
        listeners.ack_command(lambda **kwargs: acks.append(kwargs), {"text": "stauts abc"})
    help_ack, mistake_ack = acks
    assert help_ack["blocks"] == help_message()["blocks"] and help_ack["response_type"] == "ephemeral"
    assert "did you mean status?" in "\n".join(mrkdwn_lines(mistake_ack))


# -- wesbot ask help on the terminal -------------------------------------------------------------------------------


def test_terminal_help_shows_only_what_the_terminal_does_as_it_is_typed_there() -> None:
    lines = terminal_help()
    commands = [line.strip() for line in lines if line.startswith("  wesbot ")]
    assert [command.split()[2] if command.startswith("wesbot ask") else command.split()[1] for command in commands] \
        == ["runs", "status", "details", "tasks", "task", "logs", "command", "timeline", "report", "audit",
               "servers", "help"]
    assert "wesbot audit [RUN_ID]" in commands and "wesbot ask status RUN_ID" in commands
    assert not any("/wes" in line for line in lines)
    titles = {group.title for group in GROUPS}
    assert [line for line in lines if line in titles] == ["Look up", "Follow", "Cancel", "Admin"]
    assert any(line.startswith("  --server NAME") for line in lines)
    assert any(line.startswith("  --json") for line in lines)
    assert lines[-1] == "In Slack only: " + ", ".join(s.name for s in SUBCOMMANDS if s.name in SLACK_ONLY
                                                       and s.name != "audit")


def test_terminal_help_has_one_example_per_command() -> None:
    text = "\n".join(terminal_help())
    for example in ("wesbot ask runs failed", "wesbot ask status 3f2a…", "wesbot ask logs 3f2a… align",
                    "wesbot audit 3f2a…", "wesbot ask help status"):
        assert f"e.g. {example}" in text, example


@pytest.mark.parametrize(
    ("topic", "shown", "not_shown"),
    [
        ("details", ["wesbot ask details RUN_ID   (alias: show)", "Example: wesbot ask details 3f2a…",
                     "Option --server NAME:", "Option --json:"], ["--share", "/wes", "Slack only"]),
        ("audit", ["wesbot audit [RUN_ID]", "Example: wesbot audit 3f2a…", "Option --json:"],
         ["/wes", "--server", "Slack only"]),
        ("servers", ["wesbot ask servers", "Option --json:"], ["--server", "--share"]),
        ("cancel", ["/wes cancel RUN_ID", "in Slack only", "Example: /wes cancel 3f2a…"], ["wesbot ask", "Option"]),
    ],
)
def test_terminal_help_of_one_subcommand(topic: str, shown: list[str], not_shown: list[str]) -> None:
    text = "\n".join(terminal_help(topic))
    for piece in shown:
        assert piece in text, piece
    for piece in not_shown:
        assert piece not in text, piece
