"""Whether wesbot can post in a channel, asked before a subscription or a watch is stored.

A subscription whose card cannot be posted, or a watch whose alerts cannot, is a promise wesbot cannot keep:
the person who typed the command is told at once, with the fix, and nothing is stored. The answer comes from
``conversations.info`` (the ``channels:read``, ``groups:read``, ``im:read`` and ``mpim:read`` scopes). Where
Slack cannot tell (a missing scope, an error, no answer) the command goes ahead as before: the watcher's own
fallback (a DM to the subscriber) still covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INVITE = "`/invite @wesbot`"
PUBLIC_SCOPE = "chat:write.public"


def refusal(status: int, data: Any, scopes: list[str] | None = None) -> str | None:
    """What to tell someone who asks wesbot to post in a channel it cannot post in; None when it can (or when
    Slack's answer to ``conversations.info`` does not tell). ``scopes`` are the token's (``x-oauth-scopes``)."""
    if status != 200 or not isinstance(data, Mapping):
        return None
    if not data.get("ok"):
        return _refused(str(data.get("error") or ""))
    channel = data.get("channel")
    if not isinstance(channel, Mapping):
        return None
    return _closed(channel, scopes)


def _refused(error: str) -> str | None:
    if error == "channel_not_found":
        return ("wesbot cannot see this conversation (a private channel it is not in, or a direct message "
                f"between other people), so it could not post here. Invite it with {INVITE}, or use a channel it "
                "is in.")
    if error == "is_archived":
        return "this channel is archived, so wesbot cannot post in it."
    return None


def _closed(channel: Mapping[str, Any], scopes: list[str] | None) -> str | None:
    if channel.get("is_archived") is True:
        return "this channel is archived, so wesbot cannot post in it."
    if channel.get("is_im") is True or channel.get("is_member") is not False:
        return None  # the bot's own DM (it sees no one else's), or a channel it is in
    private = channel.get("is_private") is True or channel.get("is_mpim") is True or channel.get("is_group") is True
    if private:
        return f"wesbot is not in this private conversation, so it could not post here. Invite it with {INVITE}."
    if scopes is not None and PUBLIC_SCOPE not in scopes:
        return (f"wesbot is not in this channel and its token lacks the {PUBLIC_SCOPE} scope that would let it "
                f"post anyway. Invite it with {INVITE} (or reinstall the app with the scopes in manifest.yml).")
    return None  # a public channel: chat:write.public lets wesbot post without joining
