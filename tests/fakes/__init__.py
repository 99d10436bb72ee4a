"""Fakes of the two services wesbot talks to, each on a real loopback socket.

- ``FakeWes`` (``fake_wes``): a configurable GA4GH WES 1.1 server with the quirks of real servers,
  plus canned failures (``html_error``, ``problem_json``, ``plain_text``, ``empty``,
  ``connection_close``, ``error_response``, ``reply``) and ``make_task``.
- ``FakeSlack`` (``fake_slack``): the Slack Web API, a response_url sink and a Socket Mode server,
  plus the payload helpers tests feed to the bot.
- ``spec``: validation of bodies against the WES 1.1.0 OpenAPI spec in ``../shared``.

Import them as ``from tests.fakes import FakeWes, FakeSlack`` (pytest is run from the project root).
"""

from __future__ import annotations

from .fake_slack import (
    APP_ID,
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM_ID,
    FakeSlack,
    SlackCall,
    block_actions_payload,
    close_socket_mode_client,
    events_api_payload,
    form_body,
    signed_request_headers,
    slash_command_payload,
)
from .fake_wes import (
    STATES,
    TERMINAL_STATES,
    FakeWes,
    RecordedRequest,
    Reply,
    connection_close,
    empty,
    error_response,
    html_error,
    json_reply,
    make_task,
    plain_text,
    problem_json,
    reply,
)
from .spec import require_shared, spec_errors, spec_path, validate_response

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "STATES",
    "TEAM_ID",
    "TERMINAL_STATES",
    "FakeSlack",
    "FakeWes",
    "RecordedRequest",
    "Reply",
    "SlackCall",
    "block_actions_payload",
    "close_socket_mode_client",
    "connection_close",
    "empty",
    "error_response",
    "events_api_payload",
    "form_body",
    "html_error",
    "json_reply",
    "make_task",
    "plain_text",
    "problem_json",
    "reply",
    "require_shared",
    "signed_request_headers",
    "slash_command_payload",
    "spec_errors",
    "spec_path",
    "validate_response",
]
