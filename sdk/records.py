"""Plain, detached records returned by :class:`sdk.Project` (safe to hand to any thread or view)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JobStatus(str, enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class AssetRecord:
    hash: str            # sha256 hex of the file bytes
    kind: str            # "image" | "video" | "mask"
    path: Path           # absolute path of the content-addressed copy
    original_name: str
    width: int
    height: int
    num_frames: int = 1
    fps: float | None = None
    bytes: int = 0
    problem: str | None = None   # set when the row is invalid (damaged or crafted): ``path`` then never exists


@dataclass(frozen=True)
class SubjectImageRecord:
    asset: AssetRecord
    mask: AssetRecord | None = None


@dataclass(frozen=True)
class SubjectRecord:
    id: int
    name: str
    token: str
    images: tuple[SubjectImageRecord, ...] = ()
    problem: str | None = None   # set when the row or one of its assets is invalid: don't queue jobs with it


@dataclass(frozen=True)
class MotionRecord:
    id: int
    name: str
    videos: tuple[AssetRecord, ...] = ()
    problem: str | None = None   # set when the row or one of its videos is invalid: don't queue jobs with it


@dataclass(frozen=True)
class PromptRecord:
    id: int
    text: str
    negative: str = ""


@dataclass(frozen=True)
class AdapterRecord:
    id: str
    name: str
    kind: str                    # e.g. "dreamvideo.identity", "videolcm.student"
    path: Path                   # folder under adapters/
    job_id: str | None = None
    step: int = 0
    subject_id: int | None = None
    motion_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewJob:
    """A validated job about to be queued."""

    kind: str                    # "generate" | "train"
    spec_id: str
    params: dict[str, Any]       # validated, JSON-ready (model_dump(mode="json"))
    seed: int
    spec_version: str = ""
    prompt: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)   # {"image": asset_hash, "subject": id, "motion": id, ...}
    weights: str | None = None   # weights id or absolute path
    #: how to run it: {"precision": auto|fp32|bf16|fp16, "memory_mode": auto|none|balanced|low|minimum}
    options: dict[str, Any] = field(default_factory=dict)
    #: jobs whose outputs it takes: it waits for them
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRecord:
    id: str
    batch_id: str
    kind: str
    spec_id: str
    spec_version: str
    params: dict[str, Any]
    seed: int
    prompt: str | None
    inputs: dict[str, Any]
    weights: str | None
    status: JobStatus
    position: int
    attempts: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress_step: int = 0
    progress_total: int = 0
    cancel_requested: bool = False
    error_message: str | None = None
    error_hint: str | None = None
    error_traceback: str | None = None
    exit_code: int | None = None
    #: Why the row is invalid (damaged or crafted: e.g. params not a JSON object, an id that is not 12 hex
    #: characters), else None. An invalid job is listed but never run: claim_next_job() marks it FAILED.
    problem: str | None = None
    #: run options: precision, memory_mode and, after an out-of-memory retry, ``oom_retry`` (see sdk.options)
    options: dict[str, Any] = field(default_factory=dict)
    #: ids of the jobs whose outputs it takes; it waits for them
    depends_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d


@dataclass(frozen=True)
class BatchRecord:
    id: str
    created_at: float
    job_ids: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # from queueing: things worth knowing (e.g. a prompt the encoder cuts)


@dataclass(frozen=True)
class OutputRecord:
    id: int
    job_id: str
    dir: Path
    video_path: Path
    meta_path: Path
    thumb_path: Path | None
    frames_dir: Path | None
    created_at: float
    starred: bool = False       # kept by the user (the gallery's star)


@dataclass(frozen=True)
class ConditionRecord:
    """A condition video (canny, depth …) made by a condition extractor, stored as a video asset.

    ``source`` says what it was extracted from: ``{"motion": name, "video": sha256}``, ``{"output": job id}`` or
    ``{"asset": sha256}``; ``job_id`` is the extract job (its output folder previews it; None once that job is
    gone)."""

    id: str
    kind: str                    # "canny", "depth" …
    asset_hash: str
    path: Path                   # the asset's file (content-addressed, under assets/)
    extractor: str               # the ConditionSpec id
    extractor_version: str
    source: dict[str, Any]
    params: dict[str, Any]
    job_id: str | None
    created_at: float
    num_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float | None = None
    #: set when the row or its asset is invalid (damaged or crafted): ``path`` then never exists; don't use it
    problem: str | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """What a generator may want to know about it besides the frames (JSON-ready)."""
        return {"id": self.id, "kind": self.kind, "extractor": self.extractor,
                "extractor_version": self.extractor_version, "source": dict(self.source),
                "params": dict(self.params), "job_id": self.job_id, "num_frames": self.num_frames,
                "width": self.width, "height": self.height, "fps": self.fps}


@dataclass(frozen=True)
class ScoreRecord:
    """A metric's scores of one job's output (``values``: name → number, the first the headline score)."""

    id: int
    job_id: str                  # the scored output's job
    metric: str                  # the MetricSpec id
    metric_version: str
    values: dict[str, float]
    details: dict[str, Any]
    created_at: float
    #: set when the row is invalid (damaged or crafted): ``values`` is then empty
    problem: str | None = None

    @property
    def score(self) -> float | None:
        """The headline score (the metric's first value), None for an invalid row."""
        return next(iter(self.values.values()), None)
