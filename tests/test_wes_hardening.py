"""Hardening of WesClient against hostile WES servers, end to end against the loopback fake WES."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fakes.fake_wes import FakeWes, Reply
from wesbot.config import Settings
from wesbot.slack.cards import card
from wesbot.store.watch import Subscription
from wesbot.wes.client import WesClient
from wesbot.wes.errors import WesHTTPError, WesProtocolError
from wesbot.wes.models import parse_run_request

USER, PASSWORD = "user", "secretpass"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with FakeWes(validate=False) as wes:
        wes.add_run("r1", "RUNNING")
        wes.overrides["/runs/r1/status"] = Reply(200, b"[" * 100_000 + b"]" * 100_000, "application/json")
        with WesClient(wes.url, retries=0) as client, pytest.raises(WesProtocolError, match="nested too deeply"):
            client.get_status("r1")


def test_echoed_basic_authorization_is_masked() -> None:
    with FakeWes(validate=False, auth=(USER, PASSWORD)) as wes:
        wes.add_run("r1", "RUNNING")
        echo = f"bad header: Authorization: Basic {BASIC}"
        wes.overrides["/runs/r1/status"] = Reply(500, echo.encode(), "text/plain")
        with WesClient(wes.url, auth=(USER, PASSWORD), retries=0) as client, \
                pytest.raises(WesHTTPError) as info:
            client.get_status("r1")
    message = str(info.value)
    assert "500" in message and "***" in message
    assert BASIC not in message and PASSWORD not in message


def test_settings_secrets_include_the_base64_form() -> None:
    settings = Settings(wes_url="http://127.0.0.1/", wes_auth=(USER, PASSWORD))
    assert BASIC in settings.secrets()
    assert PASSWORD in settings.secrets()


def test_a_string_field_nested_too_deeply_is_kept_as_text() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    request = parse_run_request({"workflow_url": "x.cwl", "workflow_params": deep, "workflow_engine_parameters": deep})
    assert request.workflow_params == deep and request.workflow_engine_parameters == deep


@pytest.mark.parametrize("epoch", [1e300, float("nan"), -1e20])
def test_a_card_with_a_time_out_of_range_still_renders(epoch: float) -> None:
    sub = Subscription(id=1, run_id="r1", channel_id="C1", status="active", created_at=epoch, expires_at=epoch,
                       workflow=None, card_ts=None, card_version=1, card_synced=0, card_failed=None, reason=None,
                       users=("U1",), state="RUNNING", state_since=epoch)
    message = card(sub, host="wes.test")
    assert "—" in json.dumps(message["blocks"], ensure_ascii=False) and "r1" in str(message["text"])
