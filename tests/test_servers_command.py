"""`/wes servers`: each configured server's GET /service-info, or why it did not answer; rendered for Slack
(within Block Kit's limits, everything from WES escaped) and for the terminal, and through the console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.botproc import clean_env, free_port, run
from tests.fakes.fake_wes import FakeWes
from wesbot.commands import parse
from wesbot.core import ServerEntry, execute
from wesbot.results import ServerRow, ServersResult
from wesbot.slack.blocks import check_limits
from wesbot.slack.replies import render
from wesbot.textview import render_text
from wesbot.wes.client import WesClient

SERVICE_INFO = {
    "id": "org.example.wes", "name": "Example WES", "version": "4.2.0",
    "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
    "organization": {"name": "Example", "url": "https://example.org"},
    "supported_wes_versions": ["1.0.0", "1.1.0"],
    "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.2"]}},
    "workflow_engine_versions": {"cwltool": {"workflow_engine_version": ["3.1"]}},
    "system_state_counts": {"RUNNING": 2, "COMPLETE": 7},
    "supported_filesystem_protocols": [], "default_workflow_engine_parameters": [], "auth_instructions_url": "",
    "tags": {},
}


def _closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/ga4gh/wes/v1"  # nothing listens there any more


def _servers(*entries: ServerEntry) -> ServersResult:
    result = execute(parse("servers"), entries[0].wes, servers=entries)  # type: ignore[arg-type]
    assert isinstance(result, ServersResult)
    return result


def test_a_reachable_server_shows_its_service_info(wes: FakeWes) -> None:
    wes.service_info = SERVICE_INFO
    with WesClient(wes.url) as client:
        result = _servers(ServerEntry(name="prod", wes=client, is_default=True))
    (row,) = result.servers
    assert row == ServerRow(name="prod", host=client.host, reachable=True, is_default=True,
                            service_name="Example WES", version="4.2.0", wes_versions=["1.0.0", "1.1.0"],
                            workflow_types={"CWL": ["v1.2"]}, engines={"cwltool": "3.1"},
                            state_counts={"RUNNING": 2, "COMPLETE": 7})
    text = render_text(result, host=client.host)
    assert "prod (default)" in text and "Example WES 4.2.0" in text and "cwltool 3.1" in text
    assert "RUNNING 2, COMPLETE 7" in text and "WES: 1.0.0, 1.1.0" in text


def test_an_unreachable_server_says_why_in_one_line(wes: FakeWes) -> None:
    with WesClient(wes.url) as up, WesClient(_closed_url(), retries=0, deadline=3) as down:
        result = _servers(ServerEntry(name="up", wes=up, is_default=True), ServerEntry(name="down", wes=down))
    assert [(row.name, row.reachable) for row in result.servers] == [("up", True), ("down", False)]
    reason = result.servers[1].error
    assert reason and down.host in reason and "\n" not in reason and "Traceback" not in reason
    assert result.ok  # the listing worked; one server being down is its answer, not an error
    text = render_text(result, host=up.host)
    assert f"unreachable: {reason}" in text and "Traceback" not in text
    assert json.loads(json.dumps(result.to_json()))["servers"][1]["reachable"] is False


def test_without_a_server_list_the_one_client_is_the_default(wes: FakeWes) -> None:
    with WesClient(wes.url) as client:
        result = execute(parse("servers"), client)
    assert isinstance(result, ServersResult)
    assert [(row.name, row.is_default, row.reachable) for row in result.servers] == [("default", True, True)]


def test_slack_render_escapes_what_wes_says_and_fits_block_kit(wes: FakeWes) -> None:
    wes.service_info = {**SERVICE_INFO, "name": "<!channel>", "version": "<@U0BOSS>",
                        "workflow_engine_versions": {f"<!here>{i}": {"workflow_engine_version": ["`x`"]}
                                                     for i in range(50)},
                        "system_state_counts": {"<https://evil.example|click>": 1}}
    with WesClient(wes.url) as client:
        row = _servers(ServerEntry(name="prod", wes=client, is_default=True)).servers[0]
    rows = [row] + [ServerRow(name=f"s{i}", host=f"wes{i}.example.org", reachable=False, error="x" * 300)
                    for i in range(19)]
    message = render(ServersResult(command=parse("servers"), servers=rows), host=client.host)
    assert check_limits(message) == []
    raw = json.dumps(message, ensure_ascii=False)
    assert "<!channel>" not in raw and "<@U0BOSS>" not in raw and "<!here>" not in raw and "<https://" not in raw
    assert "&lt;!channel&gt;" in raw and "✅" in raw and raw.count("❌") == 19
    assert "(default here)" in raw and "(+38 more)" in raw


def test_a_servers_reply_is_never_shared() -> None:
    result = ServersResult(command=parse("servers --share"), servers=[])
    assert not result.shareable


def test_ask_servers_lists_every_configured_server(wes: FakeWes, tmp_path: Path) -> None:
    wes.service_info = SERVICE_INFO
    (tmp_path / "wesbot.toml").write_text(
        f'[servers.prod]\nurl = "{wes.url}"\n\n[servers.gone]\nurl = "{_closed_url()}"\n', encoding="utf-8")
    env = clean_env(WESBOT_DB=str(tmp_path / "wesbot.db"), WESBOT_WES_TIMEOUT="3")
    out = run(["ask", "servers"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ok   prod" in out.stdout and "Example WES 4.2.0" in out.stdout
    assert "DOWN  gone" in out.stdout and "unreachable:" in out.stdout
    assert "(no default" in out.stdout and "Traceback" not in out.stdout + out.stderr
    out = run(["ask", "--server", "gone", "--json", "servers"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)["servers"]}
    assert rows["gone"]["is_default"] and not rows["gone"]["reachable"] and rows["prod"]["reachable"]
