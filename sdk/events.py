"""Events the worker and the RenderService report. Signals are facts: each names what happened."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class Event:
    job_id: str
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (array payloads become metadata only)."""
        out: dict[str, Any] = {"event": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name + "_shape"] = list(value.shape)
                continue
            out[f.name] = value
        return out


@dataclass
class JobStarted(Event):
    kind: str = "generate"
    spec_id: str = ""
    type: ClassVar[str] = "job_started"


@dataclass
class ProgressUpdated(Event):
    step: int = 0
    total: int = 0
    #: training jobs report e.g. {"loss": 0.12}
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    eta_s: float | None = None
    type: ClassVar[str] = "progress"


@dataclass
class PreviewReady(Event):
    step: int = 0
    total: int = 0
    #: uint8 [F, H, W, 3]
    frames: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 3), np.uint8))
    type: ClassVar[str] = "preview"


@dataclass
class LogRecord(Event):
    level: str = "INFO"
    message: str = ""
    type: ClassVar[str] = "log"


@dataclass
class ArtifactSaved(Event):
    """A trainer saved a checkpoint; ``path`` is inside the job's staging folder."""

    name: str = ""
    path: str = ""
    step: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "artifact_saved"


@dataclass
class JobFinished(Event):
    output_dir: str = ""
    type: ClassVar[str] = "job_finished"


@dataclass
class JobFailed(Event):
    message: str = ""
    hint: str = ""
    traceback: str = ""
    exit_code: int | None = None
    #: why, when it is a known resource fault: "disk_full", "out_of_memory", "hung", "crashed" ("" otherwise)
    reason: str = ""
    #: what the job ran with when it failed (the worker's runtime record: memory_mode, preflight …)
    details: dict[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "job_failed"


@dataclass
class JobCancelled(Event):
    """The job ended cancelled (the fact). Inside the job, the request to stop is the exception
    :class:`sdk.errors.CancelRequested`."""

    type: ClassVar[str] = "job_cancelled"


@dataclass
class JobRequeued(Event):
    """The service put a job back in the queue by itself (an out-of-memory retry in a lighter mode)."""

    reason: str = ""
    message: str = ""
    type: ClassVar[str] = "job_requeued"


@dataclass
class QueuePaused(Event):
    """The service stopped taking jobs on its own (e.g. the disk is full); ``reason`` says why and what to do.
    ``job_id`` is the job that met the fault ("" when none was running)."""

    reason: str = ""
    hint: str = ""
    type: ClassVar[str] = "queue_paused"


TERMINAL = (JobFinished, JobFailed, JobCancelled)
