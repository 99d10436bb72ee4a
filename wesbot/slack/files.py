"""Uploading a picture to Slack: for ``/wes timeline`` (slack_sdk's ``files_upload_v2``, the Bolt app's client),
and what to tell the user when Slack refuses it; where the watcher's poster may send a file's bytes.

``files_upload_v2`` is three Web API steps: ``files.getUploadURLExternal`` (the file's name and length) gives an
upload URL and a file id, the bytes are POSTed to that URL, and ``files.completeUploadExternal`` shares the file
in a channel (a thread, with a comment). It needs the ``files:write`` scope, and the bot in the channel.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("wesbot.slack.files")

# Where Slack hands out upload URLs (files.getUploadURLExternal): https://files.slack.com/upload/v1/...
SLACK_FILE_HOSTS = re.compile(r"files(-[a-z0-9-]+)?\.slack(-gov)?\.com")


@dataclass(frozen=True, kw_only=True)
class Uploaded:
    """How an upload went: ``ok`` with Slack's file id, or Slack's error code (or the exception's name)."""

    ok: bool
    file_id: str | None = None
    error: str | None = None


def upload_png(client: Any, channel: str, thread_ts: str | None, filename: str, png: bytes,
               comment: str | None, *, title: str | None = None) -> Uploaded:
    """Upload ``png`` to ``channel`` (in ``thread_ts``'s thread if given) with ``comment`` above it, through
    slack_sdk's ``files_upload_v2`` on ``client`` (a ``WebClient``). Never raises."""
    from slack_sdk.errors import SlackApiError

    try:
        response = client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename, content=png,
                                          title=title or filename, initial_comment=comment or None)
    except SlackApiError as error:
        code = error.response.get("error") if error.response is not None else None
        return Uploaded(ok=False, error=str(code or "error"))
    except Exception as error:  # noqa: BLE001 - the upload URL refused the bytes, a timeout, a bad answer
        logger.info("uploading %s to %s failed: %s", filename, channel, type(error).__name__)
        return Uploaded(ok=False, error=type(error).__name__)
    files = response.get("files") or []
    file_id = files[0].get("id") if files and isinstance(files[0], dict) else None
    return Uploaded(ok=True, file_id=str(file_id) if file_id else None)


_REASONS = {
    "not_in_channel": "wesbot is not a member of this channel, and Slack shares files only where the bot is: "
                      "`/invite @wesbot`, then ask again",
    "channel_not_found": "Slack does not let wesbot post files in this conversation (a private channel or a DM it "
                         "is not in): `/invite @wesbot`, or ask in a channel it is in",
    "is_archived": "this channel is archived: ask in another channel",
    "restricted_action": "this workspace does not let apps post files in this channel: ask an admin, or ask in "
                         "another channel",
    "missing_scope": "the Slack app lacks the `files:write` scope: add it (it is in manifest.yml) and reinstall "
                     "the app",
    "ratelimited": "Slack is limiting uploads right now: try again in a minute",
    "no_client": "uploading pictures is not set up here (no Slack client, or no channel)",
}


def refusal(error: str | None) -> str:
    """Why the picture could not be posted, and what to do, in one sentence (without its full stop)."""
    from .poster import REFUSED_TOKEN_ERRORS  # the poster imports this module

    code = error or "error"
    if code in _REASONS:
        return f"Could not post the picture: {_REASONS[code]}"
    if code in REFUSED_TOKEN_ERRORS:
        return f"Could not post the picture: Slack refuses wesbot's bot token (`{code}`): fix SLACK_BOT_TOKEN"
    return (f"Could not post the picture: Slack answered `{code[:80]}`. Try again; if it keeps failing, "
            "wesbot's log says more")


def upload_url_allowed(url: object, api_url: str) -> bool:
    """Whether the bytes of a file may go to ``url`` (what files.getUploadURLExternal answered): on the origin
    (scheme and host) of ``api_url`` (SLACK_API_URL), or https on Slack's file upload host."""
    if not isinstance(url, str):
        return False
    try:
        parts, api = urlsplit(url), urlsplit(api_url)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if (parts.scheme, parts.hostname) == (api.scheme, api.hostname):
        return True
    return parts.scheme == "https" and SLACK_FILE_HOSTS.fullmatch(parts.hostname) is not None
