"""What plugins receive in ``JobRequest.inputs`` for each typed input (plain data; no torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SubjectInput:
    """A subject as a generator/trainer receives it: its token and image files (masks optional)."""

    name: str
    token: str
    images: list[Path]
    masks: list[Path | None] = field(default_factory=list)


@dataclass
class MotionInput:
    name: str
    videos: list[Path]


@dataclass
class VideoInput:
    """A video to work from: an imported file or an earlier job's output (then ``frames_dir`` holds its lossless
    frames and ``meta`` its recipe)."""

    path: Path
    num_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames_dir: Path | None = None
    job_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdapterInput:
    id: str | None
    path: Path
    step: int = 0
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConditionInput:
    """A condition video (depth, sketch, canny …) extracted from a source video, as a project asset.

    ``path`` is the asset (H.264, as every output); ``frames_dir`` the extract job's lossless frames while its
    output exists (prefer them: edges and masks survive exactly). ``source`` says what it was extracted from
    (``{"motion": name, "video": sha256}``, ``{"output": job id}`` or ``{"asset": sha256}``); ``meta`` holds the
    extractor's version and params."""

    kind: str
    path: Path
    extractor: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    num_frames: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames_dir: Path | None = None


# -- fields -----------------------------------------------------------------------------------------------------
