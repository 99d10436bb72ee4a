"""The channel-watch sweep's decisions (wesbot.watcher.sweep), as tables: which runs changed and ended
(``diff``), which watches care (``interested``), which channel hears of which run (``route``), and the messages
owed, digests included (``compose``, ``singles``)."""

from __future__ import annotations

import json

import pytest

from wesbot.outcome import FailedTask, RunOutcome
from wesbot.store.watches import ChannelWatch, Owed
from wesbot.watcher.sweep import compose, diff, interested, route, singles
from wesbot.wes.models import RunState, State, parse_state

HOST = "wes.test"


def watch(channel: str = "C1", kind: str = "failed", tag: tuple[str, str] = ("", ""), id: int = 1) -> ChannelWatch:
    return ChannelWatch(id=id, channel_id=channel, kind=kind, tag_key=tag[0], tag_value=tag[1], created_by="U1",
                        created_at=1_800_000_000.0, active_from=1_800_000_030.0)


def ended(run_id: str, state: str = "EXECUTOR_ERROR", exit_code: int | None = None) -> RunOutcome:
    return RunOutcome(run_id=run_id, state=state, exit_code=exit_code)


# -- diff: what changed since the last sweep, and what ended ------------------------------------------------

DIFFS = [
    pytest.param({"r": "RUNNING"}, {"r": "RUNNING"}, True, [], [], id="unchanged state: nothing"),
    pytest.param({"r": "COMPLETE"}, {"r": "COMPLETE"}, True, [], [], id="unchanged end: nothing"),
    pytest.param({"r": "COMPLETE"}, {"r": "RUNNING"}, False, [("r", "COMPLETE")], ["r"], id="RUNNING -> COMPLETE"),
    pytest.param({"r": "CANCELED"}, {"r": "CANCELING"}, False, [("r", "CANCELED")], ["r"],
                 id="CANCELING -> CANCELED"),
    pytest.param({"r": "RUNNING"}, {"r": "QUEUED"}, False, [("r", "RUNNING")], [], id="QUEUED -> RUNNING"),
    pytest.param({"r": "EXECUTOR_ERROR"}, {}, True, [("r", "EXECUTOR_ERROR")], ["r"],
                 id="new run already ended, both sweeps whole: ended"),
    pytest.param({"r": "EXECUTOR_ERROR"}, {}, False, [("r", "EXECUTOR_ERROR")], [],
                 id="new run already ended, a sweep was cut: recorded, not ended"),
    pytest.param({"r": "RUNNING"}, {}, True, [("r", "RUNNING")], [], id="new run still going"),
    pytest.param({"r": None}, {"r": "RUNNING"}, True, [("r", None)], [], id="a state -> None: recorded, not ended"),
    pytest.param({"r": "SYSTEM_ERROR"}, {"r": None}, False, [("r", "SYSTEM_ERROR")], ["r"],
                 id="None -> SYSTEM_ERROR: ended"),
    pytest.param({"r": "COMPLETE"}, {"r": "EXECUTOR_ERROR"}, True, [("r", "COMPLETE")], [],
                 id="terminal -> terminal: recorded, not ended again"),
    pytest.param({"r": "DELETED"}, {"r": "COMPLETE"}, True, [("r", "DELETED")], [],
                 id="an unknown state is kept raw, and is no end"),
    pytest.param({"r": "COMPLETE"}, {"r": "DELETED"}, True, [("r", "COMPLETE")], ["r"],
                 id="an unknown state -> COMPLETE: ended"),
]


@pytest.mark.parametrize(("now", "before", "new_can_end", "changes", "ends"), DIFFS)
def test_diff(now: dict[str, str | None], before: dict[str, str | None], new_can_end: bool,
              changes: list[tuple[str, str | None]], ends: list[str]) -> None:
    states: dict[str, State] = {run_id: parse_state(state) for run_id, state in now.items()}
    assert diff(states, before, new_can_end=new_can_end) == (changes, ends)


def test_diff_ignores_runs_no_longer_listed() -> None:
    assert diff({"a": RunState.COMPLETE}, {"a": "RUNNING", "gone": "RUNNING"}, new_can_end=True) == (
        [("a", "COMPLETE")], ["a"])


# -- interested: the watches whose tag filter a run matches --------------------------------------------------

INTERESTS = [
    pytest.param(("", ""), {}, True, id="no filter, untagged run"),
    pytest.param(("", ""), {"project": "x"}, True, id="no filter, tagged run"),
    pytest.param(("project", "x"), {"project": "x", "other": "y"}, True, id="filter matches"),
    pytest.param(("project", "x"), {"project": "y"}, False, id="same key, other value"),
    pytest.param(("project", "x"), {"other": "x"}, False, id="other key, same value"),
    pytest.param(("project", "x"), {}, False, id="untagged run"),
    pytest.param(("project", "x"), {"Project": "x"}, False, id="keys are case-sensitive"),
]


@pytest.mark.parametrize(("tag", "tags", "heard"), INTERESTS)
def test_interested_filters_by_tag(tag: tuple[str, str], tags: dict[str, str], heard: bool) -> None:
    filtered = watch(tag=tag)
    assert interested(["r"], lambda run_id: tags, [filtered]) == ({"r": [filtered]} if heard else {})


def test_interested_lists_every_matching_watch_and_leaves_out_runs_none_matches() -> None:
    every, only_x = watch("C1", id=1), watch("C2", tag=("project", "x"), id=2)
    tags = {"a": {"project": "x"}, "b": {"project": "y"}}
    assert interested(["a", "b"], lambda run_id: tags[run_id], [every, only_x]) == {"a": [every, only_x],
                                                                                    "b": [every]}
    assert interested(["b"], lambda run_id: tags[run_id], [only_x]) == {}


# -- route: which channel hears about which run ----------------------------------------------------------

OUTCOMES = [
    pytest.param("EXECUTOR_ERROR", 1, True, id="EXECUTOR_ERROR"),
    pytest.param("SYSTEM_ERROR", None, True, id="SYSTEM_ERROR"),
    pytest.param("PREEMPTED", None, True, id="PREEMPTED"),
    pytest.param("PREEMPTED", 0, True, id="PREEMPTED exit 0"),
    pytest.param("COMPLETE", 1, True, id="COMPLETE exit 1"),
    pytest.param("COMPLETE", 137, True, id="COMPLETE exit 137"),
    pytest.param("COMPLETE", 0, False, id="COMPLETE exit 0"),
    pytest.param("COMPLETE", -1, False, id="COMPLETE exit -1"),
    pytest.param("COMPLETE", None, False, id="COMPLETE no exit code"),
    pytest.param("CANCELED", None, False, id="CANCELED"),
    pytest.param("CANCELED", 1, False, id="CANCELED exit 1"),
]


@pytest.mark.parametrize(("state", "exit_code", "failed"), OUTCOMES)
@pytest.mark.parametrize("kind", ["failed", "finished"])
def test_route_by_the_kind_of_watch(kind: str, state: str, exit_code: int | None, failed: bool) -> None:
    outcome, watching = ended("r", state, exit_code), watch(kind=kind)
    heard = kind == "finished" or failed
    assert route({"r": outcome}, {"r": [watching]}, set()) == ({"C1": [(outcome, watching)]} if heard else {})


def test_route_one_message_per_run_per_channel_when_two_watches_match() -> None:
    every, tagged, elsewhere = watch("C1", id=1), watch("C1", "finished", ("project", "x"), id=2), watch("C2", id=3)
    a, b = ended("a"), ended("b")
    assert route({"a": a, "b": b}, {"a": [every, tagged, elsewhere], "b": [tagged, every]}, set()) == {
        "C1": [(a, every), (b, tagged)], "C2": [(a, elsewhere)]}


def test_route_no_message_in_a_channel_where_the_run_has_a_subscription() -> None:
    here, there = watch("C1", id=1), watch("C2", id=2)
    a, b = ended("a"), ended("b")
    assert route({"a": a, "b": b}, {"a": [here, there], "b": [here]}, {("a", "C1")}) == {
        "C1": [(b, here)], "C2": [(a, there)]}


def test_route_only_confirmed_ends_are_heard() -> None:
    assert route({}, {"a": [watch()]}, set()) == {}


# -- compose and singles: the messages owed ------------------------------------------------------------------


def text_of(item: Owed) -> str:
    return json.dumps(item.payload)


def burst(channel: str, n: int, kind: str = "failed", state: str = "EXECUTOR_ERROR",
          prefix: str = "r") -> list[tuple[RunOutcome, ChannelWatch]]:
    watching = watch(channel, kind)
    return [(ended(f"{prefix}{i}", state), watching) for i in range(n)]


@pytest.mark.parametrize(("n", "digest_after"), [(1, 5), (5, 5), (1, 1)],
                         ids=["one run", "as many as digest_after", "one run, digest_after 1"])
def test_compose_up_to_digest_after_one_notification_per_run(n: int, digest_after: int) -> None:
    owed = compose({"C1": burst("C1", n)}, digest_after=digest_after, host=HOST, full={})
    assert [(o.key, o.channel_id, o.kind, o.skip) for o in owed] == [
        (f"end:r{i}:EXECUTOR_ERROR:C1", "C1", "notification", False) for i in range(n)]
    for i, item in enumerate(owed):
        assert item.payload["text"].startswith(f"Run r{i} ended EXECUTOR_ERROR")
        assert "Posted because this channel watches every run that fails (/wes unwatch to stop)" in text_of(item)


@pytest.mark.parametrize(("kind", "tag", "note"), [
    ("failed", ("", ""), "every run that fails"),
    ("finished", ("", ""), "every run that ends"),
    ("failed", ("project", "x"), "every run tagged project=x that fails"),
], ids=["failed", "finished", "tagged"])
def test_compose_the_note_names_the_watch(kind: str, tag: tuple[str, str], note: str) -> None:
    watching = watch(kind=kind, tag=tag)
    (item,) = compose({"C1": [(ended("a"), watching)]}, digest_after=5, host=HOST, full={})
    assert f"Posted because this channel watches {note} (/wes unwatch to stop)" in text_of(item)


def test_compose_uses_the_full_details_where_they_were_read() -> None:
    brief = ended("a", "EXECUTOR_ERROR", 1)
    full = RunOutcome(run_id="a", state="EXECUTOR_ERROR", exit_code=1,
                      failed_tasks=[FailedTask(name="align-reads", exit_code=3)])
    (item,) = compose({"C1": [(brief, watch())]}, digest_after=5, host=HOST, full={"a": full})
    assert "Failed tasks" in text_of(item) and "align-reads" in text_of(item)
    (without,) = compose({"C1": [(brief, watch())]}, digest_after=5, host=HOST, full={})
    assert "Failed tasks" not in text_of(without)


def test_compose_more_than_digest_after_is_one_digest_and_reserves_each_runs_key() -> None:
    owed = compose({"C1": burst("C1", 6)}, digest_after=5, host=HOST, full={})
    digest, *skips = owed
    assert (digest.channel_id, digest.kind, digest.skip) == ("C1", "digest", False)
    assert digest.key.startswith("digest:C1:")
    assert digest.payload["text"] == "6 runs failed"
    assert all(f"r{i}" in text_of(digest) for i in range(6))
    assert [(o.key, o.channel_id, o.skip, o.payload) for o in skips] == [
        (f"end:r{i}:EXECUTOR_ERROR:C1", "C1", True, {}) for i in range(6)]


@pytest.mark.parametrize(("states", "what"), [
    (["EXECUTOR_ERROR", "SYSTEM_ERROR", "PREEMPTED"], "failed"),
    (["EXECUTOR_ERROR", "SYSTEM_ERROR", "COMPLETE"], "ended"),
    (["COMPLETE", "CANCELED", "COMPLETE"], "ended"),
], ids=["all failed", "one completed", "none failed"])
def test_compose_a_digest_says_failed_only_when_all_failed(states: list[str], what: str) -> None:
    watching = watch(kind="finished")
    items = [(ended(f"r{i}", state, 0 if state == "COMPLETE" else None), watching) for i, state in enumerate(states)]
    (digest, *_) = compose({"C1": items}, digest_after=2, host=HOST, full={})
    assert digest.kind == "digest" and digest.payload["text"] == f"3 runs {what}"


def test_compose_the_same_burst_in_another_order_owes_the_same_digest() -> None:
    items = burst("C1", 6)
    first = compose({"C1": items}, digest_after=5, host=HOST, full={})
    again = compose({"C1": items[::-1]}, digest_after=5, host=HOST, full={})
    assert first[0].key == again[0].key
    assert compose({"C1": items[:5] + burst("C1", 1, prefix="x")}, digest_after=5, host=HOST,
                   full={})[0].key != first[0].key


def test_compose_each_channel_on_its_own() -> None:
    owed = compose({"C1": burst("C1", 6), "C2": burst("C2", 2)}, digest_after=5, host=HOST, full={})
    assert [(o.channel_id, o.kind, o.skip) for o in owed] == [("C1", "digest", False)] + [
        ("C1", "notification", True)] * 6 + [("C2", "notification", False)] * 2


SINGLES = [
    pytest.param({}, [], id="nothing routed"),
    pytest.param({"C1": 2}, ["r0", "r1"], id="few in one channel"),
    pytest.param({"C1": 6}, [], id="a digest only"),
    pytest.param({"C1": 6, "C2": 2}, ["r0", "r1"], id="a run in a digest here and alone there"),
    pytest.param({"C1": 3, "C2": 2}, ["r0", "r1", "r2"], id="the same runs in two channels, once each"),
]


@pytest.mark.parametrize(("sizes", "runs"), SINGLES)
def test_singles_are_the_runs_announced_one_by_one_somewhere(sizes: dict[str, int], runs: list[str]) -> None:
    per_channel = {channel: burst(channel, n) for channel, n in sizes.items()}
    assert singles(per_channel, 5) == runs
