"""The WES client: :class:`WesClient`, the dataclasses it returns, and the errors it raises.

Raw JSON never leaves this package. Everything outside it catches :class:`WesError` and shows
``str(error)``, which is a sentence a user can act on.
"""

from __future__ import annotations

from .client import WesClient
from .errors import (
    InvalidId,
    NotFound,
    WesAuthError,
    WesError,
    WesHTTPError,
    WesProtocolError,
    WesUnreachable,
)
from .models import (
    TERMINAL,
    Log,
    RunListPage,
    RunLog,
    RunRequest,
    RunState,
    RunStatus,
    RunSummary,
    ServiceInfo,
    State,
    TaskLog,
    TaskPage,
    is_terminal,
    parse_state,
    state_label,
)

__all__ = [
    "TERMINAL",
    "InvalidId",
    "Log",
    "NotFound",
    "RunListPage",
    "RunLog",
    "RunRequest",
    "RunState",
    "RunStatus",
    "RunSummary",
    "ServiceInfo",
    "State",
    "TaskLog",
    "TaskPage",
    "WesAuthError",
    "WesClient",
    "WesError",
    "WesHTTPError",
    "WesProtocolError",
    "WesUnreachable",
    "is_terminal",
    "parse_state",
    "state_label",
]
