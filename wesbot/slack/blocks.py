"""Block Kit primitives, pure: no I/O. The per-result replies are built from these in :mod:`.replies`.

Every string that came from WES goes through :func:`escape` (or :func:`code` / :func:`code_block`), so
``<!channel>``, ``<@U123>`` or ``<http://evil|click>`` in a task name shows as text and pings no one.
Every message stays within Block Kit's limits (see :func:`check_limits`), shortening with a note.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..commands import OPTIONS, OPTIONS_HELP, Subcommand, group_of, grouped, on_terminal, runs_on_terminal, subcommand
from ..format import epoch_time, is_url, parse_time, shorten, unparsed_time, utc_text
from ..wes.logs import sanitize_text

Message = dict[str, Any]
Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_TEXT = 75
MAX_HEADER = 150
MAX_FALLBACK = 3000
MAX_ACTION_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10

# Action ids. Every navigation button carries the command text it runs in its value.
ACTION_RUN = "wes_run"  # run the command in the value, as a new ephemeral reply
ACTION_PAGE = "wes_page"  # same, replacing the message the button is on
ACTION_SHARE = "wes_share"  # post the result of the command in the channel
ACTION_CANCEL = "wes_cancel"  # the red "Cancel run" button of a cancel confirmation
ACTION_KEEP = "wes_keep"  # "Keep running": dismiss the confirmation

_MENTIONS = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def escape(text: object, *, multiline: bool = False) -> str:
    """Make text from WES inert in mrkdwn: no links, no mentions, no broadcasts; and no control or
    bidi characters or terminal escapes (:func:`~wesbot.wes.logs.sanitize_text`)."""
    out = sanitize_text(str(text), multiline=multiline).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A bare @channel is not a mention without link_names, but make sure no client parses it as one.
    return _MENTIONS.sub("@\u200b\\1", out)


def code(text: object, limit: int = 200) -> str:
    """Inline code of WES text: escaped, one line, and no backtick can close the span."""
    one_line = " ".join(str(text).split()) or " "
    return "`" + escape(shorten(one_line, limit)).replace("`", "ˋ") + "`"


def code_block(text: str, limit: int) -> str:
    """A code block of WES text that cannot be broken out of, within ``limit`` characters in total.

    Every backtick becomes a look-alike: even one next to the fences would end the block early."""
    body = escape(text, multiline=True).replace("`", "ˋ")
    return "```" + shorten(body or " ", max(limit - 6, 1)) + "```"


def link(url: str, label: str) -> str:
    """A link to an http(s) URL from WES; anything else is shown as escaped code."""
    if not is_url(url):
        return code(url, 300)
    safe_url = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe_url}|{escape(label)}>"


def section(markdown: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": shorten(markdown, MAX_SECTION)}}


def fields_section(pairs: list[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": shorten(f"*{label}*\n{value}", MAX_FIELD)} for label, value in pairs[:MAX_FIELDS]
        ],
    }


def header(text: str) -> Block:
    text = sanitize_text(text, multiline=False)
    return {"type": "header", "text": {"type": "plain_text", "text": shorten(text, MAX_HEADER), "emoji": False}}


def context(markdown: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": shorten(markdown, MAX_SECTION)}]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block | None:
    """A button, or None when its value would not fit (a very long page token)."""
    if len(value) > MAX_BUTTON_VALUE:
        return None
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": shorten(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def run_button(text: str, value: str) -> Block | None:
    """A button that runs the command in ``value``. Its action_id names the subcommand, because
    Slack requires action_ids to be unique within a block (``wes_run:details``, ``wes_run:tasks``)."""
    return button(text, f"{ACTION_RUN}:{value.split(' ', 1)[0]}", value)


def actions(*elements: Block | None) -> list[Block]:
    kept = [e for e in elements if e is not None][:MAX_ACTION_ELEMENTS]
    return [{"type": "actions", "elements": kept}] if kept else []


def chunk_lines(lines: list[str], limit: int = MAX_SECTION) -> list[str]:
    """Pack lines into texts of at most ``limit`` characters each (a line longer than that is cut)."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = shorten(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def error_message(text: str, usage: str | None = None) -> Message:
    lines = [f":warning: {escape(text)}"]
    if usage:
        lines.append(code(usage, 300))
    return {"text": shorten(" ".join([escape(text), escape(usage or "")]).strip(), MAX_FALLBACK),
            "blocks": [section("\n".join(lines))]}


def help_message(topic: str | None = None) -> Message:
    """``/wes help``: the subcommands under their headings, one line each with an example, on one screen;
    ``/wes help NAME``: one subcommand in full."""
    if topic is not None:
        return _help_topic(subcommand(topic))
    blocks = [section("*wesbot* answers questions about workflow runs on your WES server.")]
    for title, subs in grouped():
        blocks.append(section("\n".join([f"*{title}*", *(_help_line(sub) for sub in subs)])))
    blocks.append(context(OPTIONS_HELP))
    fallback = "; ".join(f"{title}: {', '.join(sub.name for sub in subs)}" for title, subs in grouped())
    return {"text": "wesbot help: " + fallback, "blocks": blocks}


def _aliases(sub: Subcommand) -> str:
    return f" (alias {', '.join(code(alias) for alias in sub.aliases)})" if sub.aliases else ""


def _help_line(sub: Subcommand) -> str:
    """``/wes status RUN_ID`` — the run's state, e.g. ``/wes status 3f2a…`` (only the first form of a usage
    that has several; ``/wes help NAME`` shows them all)."""
    first = sub.usage.split(" | ")[0]
    example = f", e.g. {code(sub.example)}" if sub.example != first else ""
    return f"{code(first)} — {sub.brief}{_aliases(sub)}{example}"


def _help_topic(sub: Subcommand) -> Message:
    lines = [f"*/wes {sub.name}*{_aliases(sub)}, under {group_of(sub.name)}",
             *(code(form) for form in sub.usage.split(" | ")), sub.summary, f"*Example:* {code(sub.example)}"]
    if sub.options:
        lines += ["*Options:*", *(f"• {code(key)} {OPTIONS[key]}" for key in sub.options)]
    if runs_on_terminal(sub.name):
        lines.append(f"*On the terminal:* {code(on_terminal(sub).usage)}")
    return {"text": "wesbot help: " + sub.usage, "blocks": [section(chunk) for chunk in chunk_lines(lines)]}


def check_limits(message: Message) -> list[str]:
    """Every way ``message`` breaks Block Kit's limits (empty when it fits). Used by tests."""
    problems: list[str] = []
    blocks = message.get("blocks", [])
    if not message.get("text"):
        problems.append("no text fallback")
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        text = block.get("text", {}).get("text", "")
        limit = MAX_HEADER if block["type"] == "header" else MAX_SECTION
        if len(text) > limit:
            problems.append(f"block {i}: text of {len(text)} > {limit}")
        accessory = block.get("accessory", {})
        if len(accessory.get("value", "")) > MAX_BUTTON_VALUE:
            problems.append(f"block {i}: accessory value over {MAX_BUTTON_VALUE}")
        fields = block.get("fields", [])
        if len(fields) > MAX_FIELDS:
            problems.append(f"block {i}: {len(fields)} fields")
        problems += [f"block {i}: field over {MAX_FIELD}" for f in fields if len(f["text"]) > MAX_FIELD]
        for element in block.get("elements", []):
            if len(element.get("value", "")) > MAX_BUTTON_VALUE:
                problems.append(f"block {i}: button value over {MAX_BUTTON_VALUE}")
            if len(element.get("text", {}).get("text", "") if isinstance(element.get("text"), dict) else
                   element.get("text", "")) > MAX_SECTION:
                problems.append(f"block {i}: element text too long")
        if block["type"] == "actions" and len(block["elements"]) > MAX_ACTION_ELEMENTS:
            problems.append(f"block {i}: too many buttons")
        action_ids = [e["action_id"] for e in block.get("elements", []) if "action_id" in e]
        if len(action_ids) != len(set(action_ids)):
            problems.append(f"block {i}: action_ids are not unique: {action_ids}")
    return problems


# The buttons whose value is command text (parsed again on a click), which therefore name their server.
_COMMAND_ACTIONS = (ACTION_RUN, ACTION_PAGE, ACTION_SHARE, ACTION_CANCEL)


def pin_server(message: Message, server: str) -> Message:
    """``message`` with every command button bound to ``server``, so that a click acts on the server the
    message came from whatever the channel's default is by then. A button whose value would no longer fit is
    left out rather than sent to another server."""
    blocks = [_pin_block(block, server) for block in message.get("blocks") or []]
    return {**message, "blocks": [block for block in blocks if block is not None]} if "blocks" in message \
        else message


def _pin_block(block: Block, server: str) -> Block | None:
    if block.get("type") != "actions":
        return block
    elements = [_pin_button(element, server) for element in block.get("elements") or []]
    kept = [element for element in elements if element is not None]
    return {**block, "elements": kept} if kept else None


def _pin_button(element: Block, server: str) -> Block | None:
    action_id = str(element.get("action_id") or "")
    value = element.get("value")
    if not isinstance(value, str) or not action_id.startswith(_COMMAND_ACTIONS) or _names_server(value):
        return element
    pinned = f"{value} --server={server}"
    return {**element, "value": pinned} if len(pinned) <= MAX_BUTTON_VALUE else None


def _names_server(value: str) -> bool:
    return any(word in ("--server", "-s") or word.startswith("--server=") for word in value.split())


# -- times: each reader sees them in their own time zone ------------------------------------------------

WHEN = "{date_short_pretty} {time}"  # "Today 10:41 AM", "Dec 4, 2026 10:41 AM", in the reader's time zone
WHEN_AGO = "{date_short_pretty} {time} ({ago})"  # and "(2 hours ago)", which Slack keeps current itself


def slack_time(epoch: float | None, *, ago: bool = False) -> str:
    """The one way a time is shown in Slack: Slack's date token, so that each reader sees their own time
    zone, with the UTC text as its fallback (for clients that cannot format it). "—" when it is unknown."""
    moment = epoch_time(epoch)
    if moment is None:
        return "—"
    return f"<!date^{math.floor(moment.timestamp())}^{WHEN_AGO if ago else WHEN}|{utc_text(moment)}>"


def slack_wes_time(value: str | None, *, ago: bool = False) -> str:
    """A time from WES (ISO 8601) as :func:`slack_time` shows it; one that does not parse is shown as the
    server wrote it, cleaned and escaped, never inside a date token."""
    parsed = parse_time(value)
    return escape(unparsed_time(value)) if parsed is None else slack_time(parsed.timestamp(), ago=ago)
