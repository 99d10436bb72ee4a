"""Posting to the Slack Web API, with every failure sorted into: retry later, or give up for good."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger("wesbot.slack.poster")

# Errors after which posting to that channel cannot succeed until a person changes something.
PERMANENT_CHANNEL_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "account_inactive", "restricted_action",
    "cannot_dm_bot", "user_not_found", "user_disabled", "team_access_not_granted", "missing_scope",
    "not_authed", "invalid_auth", "token_revoked", "token_expired", "no_permission", "ekm_access_denied",
})
# Errors about this one message: retrying it unchanged cannot help.
PERMANENT_MESSAGE_ERRORS = frozenset({
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "too_many_attachments",
    "message_not_found", "cant_update_message", "edit_window_closed", "invalid_arguments", "metadata_too_large",
    "invalid_metadata_format", "invalid_metadata_schema",
})


METADATA_EVENT = "wesbot_post"


@dataclass(frozen=True, kw_only=True)
class PostResult:
    ok: bool
    ts: str | None = None
    error: str | None = None
    # Slack said 429: wait this long before the next try.
    retry_after: float | None = None
    # The error will not go away by itself ("not_in_channel"): stop retrying.
    permanent: bool = False
    # The error is about the channel (every message there will fail), not this message.
    channel_error: bool = False


class SlackPoster:
    """chat.postMessage / chat.update, never raising: each call returns a :class:`PostResult`."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> PostResult:
        """Post ``message``. ``key`` goes in the message's metadata, so :meth:`find_posted` can tell later
        whether a post interrupted by a crash reached Slack."""
        kwargs: dict[str, Any] = {"channel": channel, "text": message.get("text", ""), "unfurl_links": False,
                                  "unfurl_media": False}
        if key:
            kwargs["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        if message.get("blocks"):
            kwargs["blocks"] = message["blocks"]
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        return self._call("chat_postMessage", kwargs)

    def find_posted(self, channel: str, key: str, *, thread_ts: str | None, oldest: float) -> str | None | bool:
        """Whether a message posted with ``key`` is in ``channel`` (in ``thread_ts``'s thread if given).

        Returns its ts when found, False when it is certainly not there, None when Slack cannot tell us
        (no history scope, a DM, an error): the caller then posts again, at least once rather than never.
        """
        try:
            if thread_ts:
                response = self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200,
                                                             include_all_metadata=True)
            else:
                response = self.client.conversations_history(channel=channel, oldest=f"{oldest:.6f}", limit=200,
                                                             include_all_metadata=True)
        except SlackApiError as error:
            logger.info("cannot check whether a post reached %s: %s", channel, error.response.get("error"))
            return None
        except Exception as error:
            logger.info("cannot check whether a post reached %s: %s", channel, type(error).__name__)
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                return str(message.get("ts") or "") or True
        return False

    def update(self, channel: str, ts: str, message: dict[str, Any]) -> PostResult:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": message.get("text", "")}
        if message.get("blocks"):
            kwargs["blocks"] = message["blocks"]
        return self._call("chat_update", kwargs)

    def _call(self, method: str, kwargs: dict[str, Any]) -> PostResult:
        try:
            response = getattr(self.client, method)(**kwargs)
        except SlackApiError as error:
            return classify(error.response.status_code, error.response.headers, error.response.data)
        except Exception as error:  # connection refused, timeout, DNS: slack_sdk raises urllib's errors
            logger.info("Slack %s failed: %s", method, type(error).__name__)
            return PostResult(ok=False, error=f"connection error ({type(error).__name__})")
        ts = response.get("ts")
        return PostResult(ok=True, ts=str(ts) if ts else None)


def classify(status: int, headers: Any, data: Any) -> PostResult:
    """Sort a failed Web API call: 429 (retry after), 5xx (retry), or Slack's error code."""
    if status == 429:
        retry_after = _header(headers, "retry-after")
        try:
            seconds = float(retry_after) if retry_after is not None else 30.0
        except ValueError:
            seconds = 30.0
        return PostResult(ok=False, error="rate limited (429)", retry_after=max(seconds, 1.0))
    if status >= 500:
        return PostResult(ok=False, error=f"Slack answered {status}")
    error = data.get("error") if isinstance(data, dict) else None
    error = str(error or f"HTTP {status}")
    if error in PERMANENT_CHANNEL_ERRORS:
        return PostResult(ok=False, error=error, permanent=True, channel_error=True)
    if error in PERMANENT_MESSAGE_ERRORS:
        return PostResult(ok=False, error=error, permanent=True)
    if error == "ratelimited":
        return PostResult(ok=False, error=error, retry_after=30.0)
    return PostResult(ok=False, error=error)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
