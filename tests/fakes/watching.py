"""In-process fakes for the watcher's tests: a fake clock, a stub WES, a recording Slack poster, and the
helpers that build a watcher on them. No sockets, no sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from wesbot.slack.poster import PostResult
from wesbot.store.watch import WatchStore
from wesbot.watcher import Watcher, WatcherSettings
from wesbot.wes.models import Log, RunListPage, RunLog, RunRequest, RunStatus, RunSummary, TaskPage, parse_state

DAY = 86400.0


class FakeClock:
    """Wall time and monotonic time, far apart (so a mix-up of the two shows), moved together by ``advance``;
    ``jump_wall`` moves the wall clock alone, as someone setting the system clock does."""

    def __init__(self, now: float = 1_800_000_000.0, monotonic: float = 5_000.0) -> None:
        self.t = now
        self.m = monotonic

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.m

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.m += seconds

    def jump_wall(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class StubWes:
    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)
    status_calls: list[str] = field(default_factory=list)
    run_calls: list[str] = field(default_factory=list)
    tasks: dict[str, list[Log]] = field(default_factory=dict)
    host: str = "wes.test"

    def get_status(self, run_id: str) -> RunStatus:
        self.status_calls.append(run_id)
        if run_id in self.errors:
            raise self.errors[run_id]
        return RunStatus(run_id=run_id, state=parse_state(self.states[run_id]))

    def get_run(self, run_id: str) -> RunLog:
        self.run_calls.append(run_id)
        if run_id in self.errors:
            raise self.errors[run_id]
        return RunLog(run_id=run_id, state=parse_state(self.states[run_id]),
                      request=RunRequest(workflow_url="https://x/flows/align.cwl"),
                      run_log=Log(exit_code=0 if self.states[run_id] == "COMPLETE" else 1,
                                  start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T00:03:02Z"),
                      outputs={"out": {"class": "File", "location": "s3://bucket/out.txt"}},
                      task_logs=self.tasks.get(run_id))

    list_calls: int = 0
    page: int = 100
    list_without_states: bool = False
    shuffle_seed: int | None = None
    repeat_last_token: bool = False
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    start_times: dict[str, str] = field(default_factory=dict)  # as GET /runs lists them (WES 1.1)
    end_times: dict[str, str] = field(default_factory=dict)

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        """Pages of ``page`` runs; with ``shuffle_seed``, every call lists them in a different order."""
        self.list_calls += 1
        ids = sorted(self.states)
        if self.shuffle_seed is not None:
            random.Random(self.shuffle_seed + self.list_calls).shuffle(ids)
        start = int(page_token or 0)
        chunk = ids[start:start + self.page]
        nxt = str(start + self.page) if start + self.page < len(ids) else ""
        if not nxt and self.repeat_last_token:
            nxt = page_token or ""  # the last page names itself as the next one, forever
        return RunListPage(runs=[RunSummary(run_id=i, state=None if self.list_without_states else
                                            parse_state(self.states[i]), tags=self.tags.get(i, {}),
                                            start_time=self.start_times.get(i), end_time=self.end_times.get(i))
                                 for i in chunk],
                           next_page_token=nxt or None)

    task_calls: list[str] = field(default_factory=list)

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        """Pages of ``page_size`` tasks (all of them without one); ``errors`` apply here too."""
        self.task_calls.append(run_id)
        if run_id in self.errors:
            raise self.errors[run_id]
        tasks = self.tasks.get(run_id, [])
        start = int(page_token or 0)
        size = page_size or len(tasks) or 1
        nxt = str(start + size) if start + size < len(tasks) else None
        return TaskPage(run_id=run_id, tasks=tasks[start:start + size], next_page_token=nxt)


@dataclass
class Post:
    method: str
    channel: str
    message: dict[str, Any]
    thread_ts: str | None = None
    broadcast: bool = False
    ts: str | None = None
    key: str | None = None


class RecordingPoster:
    """Answers like Slack; ``script`` holds results to return next (PostResult), per channel."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.script: dict[str, list[PostResult]] = {}
        self.counter = 0

    def _next(self, channel: str) -> PostResult | None:
        queue = self.script.get(channel)
        return queue.pop(0) if queue else None

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> PostResult:
        scripted = self._next(channel)
        if scripted is not None and not scripted.ok:
            self.posts.append(Post("failed", channel, message, thread_ts, broadcast))
            return scripted
        self.counter += 1
        ts = f"1700000000.{self.counter:06d}"
        self.posts.append(Post("post", channel, message, thread_ts, broadcast, ts, key))
        return PostResult(ok=True, ts=ts)

    can_look = True

    def find_posted(self, channel: str, key: str, *, thread_ts: str | None, oldest: float) -> str | None | bool:
        if not self.can_look:
            return None
        return next((p.ts for p in self.posts if p.key == key and p.channel == channel and p.ts), False)

    def respond(self, response_url: str, message: dict[str, Any]) -> bool:
        self.posts.append(Post("respond", response_url, message))
        return True

    def update(self, channel: str, ts: str, message: dict[str, Any]) -> PostResult:
        scripted = self._next(channel)
        if scripted is not None and not scripted.ok:
            return scripted
        self.posts.append(Post("update", channel, message, ts=ts))
        return PostResult(ok=True, ts=ts)

    def notifications(self) -> list[Post]:
        return [p for p in self.posts if p.method == "post" and p.thread_ts is not None or
                (p.method == "post" and "ended" in p.message.get("text", ""))]


SETTINGS = WatcherSettings(poll_seconds=30, unreadable_after=600, lease_seconds=30, pace_seconds=1.0,
                           post_concurrency=1)


def make(store: WatchStore, wes: StubWes, poster: RecordingPoster, clock: FakeClock, **kw: Any) -> Watcher:
    return Watcher(store, wes, poster, host="wes.test", settings=kw.pop("settings", SETTINGS), clock=clock,  # type: ignore[arg-type]
                   **kw)


def subscribe(store: WatchStore, clock: FakeClock, run_id: str, channel: str = "C1", user: str = "U1",
              state: str = "RUNNING") -> None:
    store.subscriptions.subscribe(run_id=run_id, channel_id=channel, user_id=user, now=clock.now(),
                    expires_at=clock.now() + 14 * DAY, state=state, workflow="align.cwl")


def cycle(watcher: Watcher, clock: FakeClock, seconds: float = 30.0) -> None:
    """One step, then time passes."""
    watcher.step()
    clock.advance(seconds)
