"""A RenderService subscriber that keeps, per job, the step events (previews and progress) the worker sent."""
from __future__ import annotations

import threading

from sdk import events as ev


class StepEvents(dict):
    """``{job id: [PreviewReady | ProgressUpdated, ...]}`` in arrival order; subscribe it to a RenderService
    (the service publishes from its slot threads, hence the lock)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, (ev.PreviewReady, ev.ProgressUpdated)):
            with self._lock:
                self.setdefault(event.job_id, []).append(event)
