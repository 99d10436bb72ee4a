"""Posting to the Slack Web API (and uploading files), with every failure sorted into: retry later, or give up.

The watcher posts many messages (cards, notifications, digests), so it talks to the Web API over one pooled
httpx client: slack_sdk's WebClient opens a new connection for every call, which costs several times the
CPU per post. The Bolt app keeps slack_sdk for everything else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .. import observe
from .files import upload_url_allowed
from .reach import refusal

logger = logging.getLogger("wesbot.slack.poster")

# Errors after which posting to that channel cannot succeed until a person changes something.
PERMANENT_CHANNEL_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "restricted_action",
    "cannot_dm_bot", "user_not_found", "user_disabled", "team_access_not_granted", "ekm_access_denied",
})
# Slack's answers that mean the token itself is wrong (start-up and `wesbot check` stop on them).
REFUSED_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                                  "not_allowed_token_type", "invalid_token", "no_permission"})
# Errors about the bot's token or installation, not the channel: nothing is given up, posting resumes once
# someone fixes SLACK_BOT_TOKEN (account_inactive is about the token's user, so it is one of them).
TOKEN_ERRORS = frozenset({
    "invalid_auth", "token_revoked", "not_authed", "account_inactive", "missing_scope", "token_expired",
    "no_permission",
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
    # The token is refused: retry everything later, with a long backoff (see TOKEN_ERRORS).
    token_error: bool = False
    # An upload: Slack's id of the file.
    file_id: str | None = None


class SlackPoster:
    """chat.postMessage / chat.update / a look for a post, never raising: each call returns what happened.

    Thread-safe (one httpx client shared by the sender's threads). ``api_url`` is ``SLACK_API_URL``.
    """

    def __init__(self, token: str, api_url: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._api_url = api_url
        self._client = httpx.Client(
            base_url=api_url.rstrip("/") + "/", timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "wesbot"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )
        # For response_url replies and file uploads: a URL that is its own credential, so the bot token is never
        # sent with it.
        self._hooks = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": "wesbot"})

    def close(self) -> None:
        self._client.close()
        self._hooks.close()

    def __enter__(self) -> SlackPoster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def respond(self, response_url: str, message: dict[str, Any]) -> bool:
        """Answer through a ``response_url`` (an ephemeral message to whoever clicked). True when Slack took it.
        The URL came with a verified request and passed the gate's host check (``slack.gate``)."""
        try:
            response = self._hooks.post(response_url, json=message)
        except httpx.HTTPError as error:
            logger.info("could not answer through a response_url: %s", type(error).__name__)
            return False
        return response.status_code == 200

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> PostResult:
        """Post ``message``. ``key`` goes in the message's metadata, so :meth:`find_posted` can tell later
        whether a post interrupted by a crash reached Slack."""
        body: dict[str, Any] = {"channel": channel, "text": message.get("text", ""), "unfurl_links": False,
                                "unfurl_media": False}
        if key:
            body["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        if message.get("blocks"):
            body["blocks"] = message["blocks"]
        if thread_ts:
            body["thread_ts"] = thread_ts
            if broadcast:
                body["reply_broadcast"] = True
        return self._result(self._call("chat.postMessage", json=body))

    def update(self, channel: str, ts: str, message: dict[str, Any]) -> PostResult:
        body: dict[str, Any] = {"channel": channel, "ts": ts, "text": message.get("text", "")}
        if message.get("blocks"):
            body["blocks"] = message["blocks"]
        return self._result(self._call("chat.update", json=body))

    def unfurl(self, channel: str, ts: str, unfurls: dict[str, dict[str, Any]]) -> PostResult:
        """chat.unfurl: ``unfurls`` maps each link of the message at ``ts`` to what it unfurls to ({"blocks": ...})."""
        return self._result(self._call("chat.unfurl", json={"channel": channel, "ts": ts, "unfurls": unfurls}))

    def find_posted(self, channel: str, key: str, *, thread_ts: str | None, oldest: float) -> str | None | bool:
        """Whether a message posted with ``key`` is in ``channel`` (in ``thread_ts``'s thread if given).

        Returns its ts when found, False when it is certainly not there, None when Slack cannot tell us
        (no history scope, a DM, an error): the caller then posts again, at least once rather than never.
        """
        if thread_ts:
            answer = self._call("conversations.replies", data={
                "channel": channel, "ts": thread_ts, "limit": "200", "include_all_metadata": "true"})
        else:
            answer = self._call("conversations.history", data={
                "channel": channel, "oldest": f"{oldest:.6f}", "limit": "200", "include_all_metadata": "true"})
        status, _, data = answer
        if status != 200 or not isinstance(data, dict) or not data.get("ok"):
            error = data.get("error") if isinstance(data, dict) else None
            logger.info("cannot check whether a post reached %s: %s", channel, error or f"HTTP {status}")
            return None
        for message in data.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                return str(message.get("ts") or "") or True
        return False

    def upload_file(self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None = None,
                    comment: str | None = None, on_file_id: Callable[[str], None] | None = None) -> PostResult:
        """Upload ``content`` and share it in ``channel`` (in ``thread_ts``'s thread), in the three steps of slack_sdk's
        ``files_upload_v2``: ``files.getUploadURLExternal``, the bytes POSTed to the upload URL it gives (only when
        that is on SLACK_API_URL's origin or Slack's file host, and without the bot token), then
        ``files.completeUploadExternal``. ``on_file_id`` is told Slack's file id before the file is shared. The
        result's ``file_id`` is the file's; a missing ``files:write`` scope is a permanent failure."""
        answer = self._call("files.getUploadURLExternal", data={"filename": filename, "length": str(len(content))})
        status, _, data = answer
        if not (status == 200 and isinstance(data, dict) and data.get("ok")):
            return _upload_failure(answer)
        upload_url, file_id = data.get("upload_url"), data.get("file_id")
        if not isinstance(file_id, str) or not file_id or not isinstance(upload_url, str):
            return PostResult(ok=False, error="files.getUploadURLExternal gave no upload_url or file_id")
        if not upload_url_allowed(upload_url, self._api_url):
            logger.warning("not uploading %s: Slack's upload URL is neither on SLACK_API_URL's host nor on Slack's "
                           "file host", filename)
            return PostResult(ok=False, error="the upload URL is not Slack's", permanent=True)
        if on_file_id is not None:
            on_file_id(file_id)
        try:
            sent = self._hooks.post(upload_url, content=content, headers={"Content-Type": "application/octet-stream"})
        except httpx.HTTPError as error:
            observe.slack_error("files.upload", type(error).__name__)
            return PostResult(ok=False, error=f"connection error ({type(error).__name__})")
        if sent.status_code != 200:
            observe.slack_error("files.upload", f"http_{sent.status_code}")
            return PostResult(ok=False, error=f"the upload URL answered {sent.status_code}")
        body: dict[str, str] = {"files": json.dumps([{"id": file_id, "title": title}]), "channel_id": channel}
        if thread_ts:
            body["thread_ts"] = thread_ts
        if comment:
            body["initial_comment"] = comment
        done = self._call("files.completeUploadExternal", data=body)
        status, _, data = done
        if not (status == 200 and isinstance(data, dict) and data.get("ok")):
            return _upload_failure(done)
        return PostResult(ok=True, file_id=file_id)

    def find_file(self, channel: str, file_id: str, *, thread_ts: str) -> bool | None:
        """Whether file ``file_id`` was shared in ``thread_ts``'s thread: True, False, or None when Slack cannot
        tell (no history scope, a DM, an error)."""
        status, _, data = self._call("conversations.replies", data={"channel": channel, "ts": thread_ts,
                                                                    "limit": "200"})
        if status != 200 or not isinstance(data, dict) or not data.get("ok"):
            error = data.get("error") if isinstance(data, dict) else None
            logger.info("cannot check whether a file reached %s: %s", channel, error or f"HTTP {status}")
            return None
        return any(isinstance(f, dict) and f.get("id") == file_id
                   for message in data.get("messages") or [] for f in message.get("files") or [])

    def can_post(self, channel: str) -> str | None:
        """Why wesbot cannot post in ``channel`` (one sentence with the fix), or None when it can or Slack does
        not say (see :mod:`wesbot.slack.reach`)."""
        status, headers, data = self._call("conversations.info", data={"channel": channel})
        header = headers.get("x-oauth-scopes")
        scopes = None if header is None else [scope.strip() for scope in header.split(",")]
        return refusal(status, data, scopes)

    def user_by_email(self, email: str) -> str | None:
        """The Slack user with this email address (``users.lookupByEmail``, the ``users:read.email`` scope); None
        when there is none, or Slack cannot be asked."""
        status, _, data = self._call("users.lookupByEmail", data={"email": email})
        user = data.get("user") if status == 200 and isinstance(data, dict) and data.get("ok") else None
        user_id = user.get("id") if isinstance(user, dict) else None
        return user_id if isinstance(user_id, str) and user_id else None

    def user_tz(self, user_id: str) -> str | None:
        """The time zone Slack gives for ``user_id`` (``users.info``, the ``users:read`` scope); None when it
        gives none or cannot be asked."""
        tz = self._user(user_id).get("tz")
        return tz if isinstance(tz, str) and tz else None

    def user_email(self, user_id: str) -> str | None:
        """The email address Slack gives for ``user_id`` (``users.info`` with the ``users:read.email`` scope)."""
        profile = self._user(user_id).get("profile")
        email = profile.get("email") if isinstance(profile, dict) else None
        return email if isinstance(email, str) and email else None

    def _user(self, user_id: str) -> dict[str, Any]:
        status, _, data = self._call("users.info", data={"user": user_id})
        user = data.get("user") if status == 200 and isinstance(data, dict) and data.get("ok") else None
        return user if isinstance(user, dict) else {}

    def _call(self, method: str, *, json: dict[str, Any] | None = None,
              data: dict[str, str] | None = None) -> tuple[int, httpx.Headers, Any]:
        """POST one Web API method: (HTTP status, headers, parsed body); status 0 when nothing came back.
        Every failure is observed (the log line and ``wesbot_slack_api_errors_total``)."""
        try:
            response = self._client.post(method, json=json, data=data)
        except httpx.HTTPError as error:
            observe.slack_error(method, type(error).__name__)
            return 0, httpx.Headers(), {"error": f"connection error ({type(error).__name__})"}
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("ok"):
            code = body.get("error") if isinstance(body, dict) else None
            observe.slack_error(method, code if isinstance(code, str) and code else f"http_{response.status_code}")
        return response.status_code, response.headers, body

    @staticmethod
    def _result(answer: tuple[int, httpx.Headers, Any]) -> PostResult:
        status, headers, data = answer
        if status == 200 and isinstance(data, dict) and data.get("ok"):
            ts = data.get("ts")
            return PostResult(ok=True, ts=str(ts) if ts else None)
        return classify(status, headers, data)


def _upload_failure(answer: tuple[int, httpx.Headers, Any]) -> PostResult:
    """A failed upload step, sorted like a post; but a missing scope (files:write) is about this kind of call, not
    the token: no upload can succeed until the app is reinstalled, and posting goes on."""
    result = classify(*answer)
    if result.error == "missing_scope":
        return PostResult(ok=False, error="missing_scope (files:write)", permanent=True)
    return result


def classify(status: int, headers: Any, data: Any) -> PostResult:
    """Sort a failed Web API call: 429 (retry after), 5xx or no answer (retry), or Slack's error code."""
    if status == 429:
        retry_after = _header(headers, "retry-after")
        try:
            seconds = float(retry_after) if retry_after is not None else 30.0
        except ValueError:
            seconds = 30.0
        return PostResult(ok=False, error="rate limited (429)", retry_after=max(seconds, 1.0))
    if status == 0 or status >= 500:
        error = data.get("error") if isinstance(data, dict) and status == 0 else None
        return PostResult(ok=False, error=error or f"Slack answered {status}")
    error = data.get("error") if isinstance(data, dict) else None
    error = str(error or f"HTTP {status}")
    if error in TOKEN_ERRORS:
        return PostResult(ok=False, error=error, token_error=True)
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
