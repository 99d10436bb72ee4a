"""Following requested cancels: poll each cancelled run until it ends (or the cancel's deadline passes) and
record the outcome, which delivery then says in the channel. Never posts."""

from __future__ import annotations

import logging
import threading

from ..cancel import follow, recover
from ..store.cancels import CancelStore
from ..wes.errors import WesError
from ..wes.models import RunStatus
from .base import Clock, WatchedWes, WatcherSettings

logger = logging.getLogger("wesbot.watcher")

# A cancel is looked at this often (at most) until its run ends: people wait for its outcome.
FOLLOW_SECONDS = 5.0


class CancelFollower:
    def __init__(self, cancels: CancelStore, wes: WatchedWes, *, settings: WatcherSettings, clock: Clock,
                 stop: threading.Event) -> None:
        self.cancels = cancels
        self.wes = wes
        self.settings = settings
        self.clock = clock
        self.stop = stop

    def follow(self) -> int:
        """Take over the cancels a dead process left, then poll each one that is due; returns how many were
        decided (confirmed, ended otherwise, or no effect by the deadline)."""
        now = self.clock.now()
        recover(self.cancels, now)
        decided = 0
        for cancel in self.cancels.to_follow(now, horizon=self.settings.longest_wait):
            if self.stop.is_set():
                break
            verdict = follow(cancel, self._status(cancel.run_id), self.clock.now())
            if verdict is None:
                self.cancels.poll_later(cancel.run_id,
                                        self.clock.now() + min(self.settings.poll_seconds, FOLLOW_SECONDS))
                continue
            outcome, final_state = verdict
            self.cancels.finish(cancel.run_id, final_state=final_state, outcome=outcome)
            decided += 1
        return decided

    def _status(self, run_id: str) -> RunStatus | None:
        try:
            return self.wes.get_status(run_id)
        except WesError as error:
            logger.info("following the cancel of %s: %s", run_id, error)
            return None
