"""The one place that speaks HTTP to a WES server. (INTERFACE: to be implemented.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx

from .models import RunListPage, RunLog, RunStatus, ServiceInfo, TaskLog, TaskPage


class WesClient:
    """A synchronous, thread-safe WES client.

    ``base_url`` is exactly ``$WES_URL`` as in ``curl "$WES_URL/runs"``. ``auth`` is ``(user, password)``
    for basic auth, ``token`` a bearer token; at most one of them is set.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        raise NotImplementedError

    @property
    def host(self) -> str:
        """The server's host (and port when not default), as shown in error messages."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> WesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def service_info(self) -> ServiceInfo:
        raise NotImplementedError

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        raise NotImplementedError

    def iter_run_pages(self, *, page_size: int | None = None, page_token: str | None = None,
                       max_pages: int = 50) -> Iterator[RunListPage]:
        raise NotImplementedError

    def get_status(self, run_id: str) -> RunStatus:
        raise NotImplementedError

    def get_run(self, run_id: str) -> RunLog:
        raise NotImplementedError

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        raise NotImplementedError

    def get_task(self, run_id: str, task_id: str) -> TaskLog:
        raise NotImplementedError

    def cancel_run(self, run_id: str) -> str | None:
        raise NotImplementedError
