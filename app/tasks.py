"""Blocking sdk calls run off the GUI thread; their results come back as queued signals.

``TaskRunner.submit(fn, on_done, on_error)`` runs ``fn()`` on a worker thread and calls
``on_done(result)`` or ``on_error(exc)`` on the GUI thread. The default runner is serial, so
project writes keep the order the user made them in; file work (thumbnails, decoding) uses a
second, parallel runner.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger("vgen.app.tasks")


class _Relay(QObject):
    """Lives in the GUI thread; its signals, emitted from a pool thread, arrive queued."""

    finished = Signal(bool, object)

    def __init__(self, on_done: Callable[[Any], None] | None, on_error: Callable[[BaseException], None] | None,
                 runner: "TaskRunner") -> None:
        super().__init__()
        self._on_done, self._on_error, self._runner = on_done, on_error, runner
        self.finished.connect(self._on_self_finished)

    @Slot(bool, object)
    def _on_self_finished(self, ok: bool, boxed: Any) -> None:
        value = boxed[0]
        self._runner._forget(self)
        try:
            if ok:
                if self._on_done is not None:
                    self._on_done(value)
            elif self._on_error is not None:
                self._on_error(value)
            else:
                self._runner.task_failed.emit(value)
        finally:
            self.deleteLater()


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn, self._relay = fn, relay

    def run(self) -> None:  # a pool thread: report everything, raise nothing
        try:
            result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - the boundary of a background task
            log.debug("background task failed", exc_info=True)
            self._relay.finished.emit(False, [exc])
        else:
            # boxed: PySide6 mishandles the reference count of a bare None sent through an object signal
            self._relay.finished.emit(True, [result])


class TaskRunner(QObject):
    """A pool of background threads for sdk calls (serial unless ``threads`` > 1)."""

    #: an exception from a task submitted without ``on_error``
    task_failed = Signal(object)
    #: True while tasks are pending
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._pending: set[_Relay] = set()

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> None:
        relay = _Relay(on_done, on_error, self)
        self._pending.add(relay)
        if len(self._pending) == 1:
            self.busy_changed.emit(True)
        self._pool.start(_Runnable(fn, relay))

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _forget(self, relay: _Relay) -> None:
        self._pending.discard(relay)
        if not self._pending:
            self.busy_changed.emit(False)

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until running tasks finish (used when closing)."""
        return self._pool.waitForDone(msecs)
