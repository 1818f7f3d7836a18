"""Start the simulator as a subprocess for tests and benchmarks.

``start_simulator(*args)`` runs ``python -m exchange_sim --ws-port 0 --rest-port 0 *args``,
waits for the ready line and returns a :class:`SimProcess`. Use it as a context manager or
call ``stop()``; the process is only ever stopped by its own PID.

Rule 1: it never returns before the simulator listens; on failure it raises
        :class:`SimulatorStartError` with the tail of the simulator's stderr.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from exchange_sim.errors import SimulatorStartError


@dataclass
class SimProcess:
    """A running simulator subprocess."""

    ws_url: str
    rest_url: str
    control_url: str
    pid: int
    process: subprocess.Popen[bytes] = field(repr=False)
    stderr_file: IO[bytes] = field(repr=False)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr_file.close()
        return int(self.process.returncode)

    def stderr(self) -> str:
        """Everything the simulator logged so far."""
        self.stderr_file.flush()
        with open(self.stderr_file.name, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def control(self, action: str, body: dict[str, Any] | None = None) -> Any:
        """POST a control action (GET for ``stats``); returns the decoded JSON answer."""
        url = f"{self.control_url}/{action}"
        data = None if action == "stats" else json.dumps(body or {}).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())

    def stats(self) -> Any:
        """``GET /control/stats``."""
        return self.control("stats")

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_simulator(*args: str, timeout: float = 20.0) -> SimProcess:
    """Start ``python -m exchange_sim`` with ``args`` and wait for its ready line."""
    argv = [sys.executable, "-m", "exchange_sim"]
    if "--ws-port" not in args:
        argv += ["--ws-port", "0"]
    if "--rest-port" not in args:
        argv += ["--rest-port", "0"]
    err = tempfile.NamedTemporaryFile(prefix="exchange_sim-", suffix=".log")
    proc = subprocess.Popen([*argv, *args], stdout=subprocess.PIPE, stderr=err)  # noqa: S603
    line = _read_line(proc, timeout)
    if line is None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
        err.close()
        raise SimulatorStartError(f"simulator gave no ready line (exit {proc.returncode}): {tail}")
    ready = json.loads(line)
    return SimProcess(ready["ws_url"], ready["rest_url"], ready["control_url"], ready["pid"], proc, err)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
    assert proc.stdout is not None  # noqa: S101
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return None
            buffer += chunk
    return buffer.split(b"\n", 1)[0]
