"""Helpers and fixtures for tests against the real GA4GH reference WES server
(wes-service 5.0, cwltool back end).

This is a helper module, not a test file. Test packages import the fixtures into their conftest.py:

    from tests.realwes import real_runs, real_wes  # noqa: F401

How the reference server behaves, and why the helpers look the way they do (see ../shared/WES-NOTES.md):

- POST /runs takes multipart/form-data only; ``submit`` sends exactly what the server understands.
- The lost-child bug: a run that finishes and is not polled before the server starts another child
  process (any new submission, and every GET /service-info, which runs ``cwltool --version``) reads
  EXECUTOR_ERROR once and RUNNING forever after. So poll every run to its terminal state with
  ``wait_until_terminal`` BEFORE you submit the next one, and do not call /service-info while a run of
  yours may be finishing. Once a terminal state has been read, the server stores it and the run is stable.
- Unknown run ids answer RUNNING, and the ghost then shows in GET /runs forever. Do not make ghosts on the
  shared ``real_wes`` server: other tests list its runs. Start a private ``RealWes`` for that.
- Cancel is a no-op; a run goes on to its natural end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"
ECHO_CWL = DATA_DIR / "echo.cwl"
FAIL_CWL = DATA_DIR / "fail.cwl"
SLEEP_CWL = DATA_DIR / "sleep.cwl"

BASE_PATH = "/ga4gh/wes/v1"
TERMINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
POLL_INTERVAL = 0.2

SKIP_MESSAGE = "wes-server not installed: run bash .ci/run, or set WESBOT_WES_SERVER"


def find_wes_server() -> str | None:
    """The wes-server executable: $WESBOT_WES_SERVER, else <repo>/.venv-wes/bin/wes-server, else PATH."""
    env = os.environ.get("WESBOT_WES_SERVER")
    if env:
        return env
    local = REPO_ROOT / ".venv-wes" / "bin" / "wes-server"
    if local.exists():
        return str(local)
    return shutil.which("wes-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RealWesError(RuntimeError):
    """The real server did not start, or did not answer as expected."""


class RealWes:
    """One running reference wes-server (cwltool back end) in a fresh temp directory.

    ``RealWes()`` starts it and returns once GET /runs answers; ``.url`` is the WES base URL on 127.0.0.1.
    Use it as a context manager, or call ``.stop()``, which also removes the temp directory.
    """

    def __init__(
        self,
        executable: str | None = None,
        *,
        startup_timeout: float = 60.0,
        port_attempts: int = 3,
    ) -> None:
        exe = executable or find_wes_server()
        if exe is None:
            raise RealWesError(SKIP_MESSAGE)
        if not os.access(exe, os.X_OK):
            raise RealWesError(f"wes-server {exe!r} is not an executable file (check WESBOT_WES_SERVER)")
        self.executable = str(Path(exe).absolute())
        self.workdir = Path(tempfile.mkdtemp(prefix="wesbot-realwes-"))
        self.log_path = self.workdir / "wes-server.log"
        self.port = 0
        self.url = ""
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._final_log: str | None = None
        try:
            self._start(startup_timeout, port_attempts)
        except BaseException:
            self.stop()
            raise

    # -- life cycle -------------------------------------------------------------------------------------

    def _start(self, startup_timeout: float, port_attempts: int) -> None:
        bin_dir = str(Path(self.executable).parent)
        tmp = self.workdir / "tmp"  # attachments and cwltool's scratch dirs land here, not in the system /tmp
        tmp.mkdir()
        env = dict(os.environ)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env["TMPDIR"] = str(tmp)
        self._log = open(self.log_path, "ab")  # closed in stop()
        t0 = time.monotonic()
        for attempt in range(1, port_attempts + 1):
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}{BASE_PATH}"
            self._log.write(f"--- wesbot: attempt {attempt}, port {self.port}\n".encode())
            self._log.flush()
            self._proc = subprocess.Popen(
                [
                    self.executable,
                    "--backend=wes_service.cwl_runner",
                    "--opt",
                    "runner=cwltool",
                    "--port",
                    str(self.port),
                ],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Its own process group, so stop() can also end the cwltool runs it started.
                start_new_session=True,
            )
            deadline = time.monotonic() + startup_timeout
            if self._wait_ready(deadline):
                self.startup_seconds = time.monotonic() - t0
                return
            if self._proc.poll() is None:  # alive but never answered
                raise RealWesError(
                    f"wes-server did not answer GET {self.url}/runs within {startup_timeout:.0f} s\n"
                    + self.log_text()
                )
            self._proc = None  # exited (and reaped by poll())
            if "address already in use" not in self.log_text().lower():
                raise RealWesError("wes-server exited during startup\n" + self.log_text())
        raise RealWesError(
            f"wes-server could not bind a port in {port_attempts} attempts\n" + self.log_text()
        )

    def _wait_ready(self, deadline: float) -> bool:
        assert self._proc is not None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False
                try:
                    r = client.get(self.url + "/runs")
                    # Our own server, not some other one on a recycled port: it must still be alive.
                    if r.status_code == 200 and "workflows" in r.json() and self._proc.poll() is None:
                        return True
                except (httpx.TransportError, ValueError):
                    pass
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM the server and its runs, SIGKILL if needed, reap it, and remove the temp directory."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._stop_process(proc)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._final_log is None:
                self._final_log = self._read_log()
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _stop_process(proc: subprocess.Popen[bytes]) -> None:
        if proc.returncode is not None:
            return
        # Until it is reaped, the server's pid (= its process group id) cannot be reused, so signalling the
        # group is safe. waitid(WNOWAIT) sees the exit without reaping.
        pgid = proc.pid

        def signal_group(sig: int) -> None:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass

        def exited_within(seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    return True
                if info is not None:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)

        try:
            signal_group(signal.SIGTERM)
            if not exited_within(10.0):
                signal_group(signal.SIGKILL)
                exited_within(10.0)
            signal_group(signal.SIGKILL)  # any cwltool run still going
        finally:
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> RealWes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------------------------------------

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        """The server's stdout and stderr so far (kept after stop())."""
        if self._final_log is not None:
            return self._final_log
        if self._log is not None:
            self._log.flush()
        return self._read_log()

    def run_dir(self, run_id: str) -> Path:
        """The run's directory: workflows/<run_id> (request.json, stderr, pid, exit_code, outdir/)."""
        return self.workdir / "workflows" / run_id

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        return f"RealWes(url={self.url!r}, workdir={str(self.workdir)!r}, running={self.running})"


# -- client helpers (plain httpx, independent of wesbot's own client) --------------------------------------


def submit(
    url: str,
    cwl_path: str | os.PathLike[str],
    params: dict[str, Any],
    *,
    client: httpx.Client | None = None,
) -> str:
    """POST /runs the way the reference server wants it (multipart); returns the new run id."""
    path = Path(cwl_path)
    data = {
        "workflow_url": path.name,
        "workflow_params": json.dumps(params),
        "workflow_type": "CWL",
        "workflow_type_version": "v1.0",
    }
    with open(path, "rb") as fh:
        files = [("workflow_attachment", (path.name, fh, "application/octet-stream"))]
        if client is None:
            with httpx.Client(timeout=30.0) as own:
                r = own.post(url + "/runs", data=data, files=files)
        else:
            r = client.post(url + "/runs", data=data, files=files)
    if r.status_code != 200:
        raise RealWesError(f"POST {url}/runs -> {r.status_code}: {r.text[:500]}")
    return str(r.json()["run_id"])


def get_status(url: str, run_id: str, *, client: httpx.Client | None = None) -> str:
    """GET /runs/{id}/status -> state."""
    if client is None:
        with httpx.Client(timeout=30.0) as own:
            return get_status(url, run_id, client=own)
    r = client.get(f"{url}/runs/{run_id}/status")
    r.raise_for_status()
    return str(r.json()["state"])


def wait_until_terminal(
    url: str,
    run_id: str,
    timeout: float = 60.0,
    *,
    client: httpx.Client | None = None,
) -> str:
    """Poll GET /runs/{id}/status every 0.2 s until a terminal state; return it.

    Raises TimeoutError (naming the last state seen) if none comes within ``timeout`` seconds.
    """
    if client is None:
        with httpx.Client(timeout=30.0) as own:
            return wait_until_terminal(url, run_id, timeout, client=own)
    deadline = time.monotonic() + timeout
    while True:
        state = get_status(url, run_id, client=client)
        if state in TERMINAL_STATES:
            return state
        if time.monotonic() >= deadline:
            raise TimeoutError(f"run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


def submit_and_wait(
    url: str,
    cwl_path: str | os.PathLike[str],
    params: dict[str, Any],
    timeout: float = 60.0,
    *,
    client: httpx.Client | None = None,
) -> tuple[str, str]:
    """submit() then wait_until_terminal(); returns (run_id, final_state)."""
    run_id = submit(url, cwl_path, params, client=client)
    return run_id, wait_until_terminal(url, run_id, timeout, client=client)


# -- pytest fixtures -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealRuns:
    """Two finished runs on the session's real server."""

    ok_id: str  # echo.cwl with message=ECHO_MESSAGE
    ok_state: str  # COMPLETE
    fail_id: str  # fail.cwl
    fail_state: str  # EXECUTOR_ERROR
    seconds: float  # time taken to submit and finish both


ECHO_MESSAGE = "hello from wesbot"


def _missing_server() -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(
            "CI=true but wes-server was not found: set WESBOT_WES_SERVER to the reference server "
            "(bash .ci/run installs it into .venv-wes and exports it)",
            pytrace=False,
        )
    pytest.skip(SKIP_MESSAGE)


@pytest.fixture(scope="session")
def real_wes() -> Iterator[RealWes]:
    """One reference wes-server for the whole session (skipped if not installed; a failure if CI=true)."""
    exe = find_wes_server()
    if exe is None:
        _missing_server()
    server = RealWes(exe)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_runs(real_wes: RealWes) -> RealRuns:
    """An echo run that COMPLETEs and a failing run that ends in EXECUTOR_ERROR, each polled to its end
    before the next submission (the lost-child bug)."""
    t0 = time.monotonic()
    try:
        with httpx.Client(timeout=30.0) as client:
            ok_id, ok_state = submit_and_wait(
                real_wes.url, ECHO_CWL, {"message": ECHO_MESSAGE}, client=client
            )
            fail_id, fail_state = submit_and_wait(real_wes.url, FAIL_CWL, {}, client=client)
    except (RealWesError, TimeoutError, httpx.HTTPError) as e:
        pytest.fail(
            f"could not make the real runs: {e}\n--- wes-server log:\n{real_wes.log_text()}", pytrace=False
        )
    return RealRuns(ok_id, ok_state, fail_id, fail_state, time.monotonic() - t0)
