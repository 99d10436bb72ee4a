"""SIGTERM stops `wesbot serve --http` promptly whatever the server is doing at that moment: waitress closing a
connection when the signal lands once swallowed it, and the process ran until SIGKILL."""

from __future__ import annotations

import httpx

from tests.botproc import BotProcess
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes


def test_sigterm_right_after_a_health_check_stops_the_process_within_seconds(
        wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    for attempt in range(4):
        bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                         log_name=f"bot{attempt}.log")
        bot.wait_http_ready()
        assert httpx.get(bot.url + "/healthz", timeout=5).status_code == 200
        code = bot.stop(timeout=15)  # SIGTERM at once, while waitress closes that connection
        assert code == 0, bot.log_text()
        assert bot.exit_seconds is not None and bot.exit_seconds < 5, (attempt, bot.exit_seconds)
        assert "uncaptured python exception" not in bot.log_text()
