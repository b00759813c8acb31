"""The one object that turns RenderService events (from the service's thread) into Qt signals.

The service calls :meth:`ServiceBridge.on_event` on its own thread. Terminal and lifecycle
events are re-emitted as they come; progress and previews are coalesced, so however fast a
worker reports, the GUI thread receives at most one of each per job per event-loop turn
(the latest one). Signals are facts; the owner connects them.
"""
from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


class ServiceBridge(QObject):
    job_started = Signal(str)
    #: job_id, step, total, elapsed seconds, eta seconds (-1 when unknown)
    progress_updated = Signal(str, int, int, float, float)
    #: job_id, step, total, metrics (a training step's {"loss": …, "lr": …}); after its progress_updated
    metrics_updated = Signal(str, int, int, object)
    #: job_id, step, total, uint8 frames [F, H, W, 3]
    preview_ready = Signal(str, int, int, object)
    #: job_id, level, message
    log_received = Signal(str, str, str)
    job_finished = Signal(str)
    #: job_id, message, hint, traceback
    job_failed = Signal(str, str, str, str)
    job_cancelled = Signal(str)
    #: the service paused itself (a full disk): reason, hint
    queue_paused = Signal(str, str)

    _coalesced_posted = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._latest_progress: dict[str, Any] = {}
        self._latest_preview: dict[str, Any] = {}
        self._posted = False
        self._coalesced_posted.connect(self._on_self_coalesced_posted)

    # -- the service's thread -----------------------------------------------------------
    def on_event(self, event: Any) -> None:
        """Subscriber for :meth:`sdk.service.RenderService.subscribe` (any thread)."""
        kind = getattr(event, "type", "")
        if kind in ("progress", "preview"):
            with self._lock:
                (self._latest_progress if kind == "progress" else self._latest_preview)[event.job_id] = event
                post, self._posted = not self._posted, True
            if post:
                self._coalesced_posted.emit()
            return
        if kind in ("job_finished", "job_failed", "job_cancelled"):
            self._flush()  # progress first, then the end: a view never sees a step after the end
        if kind == "job_started":
            self.job_started.emit(event.job_id)
        elif kind == "log":
            self.log_received.emit(event.job_id, event.level, event.message)
        elif kind == "job_finished":
            self.job_finished.emit(event.job_id)
        elif kind == "job_failed":
            self.job_failed.emit(event.job_id, event.message, event.hint or "", event.traceback or "")
        elif kind == "job_cancelled":
            self.job_cancelled.emit(event.job_id)
        elif kind == "queue_paused":
            self.queue_paused.emit(event.reason, event.hint or "")

    def _flush(self) -> None:
        with self._lock:
            progress, previews = self._latest_progress, self._latest_preview
            self._latest_progress, self._latest_preview = {}, {}
            self._posted = False
        for e in progress.values():
            eta = -1.0 if e.eta_s is None else float(e.eta_s)
            self.progress_updated.emit(e.job_id, int(e.step), int(e.total), float(e.elapsed_s), eta)
            if getattr(e, "metrics", None):
                self.metrics_updated.emit(e.job_id, int(e.step), int(e.total), dict(e.metrics))
        for e in previews.values():
            self.preview_ready.emit(e.job_id, int(e.step), int(e.total), e.frames)

    # -- the GUI thread -----------------------------------------------------------------
    @Slot()
    def _on_self_coalesced_posted(self) -> None:
        self._flush()
