"""Executors run jobs somewhere else. ``LocalProcessExecutor`` owns one spawned worker process per
device; a cluster executor (Ray) would implement the same small interface, so a render farm
changes only the executor, never job semantics."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from multiprocessing.connection import wait
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
    def terminate(self, grace: float = 2.0) -> int | None: ...
    def shutdown(self) -> None: ...


class LocalProcessExecutor:
    """One worker process (multiprocessing "spawn", one duplex Pipe), started lazily and
    replaced after a crash or a forced cancel."""

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        self.device = device
        self.threads = threads
        self._ctx = mp.get_context("spawn")
        self.proc: Any = None
        self.conn: Any = None
        self.ready_info: dict[str, Any] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def ensure_started(self) -> None:
        if self.alive:
            return
        self._reap()
        from sdk.worker import worker_main

        parent, child = self._ctx.Pipe(duplex=True)
        self.proc = self._ctx.Process(target=worker_main, args=(child, self.device, self.threads),
                                      name="vgen-worker", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready_info = None
        self.starts += 1

    def start_job(self, payload: dict[str, Any]) -> None:
        self.ensure_started()
        self.conn.send(("start", payload))

    def cancel_job(self, job_id: str) -> None:
        if self.alive:
            try:
                self.conn.send(("cancel", job_id))
            except (OSError, BrokenPipeError):
                pass

    def next_event(self, timeout: float) -> ev.Event | None:
        """The next event from the worker, None on timeout; raises :class:`WorkerDied` if it died."""
        if self.proc is None:
            return None
        while True:
            ready = wait([self.conn, self.proc.sentinel], timeout)
            if not ready:
                return None
            if self.conn in ready:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    self.proc.join(5)
                    raise WorkerDied(self.proc.exitcode) from None
                if isinstance(msg, tuple) and msg and msg[0] == "ready":
                    self.ready_info = msg[1]
                    continue
                return msg
            # only the sentinel: the process is gone; drain nothing more
            self.proc.join(5)
            raise WorkerDied(self.proc.exitcode)

    def terminate(self, grace: float = 2.0) -> int | None:
        """Stop the worker: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc is None:
            return None
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
        code = self.proc.exitcode
        self._reap()
        return code

    def shutdown(self) -> None:
        if self.proc is None:
            return
        if self.proc.is_alive():
            try:
                self.conn.send(("shutdown",))
            except (OSError, BrokenPipeError):
                pass
            self.proc.join(5)
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
        self.proc, self.conn = None, None


def kill_worker(executor: LocalProcessExecutor) -> None:
    """Test/benchmark helper: SIGKILL the worker as an OOM killer would."""
    if executor.pid:
        os.kill(executor.pid, signal.SIGKILL)
