"""Cancel from Slack against the real reference wes-service, and what that server really does with it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.botproc import BotProcess
from tests.fakes.fake_slack import FakeSlack, block_actions_payload, form_body, signed_request_headers
from tests.realwes import SLEEP_CWL, RealWes, submit, wait_until_terminal
from wesbot.slack.blocks import ACTION_CANCEL

pytestmark = pytest.mark.real_wes


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_cancel_is_accepted_and_ignored_by_the_reference_server(real_wes: RealWes, slack: FakeSlack) -> None:
    bot = BotProcess(wes_url=real_wes.url, slack_api_url=slack.api_url, http=True,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3", "WESBOT_CANCEL_TIMEOUT": "30"})
    try:
        bot.wait_http_ready()
        run_id = submit(real_wes.url, SLEEP_CWL, {"seconds": 4})
        body = form_body(block_actions_payload(ACTION_CANCEL, f"cancel {run_id}", user_id="U1",
                                               response_url=slack.response_url("cancel")))
        assert httpx.post(bot.url + "/slack/events", content=body,
                          headers=signed_request_headers(body)).status_code == 200
        reply = slack.wait_for(lambda: next(iter(slack.responses_to("cancel")), None), timeout=20)
        assert f"Cancellation of run `{run_id}` requested (it was *RUNNING*)" in reply["text"]
        # The server answered 200 to the cancel, and the run went on to its natural end: wesbot says so.
        update = slack.wait_for(lambda: next((c for c in slack.calls_to("chat.update")
                                              if "before the cancel took effect" in c["args"]["text"]), None),
                                timeout=30, what="the outcome")
        assert "ended *COMPLETE*" in update["args"]["text"] and "CANCELED" not in json.dumps(update["args"])
        assert wait_until_terminal(real_wes.url, run_id) == "COMPLETE"
    finally:
        assert bot.stop() == 0
