"""Every kind of message wesbot sends is valid Block Kit, as slack_sdk's block models define it: each block parses
into its model (``Block.parse``: an unknown type gives None) and passes its ``validate_json`` (text lengths,
element counts, required fields), on top of wesbot's own limit checks (``check_limits``). Fed with hostile and
oversized WES text, so that shortening and escaping are exercised, not only the happy path."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block

from tests.test_blocks import HOSTILE, hostile_log, results
from wesbot.cancel import CancelView
from wesbot.commands import parse
from wesbot.outcome import FailedTask, RunOutcome
from wesbot.results import (
    AuditResult,
    CancelResult,
    ChooseServerResult,
    Result,
    ServerRow,
    ServersResult,
    SubscribeResult,
    SubscriptionsResult,
    UnsubscribeResult,
    UseResult,
    WatchResult,
)
from wesbot.slack.blocks import check_limits, help_message, pin_server
from wesbot.slack.cards import (
    cancel_announcement,
    card,
    channel_failed_text,
    digest,
    expired_text,
    gone_text,
    notice,
    notification,
    unreadable_text,
)
from wesbot.slack.replies import merge, render
from wesbot.store.cancels import AuditRow
from wesbot.store.subscriptions import Subscription
from wesbot.store.watches import ChannelWatch

Message = dict[str, Any]
NOW = 1_800_000_000.0


def block_kit_problems(message: Message) -> list[str]:
    """What slack_sdk's models refuse in ``message``, one line per block; empty when all is valid."""
    problems = [f"wesbot limits: {p}" for p in check_limits(message)]
    for i, raw in enumerate(message.get("blocks") or []):
        try:
            block = Block.parse(raw)
        except TypeError as error:  # a field the model requires is missing
            problems.append(f"block {i} ({raw.get('type')}): {error}")
            continue
        if block is None:
            problems.append(f"block {i}: unknown type {raw.get('type')!r}")
            continue
        try:
            validate_tree(block)
        except SlackObjectFormationError as error:
            problems.append(f"block {i} ({raw.get('type')}): {error}")
    return problems


def validate_tree(obj: JsonObject) -> None:
    """``validate_json`` of a block and of everything in it: a block's own check does not look into its
    elements (a button's text over 75 characters passes ActionsBlock's)."""
    obj.validate_json()
    for name in obj.attributes:
        value = getattr(obj, name, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, JsonObject):
                validate_tree(item)


def subscription(**changes: Any) -> Subscription:
    values: dict[str, Any] = dict(
        id=1, run_id="r1" + HOSTILE, channel_id="C1", status="active", created_at=NOW, expires_at=NOW + 86400,
        workflow=HOSTILE * 20, card_ts="1.2", card_version=2, card_synced=1, card_failed=None, reason=None,
        users=("U1", "U2", "<!channel>"), state="RUNNING", state_since=NOW, exit_code=-1,
        start_time="2026-01-01T00:00:00Z", end_time=None)
    values.update(changes)
    return Subscription(**values)


def outcome(state: str = "EXECUTOR_ERROR") -> RunOutcome:
    tasks = [FailedTask(name=HOSTILE * 5 + str(i), exit_code=3, stderr="https://logs/x?a=<1>",
                        stdout=None) for i in range(30)]
    return RunOutcome(run_id="r1" + HOSTILE, state=state, exit_code=1, start_time="2026-01-01T00:00:00Z",
                      end_time="2026-01-01T03:02:01Z", workflow=HOSTILE * 30, failed_tasks=tasks,
                      more_failed_tasks=True, outputs={f"o{i}": "s3://b/" + "x" * 300 for i in range(100)},
                      log_what="stderr of task align", log_text=("error: out of memory\n" + HOSTILE + "\n") * 400)


def watch() -> ChannelWatch:
    return ChannelWatch(id=1, channel_id="C1", kind="failed", tag_key=HOSTILE, tag_value=HOSTILE, created_by="U1",
                        created_at=NOW, active_from=NOW)


def more_results() -> list[Result]:
    server = ServerRow(name="prod", host="wes.prod.example.org", reachable=True, is_default=True,
                       service_name=HOSTILE, version="1.1", wes_versions=["1.0", "1.1"],
                       workflow_types={"CWL": ["v1.0"]}, engines={"cwltool": "3.1"},
                       state_counts={"RUNNING": 3, HOSTILE: 1})
    down = ServerRow(name="staging", host="wes.staging.example.org", reachable=False, error=HOSTILE * 10)
    audit = [AuditRow(id=i, server="prod", at=NOW - i, user_id="U1", channel_id="C1", run_id=HOSTILE,
                      wes_url="https://wes", state_before="RUNNING", outcome="requested", wes_status=None,
                      detail=HOSTILE * 10) for i in range(60)]
    return [
        ChooseServerResult(command=parse("status r1"), servers=[f"s{i}" for i in range(30)], found_on=[],
                           unreadable=["s3"]),
        ChooseServerResult(command=parse("runs"), servers=["prod", "staging"]),
        UseResult(command=parse("use prod"), server="prod", host="wes.prod.example.org", changed=True,
                  set_by="U1", servers=["prod", "staging"]),
        UseResult(command=parse("use"), server=None, servers=["prod", "staging"]),
        ServersResult(command=parse("servers"), servers=[server, down] * 20, held=[HOSTILE] * 3),
        SubscribeResult(command=parse("subscribe r1"), run_id=HOSTILE, state="RUNNING", created=True,
                        watchers=("U1", "U2")),
        UnsubscribeResult(command=parse("unsubscribe r1"), run_id=HOSTILE, outcome="user_removed"),
        SubscriptionsResult(command=parse("subscriptions"), channel_id="C1",
                            subscriptions=[subscription(id=i) for i in range(120)], watches=[watch()] * 30),
        WatchResult(command=parse("watch failed"), action="watch", changed=True, description=HOSTILE),
        AuditResult(command=parse("audit"), run_id=None, rows=audit),
        CancelResult(command=parse("cancel r1"), view=CancelView(stage="prompt", run_id=HOSTILE, state="RUNNING",
                                                                 workflow=HOSTILE, running_for="2h 05m",
                                                                 who_may="anyone in the channel")),
    ]


def replies() -> list[tuple[str, Message]]:
    out = [(type(r).__name__, render(r, host="prod (wes.example.org)")) for r in [*results(), *more_results()]]
    out += [(f"{type(r).__name__} with Open", render(r, host="h", run_url="https://ui.example.org/x?run={run_id}"))
            for r in results()]
    out += [(f"help {topic}", help_message(topic)) for topic in (None, "status", "watch")]
    return out


def watcher_messages() -> list[tuple[str, Message]]:
    sub = subscription()
    return [
        ("card, active", card(sub, host="prod (wes.example.org)")),
        ("card, gone", card(subscription(status="gone", state=None), host="h")),
        ("notification, failed", notification(sub, outcome(), host="prod (wes.example.org)")),
        ("notification, watch", notification(None, outcome("COMPLETE"), host="h", note=HOSTILE)),
        ("notification, reasons and Open", notification(sub, replace(
            outcome(), log_reasons=(HOSTILE * 10, "error: out of memory", "x" * 5000),
            link="https://ui.example.org/runs/r1%3C"), host="h")),
        ("notification, outputs as links", notification(sub, replace(outcome("COMPLETE"), outputs={
            "bam": [{"class": "File", "location": f"https://data.example.org/{HOSTILE}/{i}.bam", "basename": HOSTILE,
                     "size": 10**i} for i in range(30)],
            "sheet": [{"file_name": HOSTILE * 30, "file_url": "http://wes/x"}]}, exit_code=0,
            link="https://ui.example.org/runs/" + "r" * 2900), host="h")),
        ("digest", digest([outcome()] * 300, what="failed", host="h")),
        ("notice, gone", notice(sub, gone_text(sub.run_id, HOSTILE, server="prod"), mention=True)),
        ("notice, expired", notice(sub, expired_text(sub, 14, server="prod"), mention=True)),
        ("notice, unreadable", notice(sub, unreadable_text(sub.run_id, NOW - 700, NOW, HOSTILE * 50))),
        ("notice, channel failed", notice(None, channel_failed_text("C1", "not_in_channel", sub.run_id))),
        ("cancel announcement", cancel_announcement("U1", HOSTILE, "RUNNING", server="prod")),
    ]


ALL = [*replies(), *watcher_messages()]


@pytest.mark.parametrize(("kind", "message"), ALL, ids=[kind for kind, _ in ALL])
def test_every_message_is_valid_block_kit(kind: str, message: Message) -> None:
    assert block_kit_problems(message) == []
    assert block_kit_problems(pin_server(message, "prod")) == []  # bound to a server, it is still valid


def test_several_servers_answers_merged_are_valid_block_kit() -> None:
    parts = [render(r, host="h") for r in more_results()[:6]]
    message = merge(parts, [f"server {i}" for i in range(len(parts))])
    assert block_kit_problems(message) == []


def test_the_check_catches_what_slack_would_refuse() -> None:
    too_long = {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}
    unknown = {"text": "x", "blocks": [{"type": "nonsense"}]}
    incomplete = {"text": "x", "blocks": [{"type": "section"}, {"type": "context"}]}
    no_action_text = {"text": "x", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "action_id": "a", "value": "v", "text": {"type": "plain_text", "text": "b" * 80}}]}]}
    assert any("3000" in p for p in block_kit_problems(too_long))
    assert block_kit_problems(unknown) == ["block 0: unknown type 'nonsense'"]
    assert len(block_kit_problems(incomplete)) == 2
    assert any("75" in p for p in block_kit_problems(no_action_text))
    assert len(hostile_log().stderr or "") > 3000  # the catalogue's logs really are oversized
