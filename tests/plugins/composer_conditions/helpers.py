"""Shared by the composer_conditions tests: a small real H.264 clip, and running an extractor in-process with a real
JobContext (its events collected), as the worker runs it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sdk import events as ev
from sdk.context import JobContext, JobRequest
from sdk.inputs import VideoInput
from sdk.outputs import write_mp4
from sdk.params import validate_params
from sdk.specs import load_entry
from sdk.video import Video


def clip_frames(n: int = 24, h: int = 48, w: int = 64) -> np.ndarray:
    """A dim background (smooth gradients) with a bright textured square (blocks of random colours, so a codec's block
    matching has one answer) moving 2 px right per frame."""
    ys, xs = np.mgrid[0:h, 0:w]
    base = np.stack([xs * 255 // (w - 1), ys * 255 // (h - 1), (xs + ys) * 255 // (w + h - 2)], -1).astype(np.uint8)
    frames = np.repeat(base[None] // 3, n, axis=0)
    texture = np.kron(np.random.RandomState(0).randint(90, 256, (4, 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    for t in range(n):
        left = 4 + 2 * t
        frames[t, 12:28, left:left + 16] = texture[:, :max(0, min(16, w - left))]
    return frames


def make_clip(path: Path, n: int = 24, h: int = 48, w: int = 64, fps: int = 24) -> Path:
    """A real H.264 .mp4 of :func:`clip_frames` (imageio-ffmpeg, as every output)."""
    return write_mp4(path, Video(clip_frames(n, h, w), fps=fps))


class Run:
    """What one in-process extraction emitted."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def logs(self) -> list[str]:
        return [e.message for e in self.of(ev.LogRecord)]


def extract(spec: Any, video: Path, tmp: Path, params: dict[str, Any] | None = None, *,
            weights: Path | None = None, cancel_after: int | None = None, **inputs: Any) -> tuple[Video, Run]:
    """Run ``spec``'s extractor on ``video`` with a real JobContext. ``cancel_after``: ask to cancel once that many
    progress events were sent."""
    run = Run()
    p = validate_params(spec.params, params or {}, spec_id=spec.id)
    req = JobRequest(job_id="job", kind="extract", spec_id=spec.id, params=p, seed=0,
                     inputs={"video": VideoInput(path=video), **inputs}, weights=weights)
    flag = (lambda: len(run.of(ev.ProgressUpdated)) >= cancel_after) if cancel_after else (lambda: False)
    ctx = JobContext("job", run, staging_dir=tmp / "staging", kind="extract", device="cpu", cancel_flag=flag)
    result = load_entry(spec.entry)().extract(ctx, req)
    return result, run


def decoded_frames(path: Path) -> np.ndarray:
    """Every frame of a video file as ffmpeg decodes it (what an extractor starts from)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    w, h = next(reader)["size"]
    return np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader])
