"""The value every generator returns, and the one reader of a video input's frames (file or earlier output)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Video:
    """uint8 RGB frames ``[F, H, W, 3]`` and a frame rate."""

    frames: np.ndarray
    fps: int = 8

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3 or f.shape[0] < 1:
            raise ValueError(f"Video frames must be uint8 [F,H,W,3]; got {getattr(f, 'dtype', type(f))} {getattr(f, 'shape', '')}")
        if self.fps < 1:
            raise ValueError(f"fps must be ≥ 1, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def decode_video_file(path: Any, *, field: str = "path",
                      hint: str = "Give a video ffmpeg reads (H.264 .mp4 is safest).") -> tuple[np.ndarray, float]:
    """uint8 ``[F, H, W, 3]`` frames of a video file and its frame rate (0.0 when the file does not say).

    Raises :class:`~sdk.errors.InvalidRequest` naming ``field``, the file and ``hint`` when ffmpeg cannot decode it
    or it has no frames."""
    import imageio_ffmpeg

    from sdk.errors import InvalidRequest

    path = Path(path)
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        info = next(reader)
        w, h = info["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    except (OSError, RuntimeError, StopIteration, ValueError) as exc:
        last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][-200:]
        raise InvalidRequest(f"Input {field!r}: cannot decode {path.name} ({last}).", hint=hint, field=field) from None
    if not frames:
        raise InvalidRequest(f"Input {field!r}: {path.name} has no video frames.", hint=hint, field=field)
    return np.stack(frames), float(info.get("fps") or 0.0)


def read_video_input(value: Any, *, field: str = "video",
                     hint: str = "Give a video ffmpeg reads (H.264 .mp4 is safest).") -> tuple[np.ndarray, float | None]:
    """uint8 ``[F, H, W, 3]`` frames of a video input (a :class:`sdk.inputs.VideoInput`, a condition, or a path) and
    its frame rate (None when unknown): an earlier output's lossless PNG frames when it has them, else the decoded
    file (whose own frame rate wins). Raises :class:`~sdk.errors.InvalidRequest` as :func:`decode_video_file`."""
    fps = getattr(value, "fps", None)
    frames_dir = getattr(value, "frames_dir", None)
    if frames_dir is not None and Path(frames_dir).is_dir():
        from sdk.outputs import read_frames

        return read_frames(Path(frames_dir).parent), (float(fps) if fps else None)
    frames, file_fps = decode_video_file(getattr(value, "path", value), field=field, hint=hint)
    return frames, (file_fps or (float(fps) if fps else None))
