"""In-process fakes for the cancel tests: a stub WES that records each cancel and can fail or stall it, and the
wall time those tests start at."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from wesbot.wes.models import Log, RunLog, RunRequest, RunStatus, parse_state

NOW = 1_800_000_000.0


@dataclass
class StubWes:
    """One run in ``state``; ``cancel_run`` records the call, waits on ``slow_cancel`` and raises ``cancel_error``."""

    state: str = "RUNNING"
    cancel_error: Exception | None = None
    cancel_calls: list[str] = field(default_factory=list)
    slow_cancel: threading.Event | None = None

    def get_status(self, run_id: str) -> RunStatus:
        return RunStatus(run_id=run_id, state=parse_state(self.state))

    def get_run(self, run_id: str) -> RunLog:
        return RunLog(run_id=run_id, state=parse_state(self.state), request=RunRequest(workflow_url="http://x/a.cwl"),
                      run_log=Log(start_time="2026-11-28T10:00:00Z"))

    def cancel_run(self, run_id: str) -> str | None:
        self.cancel_calls.append(run_id)
        if self.slow_cancel is not None:
            self.slow_cancel.wait(2)
        if self.cancel_error is not None:
            raise self.cancel_error
        return run_id
