"""Reading the frames of a :class:`sdk.inputs.VideoInput`: an output's lossless frames when it has them, else the
decoded file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sdk.errors import InvalidRequest
from sdk.inputs import VideoInput


def load_frames(video: VideoInput, *, field: str = "video") -> tuple[np.ndarray, float]:
    """uint8 ``[F, H, W, 3]`` frames and the frame rate. Raises InvalidRequest naming ``field`` and the file when it
    cannot be decoded."""
    if video.frames_dir is not None and Path(video.frames_dir).is_dir():
        from sdk.outputs import read_frames

        return read_frames(Path(video.frames_dir).parent), float(video.fps or 8)
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(video.path), pix_fmt="rgb24")
        info = next(reader)
        w, h = info["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    except (OSError, RuntimeError, StopIteration) as exc:
        raise InvalidRequest(f"Input {field!r}: cannot decode {video.path} ({str(exc).strip().splitlines()[-1:]}).",
                             hint="Give a video ffmpeg reads (H.264 .mp4 is safest).", field=field) from None
    if not frames:
        raise InvalidRequest(f"Input {field!r}: {video.path} has no video frames.", hint="The file may be truncated.",
                             field=field)
    return np.stack(frames), float(info.get("fps") or video.fps or 8)
