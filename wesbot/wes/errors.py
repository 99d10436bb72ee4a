"""The errors of the WES client, one small tree.

    WesError                      anything that went wrong talking to WES; str() is one sentence for a user
    ├── InvalidId                 a run or task id that is refused before any request (empty, too long, control chars)
    ├── WesUnreachable            timeout, DNS failure, connection refused or reset
    ├── WesHTTPError              the server answered with an error status (.status_code, .message)
    │   ├── NotFound              404 (and sapporo's 400 for a malformed run id): .what names the missing thing
    │   └── WesAuthError          401 / 403
    └── WesProtocolError          a body that is not what the spec says (HTML, not JSON, wrong shape)

Only ``wesbot.wes.transport`` catches httpx's exceptions; everything above it catches :class:`WesError`
and shows ``str(error)``, which is already a sentence a user can act on. No message ever contains a
credential: the client builds them from the host name, status codes and the server's own error text.
"""

from __future__ import annotations


class WesError(Exception):
    """Base class. ``str(e)`` is a complete sentence meant for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidId(WesError):
    """A run id or task id that cannot be sent to the server."""


class WesUnreachable(WesError):
    """The server could not be reached, or did not answer in time."""


class WesHTTPError(WesError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, *, status_code: int, server_message: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message


class NotFound(WesHTTPError):
    """The run (or task) does not exist on the server.

    ``what`` is ``"run"`` or ``"task"``; ``run_id`` and ``task_id`` are the ids that were asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 404,
        server_message: str | None = None,
        what: str = "run",
        run_id: str | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, server_message=server_message)
        self.what = what
        self.run_id = run_id
        self.task_id = task_id


class WesAuthError(WesHTTPError):
    """The server rejected the credentials (401) or refused access (403)."""


class WesProtocolError(WesError):
    """The server answered, but not with what the WES spec describes."""
