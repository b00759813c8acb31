"""Executors run jobs somewhere else. ``LocalProcessExecutor`` owns one worker process per
device; a cluster executor (Ray) would implement the same small interface, so a render farm
changes only the executor, never job semantics."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from sdk import events as ev


class WorkerDied(Exception):
    def __init__(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        super().__init__(describe_exit(exit_code))


def describe_exit(code: int | None) -> str:
    if code is None:
        return "The worker process stopped answering."
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"The worker process died (exit code {code}, killed by {name})."
    return f"The worker process exited unexpectedly (exit code {code})."


class Executor(Protocol):
    def start_job(self, payload: dict[str, Any]) -> None: ...
    def cancel_job(self, job_id: str) -> None: ...
    def next_event(self, timeout: float) -> ev.Event | None: ...
    def silence(self) -> float:
        """Seconds since the worker last said anything (a heartbeat counts); 0 when none runs."""
    def terminate(self, grace: float = 2.0) -> int | None: ...
    def shutdown(self) -> None: ...


#: glibc malloc in the worker: serve allocations up to 32 MiB (glibc's cap) from the heap and trim it only past 1 GiB
#: free, so the activation buffers freed and re-allocated at every UNet call reuse pages instead of faulting fresh
#: ones in (measured on the real-size UNet, fp32: 0.9 M page faults per call → 160). A dropped model's memory stays
#: in the heap for reuse; :func:`sdk.ml.process_memory.trim` gives it back.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(1024 ** 3),
              "MALLOC_TOP_PAD_": str(256 * 1024 * 1024), "MALLOC_ARENA_MAX": "4"}


def worker_env(base: dict[str, str] | None = None, *, device: str = "auto") -> dict[str, str]:
    """The environment a worker process starts with (``base``: default ``os.environ``; a value already set there
    wins): the malloc tuning on Linux for CPU work (``device`` cpu or auto), unless ``$VGEN_ACCEL`` is off."""
    env = dict(os.environ if base is None else base)
    off = env.get("VGEN_ACCEL", "").strip().lower() in ("0", "off", "false", "no")
    if off or not sys.platform.startswith("linux") or not device.startswith(("cpu", "auto")):
        return env
    for k, v in MALLOC_ENV.items():
        env.setdefault(k, v)
    return env


class LocalProcessExecutor:
    """One worker process per device, started lazily and replaced after a crash or a forced cancel.

    The worker is a fresh interpreter (``python -m sdk.worker``) joined by one duplex socket that
    carries pickled messages. Unlike multiprocessing's "spawn", this never re-imports the caller's
    ``__main__``: a ten-line script without an ``if __name__ == "__main__"`` guard, or the GUI's
    entry module, stays out of the worker. A pidfd (Linux) wakes the parent the moment the worker dies.
    """

    def __init__(self, device: str = "auto", threads: int | None = None, heartbeat: float | None = None) -> None:
        self.device = device
        self.threads = threads
        #: seconds between the worker's heartbeats (None: the worker's default, 5 s)
        self.heartbeat = heartbeat
        self._last_heard = 0.0
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self._pidfd: int | None = None
        self.ready_info: dict[str, Any] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_started(self) -> None:
        if self.alive:
            return
        self._reap()
        parent_sock, child_sock = socket.socketpair()
        cmd = [sys.executable, "-m", "sdk.worker", "--fd", str(child_sock.fileno()), "--device", self.device]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.heartbeat:
            cmd += ["--heartbeat", str(self.heartbeat)]
        try:
            stdout: Any = sys.stderr.fileno()  # keep the worker's prints out of `--json` output
        except (AttributeError, OSError, ValueError):
            stdout = None
        self.proc = subprocess.Popen(cmd, pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL, stdout=stdout,
                                     env=worker_env(device=self.device),
                                     start_new_session=True)  # Ctrl-C stops the parent; the worker follows it
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        self.ready_info = None
        self._last_heard = time.monotonic()
        self.starts += 1

    def start_job(self, payload: dict[str, Any]) -> None:
        self.ensure_started()
        self.conn.send(("start", payload))

    def cancel_job(self, job_id: str) -> None:
        if self.alive:
            try:
                self.conn.send(("cancel", job_id))
            except OSError:
                pass

    def next_event(self, timeout: float) -> ev.Event | None:
        """The next event from the worker, None on timeout; raises :class:`WorkerDied` if it died."""
        if self.proc is None:
            return None
        waitables: list[Any] = [self.conn] + ([self._pidfd] if self._pidfd is not None else [])
        while True:
            ready = wait(waitables, timeout)
            if not ready:
                if self.proc.poll() is not None and not self.conn.poll():
                    raise WorkerDied(self._exit_code())
                return None
            if self.conn in ready:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    raise WorkerDied(self._exit_code()) from None
                self._last_heard = time.monotonic()
                if isinstance(msg, tuple) and msg and msg[0] == "ready":
                    self.ready_info = msg[1]
                    continue
                if isinstance(msg, tuple) and msg and msg[0] == "heartbeat":
                    return None  # the caller checks cancel and hang timers on every return
                return msg
            # only the pidfd: the process is gone (read what it sent before dying first)
            if self.conn.poll():
                continue
            raise WorkerDied(self._exit_code())

    def silence(self) -> float:
        """Seconds since the worker last sent anything (a heartbeat counts); 0 when no worker runs."""
        return time.monotonic() - self._last_heard if self.alive else 0.0

    def _exit_code(self) -> int | None:
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, grace: float = 2.0) -> int | None:
        """Stop the worker: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self._reap()
        return code

    def shutdown(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.conn.send(("shutdown",))
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.terminate()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _reap(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        if self._pidfd is not None:
            os.close(self._pidfd)
        self.proc, self.conn, self._pidfd = None, None, None


def kill_worker(executor: LocalProcessExecutor) -> None:
    """Test/benchmark helper: SIGKILL the worker as an OOM killer would."""
    if executor.pid:
        os.kill(executor.pid, signal.SIGKILL)
