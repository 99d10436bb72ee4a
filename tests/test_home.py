"""The App Home tab: the view (valid Block Kit as slack_sdk's view and block models define it, within 100 blocks
however much a person follows), the publisher (what it reads, when it asks WES, the throttle after runs end),
the buttons (only ever the clicking person), delivery's hook, and end to end with the real `wesbot serve`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.botproc import BotProcess, post_signed, slash
from tests.fakes.fake_slack import FakeSlack, block_actions_payload, events_api_payload, signed_request_headers
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster, subscribe
from tests.test_block_kit_models import validate_tree
from tests.test_watch_e2e import start, wait_notifications
from wesbot.core import ServerEntry
from wesbot.slack.app import register
from wesbot.slack.blocks import check_limits
from wesbot.slack.deps import Deps
from wesbot.slack.home import HomeListeners, HomePublisher, HomeSource
from wesbot.slack.home_view import MAX_HOME_RUNS, MAX_VIEW_BLOCKS, HomeData, ServerHome, home_view
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.watcher import Delivery, WatcherSettings, Workers
from wesbot.wes.errors import WesError
from wesbot.wes.models import ServiceInfo

NOW = 1_800_000_000.0
HOSTILE = "<!channel> <@U999> `x` *bold* <http://evil|click>"
View_ = dict[str, Any]


def view_problems(view: View_) -> list[str]:
    """What Slack would refuse in a Home view: slack_sdk's view model, every block's model (and what is in it),
    and wesbot's own limits (text lengths, button values, unique action ids in each block)."""
    problems: list[str] = []
    try:
        View(**view).validate_json()
    except Exception as error:  # noqa: BLE001 - any refusal is a problem to report
        problems.append(f"view: {error}")
    blocks = view.get("blocks") or []
    if len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"{len(blocks)} blocks")
    for i, raw in enumerate(blocks):
        block = Block.parse(raw)
        if block is None:
            problems.append(f"block {i}: unknown type {raw.get('type')!r}")
            continue
        try:
            validate_tree(block)
        except Exception as error:  # noqa: BLE001
            problems.append(f"block {i} ({raw.get('type')}): {error}")
    for first in range(0, len(blocks), 50):  # check_limits is written for messages (50 blocks each)
        problems += check_limits({"text": "-", "blocks": blocks[first:first + 50]})
    return problems


def texts(view: View_) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def shown_text(view: View_) -> str:
    """What people read: the view without its buttons' values."""
    return json.dumps([{k: v for k, v in b.items() if k != "accessory"} for b in view["blocks"]
                       if b["type"] != "actions"], ensure_ascii=False)


def buttons(view: View_) -> list[dict[str, Any]]:
    found = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    return found + [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


class StubInfo:
    """A server's GET /service-info for the health part: an answer, or a WesError."""

    def __init__(self, host: str, *, error: str | None = None) -> None:
        self.host = host
        self.error = error
        self.calls = 0

    def service_info(self) -> ServiceInfo:
        self.calls += 1
        if self.error:
            raise WesError(self.error)
        return ServiceInfo(name="Fake WES", version="1.1.0", system_state_counts={"RUNNING": 3, "COMPLETE": 7})


class Published:
    """A publish function that keeps what it was given (and can be told to fail)."""

    def __init__(self) -> None:
        self.views: list[tuple[str, View_]] = []
        self.problems: list[str] = []  # what Slack would have refused in any of them
        self.fail = False

    def __call__(self, user_id: str, view: View_) -> None:
        if self.fail:
            raise RuntimeError("Slack said no")
        self.problems += view_problems(view)
        self.views.append((user_id, view))

    def of(self, user_id: str) -> list[View_]:
        return [view for user, view in self.views if user == user_id]


@pytest.fixture
def two(tmp_path: Path) -> tuple[WatchStore, WatchStore]:
    """Two servers' views of one database."""
    prod = WatchStore(tmp_path / "w.db", server="prod", url="https://prod.test")
    return prod, prod.scoped("dev", "https://dev.test")


def publisher(stores: tuple[WatchStore, ...], published: Published, clock: FakeClock,
              infos: list[StubInfo] | None = None) -> HomePublisher:
    sources = [HomeSource(name=s.server, host=f"{s.server}.test", store=s, watches=WatchesStore(s)) for s in stores]
    entries = None if infos is None else [ServerEntry(name=s.server, wes=info) for s, info in zip(stores, infos,
                                                                                                  strict=True)]
    return HomePublisher(published, sources, entries=entries, background=False, clock=clock.monotonic,
                         wall=clock.now)


def end_run(store: WatchStore, clock: FakeClock, run_id: str, state: str, exit_code: int | None = None) -> None:
    owed = {sub.id: {"text": f"{run_id} ended"} for sub in store.subscriptions.of_run(run_id)}
    store.runs.record_terminal(run_id, state=state, now=clock.now(), exit_code=exit_code, start_time=None,
                               end_time=None, owed=owed)


# -- the view --------------------------------------------------------------------------------------------------


def test_the_view_of_someone_who_follows_nothing(two: tuple[WatchStore, WatchStore], clock: FakeClock) -> None:
    published = Published()
    home = publisher(two, published, clock)
    assert home.publish("U1")
    [view] = published.of("U1")
    assert view["type"] == "home" and published.problems == []
    shown = texts(view)
    assert "You watch no runs" in shown and "You set no channel watch" in shown
    assert "/wes subscribe RUN_ID" in shown and "/wes watch failed" in shown  # the how-to, from commands.py
    assert "Open this tab again for the servers' health" in shown  # never read in this process


def test_the_view_of_a_few_runs_and_watches(two: tuple[WatchStore, WatchStore], clock: FakeClock) -> None:
    prod, dev = two
    subscribe(prod, clock, "r1", "C1", "U1")
    subscribe(prod, clock, "r1", "C1", "U2")
    clock.advance(60)
    subscribe(dev, clock, "r2", "G2", "U1", state="QUEUED")
    subscribe(prod, clock, "other", "C1", "U2")  # someone else's
    WatchesStore(dev).add(channel_id="C3", kind="failed", tag_key="", tag_value="", user_id="U1", now=clock.now())
    WatchesStore(dev).add(channel_id="C4", kind="failed", tag_key="", tag_value="", user_id="U2", now=clock.now())
    subscribe(prod, clock, "bad", "C1", "U2")
    end_run(prod, clock, "bad", "EXECUTOR_ERROR", 1)
    published = Published()
    home = publisher(two, published, clock, [StubInfo("prod.test"), StubInfo("dev.test", error="connection refused")])
    home.opened("U1")
    first, second = published.of("U1")
    assert "Checking the servers now" in texts(first) and published.problems == []
    shown = texts(second)
    assert "`r1`" in shown and "`r2`" in shown and "`other`" not in shown
    assert "<#C1>" in shown and "<#G2>" in shown and "on *prod*" in shown and "on *dev*" in shown
    assert shown.index("`r2`") < shown.index("`r1`")  # the newest first
    assert "<#C3> hears of every run that fails" in shown and "<#C4>" not in shown
    assert "reachable: Fake WES 1.1.0" in shown and "RUNNING 3" in shown
    assert "unreachable: connection refused" in shown
    assert "*Latest failures:* `bad` EXECUTOR_ERROR (exit 1)" in shown  # anyone's, from the store
    assert "Servers' health as of" in shown
    values = {b["action_id"]: b["value"] for b in buttons(second) if "r1" in b["value"]}
    assert json.loads(values["wes_home:unsubscribe"]) == {"server": "prod", "channel": "C1", "run": "r1"}
    assert values["wes_home:details"] == "details r1 --server=prod"
    unwatch = next(b for b in buttons(second) if b["action_id"] == "wes_home:unwatch")
    assert json.loads(unwatch["value"])["server"] == "dev"


def test_the_view_of_500_runs_fits(two: tuple[WatchStore, WatchStore], clock: FakeClock) -> None:
    prod, dev = two
    for i in range(500):
        subscribe(prod if i % 2 else dev, clock, f"run-{i:03d}-{HOSTILE}", f"C{i % 30}", "U1")
    for i in range(40):
        WatchesStore(prod).add(channel_id=f"C{i}", kind="finished", tag_key="project", tag_value=HOSTILE * 3,
                               user_id="U1", now=clock.now())
    for i in range(8):
        subscribe(prod, clock, f"ended-{i}", "C1", "U1")
        end_run(prod, clock, f"ended-{i}", "SYSTEM_ERROR")
    published = Published()
    home = publisher(two, published, clock, [StubInfo("prod.test"), StubInfo("dev.test", error=HOSTILE * 50)])
    home.opened("U1")
    view = published.of("U1")[-1]
    assert published.problems == [] and len(view["blocks"]) <= MAX_VIEW_BLOCKS
    shown = texts(view)
    assert f"…and {500 - MAX_HOME_RUNS} more, in " in shown and "`/wes subscriptions` in each channel" in shown
    assert "and 20 more channels" in shown
    assert "…and 30 more: `/wes subscriptions`" in shown  # the watches
    read = shown_text(view)
    assert "<!channel>" not in read and "<@U999>" not in read and "<http://evil" not in read
    assert "&lt;!channel&gt;" in read
    assert shown.count('"wes_home:details"') == MAX_HOME_RUNS + 5  # its runs, and the 5 that ended lately


def test_the_view_holds_within_slack_limits_at_every_extreme() -> None:
    """Many servers, each with a hostile row: still within 100 blocks and 3000 characters a section."""
    from wesbot.results import ServerRow

    rows = [ServerHome(name=f"s{i}", host=HOSTILE * 20, row=ServerRow(
        name=f"s{i}", host="h", reachable=True, service_name=HOSTILE * 40, version=HOSTILE,
        state_counts={f"{HOSTILE}{n}": n for n in range(100)})) for i in range(60)]
    view = home_view(HomeData(user_id="U1", servers=rows, several=True, health_at=NOW), now=NOW)
    assert not view_problems(view)
    assert "…and 50 more: `/wes servers` lists them all." in texts(view)


def test_the_fake_slack_refuses_what_slack_would(slack: FakeSlack) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token="xoxb-test", base_url=slack.api_url)
    good = home_view(HomeData(user_id="U1"), now=NOW)
    assert client.views_publish(user_id="U1", view=good)["view"]["type"] == "home"
    assert slack.home_views["U1"] == good
    for bad in ({"type": "modal", "blocks": good["blocks"]}, {"type": "home", "blocks": good["blocks"] * 10},
                {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}):
        with pytest.raises(SlackApiError):
            client.views_publish(user_id="U1", view=bad)
    assert slack.home_views["U1"] == good


# -- when it is published, and what it asks -------------------------------------------------------------------


def test_a_refresh_after_a_run_ended_reads_no_wes_and_is_throttled(two: tuple[WatchStore, WatchStore],
                                                                   clock: FakeClock) -> None:
    prod, _ = two
    subscribe(prod, clock, "r1", "C1", "U1")
    info = StubInfo("prod.test")
    published = Published()
    home = publisher(two, published, clock, [info, StubInfo("dev.test")])
    home.runs_ended(["U1", "U2", "not-a-user"])
    assert home.refresh_due() == 2 and info.calls == 0
    assert "Open this tab again for the servers' health" in texts(published.of("U1")[-1])
    home.opened("U1")  # reads the servers' health (and keeps it)
    assert info.calls == 1
    for _ in range(5):  # a burst of ends: one refresh, once REFRESH_SECONDS have passed since the last
        home.runs_ended(["U1"])
    assert home.refresh_due() == 0
    clock.advance(home.refresh_seconds)
    assert home.refresh_due() == 1 and home.refresh_due() == 0 and info.calls == 1
    assert "Servers' health as of" in texts(published.of("U1")[-1])
    home.opened("U1")  # within HEALTH_MAX_AGE: the last reading is enough
    assert info.calls == 1


def test_a_failing_publish_is_logged_and_dropped(two: tuple[WatchStore, WatchStore], clock: FakeClock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    published = Published()
    published.fail = True
    home = publisher(two, published, clock)
    assert home.publish("U1") is False
    home.runs_ended(["U1"])
    assert home.refresh_due() == 0
    assert "could not publish the Home tab of U1" in caplog.text


def test_the_background_refresher_publishes_soon(two: tuple[WatchStore, WatchStore]) -> None:
    published = Published()
    sources = [HomeSource(name=s.server, host="h", store=s) for s in two]
    home = HomePublisher(published, sources, refresh_seconds=0.2)
    home.runs_ended(["U1"])
    home.runs_ended(["U1"])  # already owed: the same refresh
    deadline = time.monotonic() + 5
    while not published.of("U1") and time.monotonic() < deadline:
        time.sleep(0.02)
    home.runs_ended(["U1"])  # within 0.2 s of the last: it waits, then goes
    while len(published.of("U1")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(published.of("U1")) == 2


def test_delivery_tells_who_watched_a_run_once_its_end_is_posted(store: WatchStore, clock: FakeClock,
                                                                 poster: RecordingPoster) -> None:
    told: list[list[str]] = []
    delivery = Delivery(store, poster, Workers(threading.Event()), host="wes.test", clock=clock,
                        settings=WatcherSettings(pace_seconds=1.0, post_concurrency=1), on_ended=told.append)
    subscribe(store, clock, "r1", "C1", "U1")
    subscribe(store, clock, "r1", "C1", "U2")
    delivery.deliver()  # the card
    assert told == []
    end_run(store, clock, "r1", "COMPLETE", 0)
    clock.advance(1)
    delivery.deliver()
    assert told == [["U1", "U2"]]


def test_a_failing_hook_never_breaks_delivery(store: WatchStore, clock: FakeClock, poster: RecordingPoster,
                                              caplog: pytest.LogCaptureFixture) -> None:
    def broken(users: list[str]) -> None:
        raise RuntimeError("boom")

    delivery = Delivery(store, poster, Workers(threading.Event()), host="wes.test", clock=clock,
                        settings=WatcherSettings(pace_seconds=1.0, post_concurrency=1), on_ended=broken)
    subscribe(store, clock, "r1", "C1", "U1")
    subscribe(store, clock, "r2", "C2", "U1")
    delivery.deliver()
    end_run(store, clock, "r1", "COMPLETE", 0)
    end_run(store, clock, "r2", "EXECUTOR_ERROR", 1)
    clock.advance(1)
    assert delivery.deliver().sent == 2
    assert {row["status"] for row in store.db["outbox"].rows} == {"sent"}
    assert "could not tell who watched run r1 that it ended" in caplog.text


# -- the buttons -----------------------------------------------------------------------------------------------


@pytest.fixture
def listeners(store: WatchStore, clock: FakeClock) -> Iterator[tuple[HomeListeners, Published, RecordingPoster]]:
    published = Published()
    poster = RecordingPoster()
    with ThreadPoolExecutor(max_workers=1) as pool:
        deps = Deps.single(wes=StubInfo("wes.test"), host="wes.test", pool=pool, store=store,  # type: ignore[arg-type]
                           watches=WatchesStore(store), poster=poster)  # type: ignore[arg-type]
        home = HomePublisher(published, [HomeSource(name="default", host="wes.test", store=store,
                                                    watches=WatchesStore(store))], background=False,
                             clock=clock.monotonic, wall=clock.now)
        deps.home = home
        yield HomeListeners.for_deps(deps, None), published, poster  # type: ignore[arg-type]


def click(listeners: HomeListeners, user: str, action_id: str, value: str) -> None:
    listeners.run_home_action({"user": {"id": user}}, {"action_id": action_id, "value": value})


def test_unsubscribe_removes_the_clicking_person_only(
        listeners: tuple[HomeListeners, Published, RecordingPoster], store: WatchStore, clock: FakeClock) -> None:
    home, published, _ = listeners
    subscribe(store, clock, "r1", "C1", "U1")
    subscribe(store, clock, "r1", "C1", "U2")
    value = json.dumps({"server": "default", "channel": "C1", "run": "r1"})
    click(home, "U3", "wes_home:unsubscribe", value)  # someone else's button: removes no one
    assert store.subscriptions.of_run("r1")[0].users == ("U1", "U2")
    click(home, "U1", "wes_home:unsubscribe", value)
    assert store.subscriptions.of_run("r1")[0].users == ("U2",)
    assert "`r1`" not in texts(published.of("U1")[-1])  # re-published without it
    for forged in ("{", "[]", json.dumps({"server": "nope", "channel": "C1", "run": "r1"}),
                   json.dumps({"server": "default", "channel": "<!channel>", "run": "r1"})):
        click(home, "U2", "wes_home:unsubscribe", forged)
    assert store.subscriptions.of_run("r1")[0].users == ("U2",)


def test_unwatch_removes_only_a_watch_the_clicking_person_set(
        listeners: tuple[HomeListeners, Published, RecordingPoster], store: WatchStore, clock: FakeClock) -> None:
    home, _, poster = listeners
    watches = WatchesStore(store)
    watch, _ = watches.add(channel_id="C1", kind="failed", tag_key="", tag_value="", user_id="U1", now=clock.now())
    click(home, "U2", "wes_home:unwatch", json.dumps({"server": "default", "watch": watch.id}))
    assert watches.of_channel("C1") and poster.posts == []
    click(home, "U1", "wes_home:unwatch", json.dumps({"server": "default", "watch": watch.id}))
    assert watches.of_channel("C1") == []
    [told] = poster.posts
    assert told.channel == "C1" and "<@U1> removed the channel watch" in told.message["text"]


def test_the_messages_tab_publishes_nothing(listeners: tuple[HomeListeners, Published, RecordingPoster]) -> None:
    home, published, _ = listeners
    home.run_home_opened({"type": "app_home_opened", "user": "U1", "tab": "messages"})
    assert published.views == []
    home.run_home_opened({"type": "app_home_opened", "user": "U1", "tab": "home"})
    assert len(published.of("U1")) == 1


def test_manifest_turns_the_home_tab_on_and_every_part_has_a_listener() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text(encoding="utf-8"))
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        register(app, Deps.single(wes=None, host="h", pool=pool))  # type: ignore[arg-type]

    def matched(body: str, content_type: str) -> bool:
        request = BoltRequest(body=body, headers={"content-type": [content_type]})
        return any(listener.matches(req=request, resp=BoltResponse(status=200)) for listener in app._listeners)

    event = events_api_payload({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"})
    assert matched(json.dumps(event), "application/json")
    for action in ("wes_home:unsubscribe", "wes_home:unwatch", "wes_home:details"):
        payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                   "actions": [{"action_id": action, "block_id": "b", "value": "{}", "type": "button"}]}
        assert matched(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"), action


# -- end to end: the real `wesbot serve` ----------------------------------------------------------------------


def open_home(bot: BotProcess, user: str, tab: str = "home") -> None:
    """Slack's ``app_home_opened``, as the Events API sends it: a signed JSON body."""
    body = json.dumps(events_api_payload({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
                                          "event_ts": f"{time.time():.6f}"})).encode()
    headers = signed_request_headers(body, content_type="application/json")
    assert httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10).status_code == 200


def home_click(bot: BotProcess, user: str, button: dict[str, Any]) -> None:
    """A click on the Home tab: a view's block_actions, with no channel and no response_url."""
    payload = block_actions_payload(button["action_id"], button["value"], user_id=user)
    for key in ("channel", "response_url", "message"):
        del payload[key]
    payload["container"] = {"type": "view", "view_id": "V0HOME"}
    payload["view"] = {"id": "V0HOME", "type": "home", "blocks": [], "private_metadata": "", "callback_id": ""}
    assert post_signed(bot, payload).status_code == 200


def published_to(slack: FakeSlack, user: str, needle: str, *, after: int = 0, timeout: float = 15) -> View_:
    """The first view published for ``user`` (after the first ``after`` calls) that shows ``needle``."""
    def find() -> View_ | None:
        calls = slack.calls_to("views.publish")[after:]
        return next((c["args"]["view"] for c in calls if c["args"].get("user_id") == user and c["response"].get("ok")
                     and needle in texts(c["args"]["view"])), None)

    found: View_ = slack.wait_for(find, timeout=timeout, what=f"a Home tab for {user} showing {needle!r}")
    return found


def test_opening_the_home_tab_publishes_the_persons_runs(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("h1", "RUNNING", request={"workflow_url": "https://x/align.cwl", "workflow_type": "CWL",
                                          "workflow_type_version": "v1.0"})
    wes.add_run("h2", "RUNNING")
    bot = start(wes, slack, workdir)
    try:
        slash(bot, slack, "subscribe h1", channel="C1", user="U1")
        slash(bot, slack, "subscribe h2", channel="C2", user="U2")
        open_home(bot, "U1", tab="messages")
        open_home(bot, "U1")
        view = published_to(slack, "U1", "reachable")
        shown = texts(view)
        assert "`h1`" in shown and "<#C1>" in shown and "`align.cwl`" in shown and "`h2`" not in shown
        assert "Fake WES 1.1.0" in shown and "Servers' health as of" in shown
        assert not view_problems(view)
        assert {c["args"]["user_id"] for c in slack.calls_to("views.publish")} == {"U1"}
    finally:
        assert bot.stop() == 0
    assert "Traceback" not in bot.log_text()


def test_a_run_ending_republishes_the_home_of_its_subscribers(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("e1", "RUNNING")
    wes.add_run("e2", "RUNNING")
    bot = start(wes, slack, workdir)
    try:
        slash(bot, slack, "subscribe e1", channel="C1", user="U1")
        slash(bot, slack, "subscribe e1", channel="C1", user="U2")
        slash(bot, slack, "subscribe e2", channel="C1", user="U3")
        slack.wait_for_call("chat.postMessage", count=2, timeout=10)  # the cards
        assert slack.calls_to("views.publish") == []
        wes.set_state("e1", "EXECUTOR_ERROR", exit_code=1)
        wait_notifications(slack, 1)
        for user in ("U1", "U2"):
            shown = texts(published_to(slack, user, "Ended in the last"))
            assert "`e1` *EXECUTOR_ERROR (exit 1)*" in shown and "*Latest failures:* `e1`" in shown
            assert "Open this tab again for the servers' health" in shown  # delivery never calls WES
        time.sleep(0.5)
        assert {c["args"]["user_id"] for c in slack.calls_to("views.publish")} == {"U1", "U2"}
    finally:
        bot.stop()


def test_the_home_unsubscribe_button_removes_only_that_person(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("u1", "RUNNING")
    bot = start(wes, slack, workdir)
    try:
        slash(bot, slack, "subscribe u1", channel="C1", user="U1")
        slash(bot, slack, "subscribe u1", channel="C1", user="U2")
        open_home(bot, "U1")
        view = published_to(slack, "U1", "`u1`")
        unsubscribe = next(b for b in buttons(view) if b["action_id"] == "wes_home:unsubscribe")
        home_click(bot, "U3", unsubscribe)  # not theirs: nothing happens to U1 or U2
        published_to(slack, "U3", "You watch no runs")
        assert "<@U1> <@U2>" in json.dumps(slash(bot, slack, "subscriptions", name="after-u3")["blocks"])
        count = len(slack.calls_to("views.publish"))
        home_click(bot, "U1", unsubscribe)
        published_to(slack, "U1", "You watch no runs", after=count)
        listing = json.dumps(slash(bot, slack, "subscriptions", name="after-u1")["blocks"])
        assert "`u1`" in listing and "<@U2>" in listing and "<@U1>" not in listing
        details = next(b for b in buttons(view) if b["action_id"] == "wes_home:details")
        home_click(bot, "U1", details)  # answered in U1's direct messages with wesbot
        dm = slack.wait_for(lambda: next((c for c in slack.calls_to("chat.postMessage")
                                          if c["args"]["channel"] == "U1"), None), timeout=10, what="a DM")
        assert "u1" in json.dumps(dm["args"].get("blocks"))
    finally:
        bot.stop()
    assert "Traceback" not in bot.log_text()


def test_the_home_tab_over_socket_mode(wes: FakeWes) -> None:
    with FakeSlack() as slack:
        bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False)
        try:
            slack.wait_connected(timeout=20)
            event = events_api_payload({"type": "app_home_opened", "user": "U7", "channel": "D7", "tab": "home"})
            envelope = slack.send_envelope("events_api", event)
            slack.wait_for_ack(envelope, timeout=5)
            shown = texts(published_to(slack, "U7", "reachable"))
            assert "You watch no runs" in shown
        finally:
            assert bot.stop() == 0

