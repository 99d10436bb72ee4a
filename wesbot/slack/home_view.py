"""The App Home tab as Slack shows it: a pure function of plain data (:class:`HomeData`) and the time.

The tab shows the runs a person watches (with Unsubscribe and Details), the runs of theirs that ended lately,
the channel watches they set (with Unwatch), each WES server's health and latest failures, and how to use
wesbot. Each part shows so many rows, then "and N more" and where to see them, so the view stays within
Slack's 100 blocks however much someone follows. :mod:`wesbot.slack.home` gathers the data and publishes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..commands import OPTIONS_HELP, Command, group_of, grouped
from ..format import elapsed, human_duration
from ..results import ServerRow
from ..store.subscriptions import EndedRun, Subscription
from ..store.watches import ChannelWatch
from .blocks import Block, actions, button, code, context, escape, header, section, slack_time
from .cards import state_icon

# The tab's buttons: wes_home:unsubscribe, wes_home:unwatch, wes_home:details.
ACTION_HOME = "wes_home"

# Slack's limit for a view, and how much of it each part may take: at most 2 + 43 + 6 + 13 + 14 + 5 = 83 blocks.
MAX_VIEW_BLOCKS = 100
MAX_HOME_RUNS = 20  # two blocks each: the run, its buttons
MAX_HOME_ENDED = 5
MAX_HOME_WATCHES = 10
MAX_HOME_SERVERS = 10
MAX_FAILURES = 3  # of each server, among its last ENDED_SCAN ended runs
ENDED_SCAN = 200
ENDED_DAYS = 7.0
MAX_MORE_CHANNELS = 10
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{1,40}$")

Mine = tuple[str, Subscription]  # (server name, subscription)


# -- the data the view is built from ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServerHome:
    """One server as the tab shows it: GET /service-info's row (None: not read in this process), and its latest
    failures from the store."""

    name: str
    host: str
    row: ServerRow | None = None
    failures: tuple[EndedRun, ...] = ()


@dataclass(frozen=True, kw_only=True)
class HomeData:
    """What one person's tab shows. ``runs``: their active subscriptions, ``ended``: those whose run ended lately,
    ``watches``: the channel watches they set, each with its server's name; ``health_at``: when the servers'
    rows were read (wall time; None: never in this process); ``checking``: they are being read right now."""

    user_id: str
    runs: Sequence[Mine] = ()
    ended: Sequence[Mine] = ()
    watches: Sequence[tuple[str, ChannelWatch]] = ()
    servers: Sequence[ServerHome] = ()
    health_at: float | None = None
    checking: bool = False
    several: bool = False


# -- the view (pure) -----------------------------------------------------------------------------------------


def home_view(data: HomeData, *, now: float) -> dict[str, Any]:
    """The Home tab of ``data.user_id`` at ``now``: within Slack's limits however much they follow (each part
    shows so many rows, then "and N more" and where to see them)."""
    blocks: list[Block] = [
        header("wesbot"),
        context(f"The runs you watch, the channel watches you set and the WES servers, as of {slack_time(now)}."),
    ]
    for part in (_runs_part(data, now), _ended_part(data), _watches_part(data), _servers_part(data), _how_to()):
        blocks += part
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def _divider() -> Block:
    return {"type": "divider"}


def channel_mention(channel_id: str) -> str:
    """A channel as Slack shows it (``<#C123>``), for ids Slack gave; a direct message in words."""
    if not CHANNEL_ID.match(channel_id):
        return code(channel_id, 40)
    return "a direct message" if channel_id.startswith("D") else f"<#{channel_id}>"


def _where(server: str, channel_id: str, several: bool) -> str:
    return f"in {channel_mention(channel_id)}" + (f" on *{escape(server)}*" if several else "")


def _runs_part(data: HomeData, now: float) -> list[Block]:
    blocks: list[Block] = [_divider(), header("Runs you watch")]
    if not data.runs:
        blocks.append(section("You watch no runs. `/wes subscribe RUN_ID` in a channel watches one: that channel "
                              "hears when it ends, and this tab shows it meanwhile."))
        return blocks
    for server, sub in data.runs[:MAX_HOME_RUNS]:
        blocks.append(section(_run_text(server, sub, now, data.several)))
        blocks += actions(_unsubscribe_button(server, sub), _details_button(server, sub.run_id))
    if len(data.runs) > MAX_HOME_RUNS:
        blocks.append(context(_more_runs(data.runs[MAX_HOME_RUNS:])))
    return blocks


def _run_text(server: str, sub: Subscription, now: float, several: bool) -> str:
    state = escape(sub.state or "not read yet")
    head = f"{state_icon(sub.state, sub.exit_code)} {code(sub.run_id, 80)} *{state}*"
    facts = [_where(server, sub.channel_id, several)]
    running = elapsed(sub.start_time, None, now=now) if sub.start_time else None
    if running is not None:
        facts.append(f"running for {human_duration(running)}")
    if sub.workflow:
        facts.append(code(sub.workflow, 80))
    text = head + "\n" + " · ".join(facts)
    if sub.failing_since is not None:
        text += f"\n_That is its state when last read: wesbot cannot reach the WES server since " \
                f"{slack_time(sub.failing_since)}._"
    return text


def _more_runs(rest: Sequence[Mine]) -> str:
    channels = sorted({sub.channel_id for _, sub in rest})
    named = ", ".join(channel_mention(channel) for channel in channels[:MAX_MORE_CHANNELS])
    if len(channels) > MAX_MORE_CHANNELS:
        named += f" and {len(channels) - MAX_MORE_CHANNELS} more channels"
    return f"…and {len(rest)} more, in {named}: `/wes subscriptions` in each channel lists all its runs."


def _button_value(**fields: object) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def _unsubscribe_button(server: str, sub: Subscription) -> Block | None:
    return button("Unsubscribe me", f"{ACTION_HOME}:unsubscribe",
                  _button_value(server=server, channel=sub.channel_id, run=sub.run_id))


def _details_button(server: str, run_id: str) -> Block | None:
    # Command text, read back by the same parser as typed text (bound to its server).
    return button("Details", f"{ACTION_HOME}:details", Command(name="details", run_id=run_id).text(server=server))


def _ended_part(data: HomeData) -> list[Block]:
    if not data.ended:
        return []
    blocks: list[Block] = [section(f"*Ended in the last {ENDED_DAYS:g} days*")]
    for server, sub in data.ended[:MAX_HOME_ENDED]:
        text = (f"{state_icon(sub.state, sub.exit_code)} {code(sub.run_id, 80)} *{_state(sub.state, sub.exit_code)}*"
                f"\n{_where(server, sub.channel_id, data.several)} · ended {slack_time(sub.state_since, ago=True)}")
        block = section(text)
        details = _details_button(server, sub.run_id)
        if details is not None:
            block["accessory"] = details
        blocks.append(block)
    return blocks


def _state(state: str | None, exit_code: int | None) -> str:
    label = escape(state or "(no state)")
    return label + (f" (exit {exit_code})" if exit_code not in (None, -1) else "")


def _watches_part(data: HomeData) -> list[Block]:
    blocks: list[Block] = [_divider(), header("Your channel watches")]
    if not data.watches:
        blocks.append(section("You set no channel watch. `/wes watch failed` in a channel tells that channel of "
                              "every run that fails."))
        return blocks
    for server, watch in data.watches[:MAX_HOME_WATCHES]:
        block = section(f":eyes: {channel_mention(watch.channel_id)} hears of {escape(watch.describe())}"
                        + (f" on *{escape(server)}*" if data.several else "")
                        + f"\nsince {slack_time(watch.created_at)}")
        unwatch = button("Unwatch", f"{ACTION_HOME}:unwatch", _button_value(server=server, watch=watch.id))
        if unwatch is not None:
            block["accessory"] = unwatch
        blocks.append(block)
    if len(data.watches) > MAX_HOME_WATCHES:
        blocks.append(context(f"…and {len(data.watches) - MAX_HOME_WATCHES} more: `/wes subscriptions` in each "
                              "channel lists its watches."))
    return blocks


def _servers_part(data: HomeData) -> list[Block]:
    count = len(data.servers)
    blocks: list[Block] = [_divider(), header("WES servers" if count != 1 else "WES server")]
    for server in data.servers[:MAX_HOME_SERVERS]:
        blocks.append(section(_server_text(server)))
    if count > MAX_HOME_SERVERS:
        blocks.append(context(f"…and {count - MAX_HOME_SERVERS} more: `/wes servers` lists them all."))
    blocks.append(context(_health_note(data)))
    return blocks


def _server_text(server: ServerHome) -> str:
    row = server.row
    where = f"*{escape(server.name)}* {code(server.host, 120)}"
    if row is None:
        text = f":grey_question: {where}\nnot checked yet"
    elif row.reachable:
        service = " ".join(part for part in (row.service_name, row.version) if part)
        text = f":white_check_mark: {where} reachable" + (f": {escape(service)}" if service else "")
        if row.state_counts:
            counts = ", ".join(f"{escape(state)} {count}" for state, count in list(row.state_counts.items())[:12])
            text += f"\nruns: {counts}"
    else:
        text = f":x: {where} unreachable: {escape(row.error or 'no answer')}"
    if server.failures:
        failures = ", ".join(f"{code(run.run_id, 60)} {_state(run.state, run.exit_code)} "
                             f"{slack_time(run.ended_at, ago=True)}" for run in server.failures)
        text += f"\n*Latest failures:* {failures}"
    else:
        text += "\nNo failure among the runs watched here lately."
    return text


def _health_note(data: HomeData) -> str:
    failures = "Latest failures: of the runs subscribed to in any channel."
    if data.checking:
        return "Checking the servers now…" + (f" (last checked {slack_time(data.health_at, ago=True)})"
                                              if data.health_at is not None else "") + f" {failures}"
    if data.health_at is None:
        return f"Open this tab again for the servers' health. {failures}"
    return f"Servers' health as of {slack_time(data.health_at, ago=True)}. {failures}"


def _first_usage(usage: str) -> str:
    return usage.split(" | ")[0]


def _how_to() -> list[Block]:
    """The commands, from :mod:`wesbot.commands`: those that follow runs in full, the others by their usage."""
    follow = group_of("subscribe")
    lines: list[str] = []
    others: list[str] = []
    for title, subs in grouped():
        if title == follow:
            lines = [f"*{title}* (type them in the channel that should hear)",
                     *(f"{code(_first_usage(sub.usage))} — {sub.brief}" for sub in subs)]
        else:
            others.append(f"*{title}:* " + ", ".join(code(_first_usage(sub.usage)) for sub in subs))
    return [_divider(), header("How to"), section("\n".join(lines)), section("\n".join(others)),
            context(OPTIONS_HELP)]


