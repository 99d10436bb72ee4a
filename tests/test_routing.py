"""Which WES server a command goes to: the rules, the safe look for a run, and buttons bound to their server."""

from __future__ import annotations

import pytest

from wesbot.commands import UsageError, parse
from wesbot.routing import ask_which, choose, locate, server_label
from wesbot.servers import UnknownServer
from wesbot.slack.blocks import ACTION_RUN, pin_server
from wesbot.slack.replies import render
from wesbot.wes.errors import WesUnreachable
from wesbot.wes.models import RunListPage, RunSummary

NAMES = ["prod", "staging"]


@pytest.mark.parametrize(
    ("text", "names", "channel_default", "expected"),
    [
        ("status r1 --server staging", NAMES, "prod", "staging"),  # named beats the channel's default
        ("status r1 -s staging", NAMES, None, "staging"),
        ("status r1 --server=staging", NAMES, None, "staging"),
        ("status r1", NAMES, "prod", "prod"),  # the channel's default
        ("status r1", ["only"], None, "only"),  # the only server
        ("status r1", NAMES, None, None),  # look for it, or ask
        ("runs", NAMES, None, None),
        ("status r1", NAMES, "gone-from-config", None),  # a stale default is no default
    ],
)
def test_choose(text: str, names: list[str], channel_default: str | None, expected: str | None) -> None:
    assert choose(parse(text), names, channel_default=channel_default) == expected


def test_a_server_that_is_not_configured_is_refused_with_the_names_that_are() -> None:
    with pytest.raises(UnknownServer, match="the servers are prod, staging"):
        choose(parse("status r1 --server qa"), NAMES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status r1 --server", "--server needs a server name"),
        ("status r1 -s", "--server needs a server name"),
        ("status r1 --server Bad_Name!", "is not a server name"),
        ("use prod staging", "unexpected 'staging'"),
        ("use prod --server staging", "name one server"),
    ],
)
def test_bad_server_options(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("text", "server", "round_trip"),
    [
        ("use staging", "staging", "use --server=staging"),
        ("use", None, "use"),
        ("details r1 --server Prod", "prod", "details r1 --server=prod"),  # names are lower case
    ],
)
def test_server_option_round_trips_through_button_text(text: str, server: str | None, round_trip: str) -> None:
    command = parse(text)
    assert command.server == server
    assert command.text() == round_trip
    assert parse(command.text()) == command


class Lister:
    """GET /runs of one server: pages of run ids, or an outage. Records every call, so that a test can see that
    nothing but GET /runs was asked."""

    def __init__(self, *pages: list[str], down: bool = False) -> None:
        self.pages = pages
        self.down = down
        self.calls: list[str | None] = []

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        self.calls.append(page_token)
        if self.down:
            raise WesUnreachable("WES at wes.test did not answer")
        index = int(page_token or 0)
        runs = [RunSummary(run_id=run_id, state="RUNNING") for run_id in self.pages[index]]
        more = str(index + 1) if index + 1 < len(self.pages) else ""
        return RunListPage(runs=runs, next_page_token=more)


def test_locate_reads_only_the_run_lists_and_finds_the_run_on_a_later_page() -> None:
    prod, staging = Lister(["a"], ["b", "r1"]), Lister(["c"])
    located = locate("r1", {"prod": prod, "staging": staging})
    assert located.found == ("prod",)
    assert located.unreadable == ()
    assert prod.calls == [None, "1"]


def test_locate_says_which_lists_could_not_be_read() -> None:
    located = locate("r1", {"prod": Lister(["r1"]), "staging": Lister(down=True), "qa": Lister(["r1"])})
    assert located.found == ("prod", "qa")
    assert located.unreadable == ("staging",)


def test_locate_stops_after_its_page_bound() -> None:
    endless = Lister(*[[f"run-{i}"] for i in range(50)])
    assert locate("run-49", {"prod": endless}, max_pages=3).found == ()
    assert len(endless.calls) == 3


def test_the_question_has_one_button_per_server_each_running_the_command_there() -> None:
    command = parse("status r1")
    message = render(ask_which(command, NAMES), host="")
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("prod", "status r1 --server=prod"), ("staging", "status r1 --server=staging")]
    assert len({b["action_id"] for b in buttons}) == 2  # unique within their block, as Slack requires
    assert all(b["action_id"].startswith(ACTION_RUN + ":status:") for b in buttons)


def test_pin_server_binds_command_buttons_and_leaves_the_rest() -> None:
    message = {"text": "t", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x"}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "wes_run:details", "value": "details r1"},
            {"type": "button", "action_id": "wes_cancel", "value": "cancel r1"},
            {"type": "button", "action_id": "wes_run:tasks", "value": "tasks r1 --server=other"},
            {"type": "button", "action_id": "wes_run:logs", "value": "logs r1 " + "x" * 1990},
            {"type": "button", "action_id": "wes_keep", "value": "keep"},
        ]},
    ]}
    pinned = pin_server(message, "prod")
    values = [e["value"] for e in pinned["blocks"][1]["elements"]]
    # bound; bound; already names its server; too long once bound: left out, never sent elsewhere; not a command
    assert values == ["details r1 --server=prod", "cancel r1 --server=prod", "tasks r1 --server=other", "keep"]
    assert message["blocks"][1]["elements"][0]["value"] == "details r1"  # the original is not changed


@pytest.mark.parametrize(("several", "label"), [(False, "wes.example.org"), (True, "prod (wes.example.org)")])
def test_messages_name_the_server_when_there_are_several(several: bool, label: str) -> None:
    assert server_label("prod", "wes.example.org", several=several) == label
