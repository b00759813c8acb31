"""The frames every extractor starts from, sampled as VGen's ``inference_tft2v_vcomposer_entrance`` samples its
reference video, and the loop that turns them into a condition video with progress, previews and cancel.

Sampling: ``stride = round(source fps / sample_fps)`` (at least 1); frames ``start_frame, start_frame + stride, …``
until ``num_frames`` are taken, each resized to ``width``×``height`` with PIL's bilinear filter and no crop
(VGen's ``data.Resize``); a shorter source leaves the rest of the frames empty (VGen's ``torch.zeros`` video). VGen
starts at a random frame and, reading with OpenCV, skips the first one; here the start is a parameter, so the same
params give the same frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.inputs import VideoInput


@dataclass
class Sampled:
    """Sampled, resized uint8 RGB ``frames`` ``[num_frames, H, W, 3]``; the first ``real`` are the source's, the
    rest empty padding. ``stride`` and ``source_fps`` as used; ``source_frames``: how many the source has."""

    frames: np.ndarray
    real: int
    stride: int
    source_fps: float
    source_frames: int


def stride_for(source_fps: float, sample_fps: int) -> int:
    """VGen's stride: ``round(source fps / sample_fps)``, at least 1 (Python's round, as VGen's)."""
    return max(1, round(float(source_fps) / sample_fps))


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` resized to ``width``×``height`` as VGen's ``data.Resize`` does (PIL bilinear, no crop)."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def _iter_source(video: VideoInput, field: str) -> tuple[Any, float]:
    """(an iterator over the source's uint8 RGB frames, its fps); InvalidRequest naming ``field`` and the file when it
    cannot be decoded."""
    if video.frames_dir is not None and Path(video.frames_dir).is_dir():
        pngs = sorted(Path(video.frames_dir).glob("[0-9]*.png"))
        if pngs:  # an earlier output's lossless frames
            def read() -> Any:
                for p in pngs:
                    with Image.open(p) as im:
                        yield np.asarray(im.convert("RGB"))
            return read(), float(video.fps or 8)
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(video.path), pix_fmt="rgb24")
        info = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise _undecodable(video, field, exc) from None
    w, h = info["size"]

    def frames() -> Any:
        try:
            for buf in reader:
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError, ValueError) as exc:
            raise _undecodable(video, field, exc) from None
        finally:
            reader.close()
    return frames(), float(info.get("fps") or video.fps or 8)


def _undecodable(video: VideoInput, field: str, exc: BaseException) -> InvalidRequest:
    last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
    return InvalidRequest(f"Input {field!r}: cannot decode {Path(video.path).name} as a video ({last}).",
                          hint="Give a video ffmpeg reads (H.264 .mp4 is safest); the file may be corrupt or "
                               "truncated.", field=field)


def sample(video: VideoInput, params: Any, *, field: str = "video") -> Sampled:
    """The source's frames sampled and resized as ``params`` (a :class:`~plugins.composer_conditions.params.
    SampleParams`) ask. Raises InvalidRequest naming ``field`` when the video cannot be decoded or has no frames."""
    source, fps = _iter_source(video, field)
    stride = stride_for(fps, params.sample_fps)
    picked: list[np.ndarray] = []
    count = 0
    for i, frame in enumerate(source):
        count = i + 1
        if len(picked) < params.num_frames and i >= params.start_frame and (i - params.start_frame) % stride == 0:
            picked.append(resize(np.ascontiguousarray(frame), params.width, params.height))
    if count == 0:
        raise InvalidRequest(f"Input {field!r}: {Path(video.path).name} has no video frames.",
                             hint="The file may be truncated; give another video.", field=field)
    if not picked:
        raise InvalidRequest(f"Input {field!r}: start_frame {params.start_frame} is past the end of "
                             f"{Path(video.path).name} ({count} frames).", hint=f"Give a start_frame below {count}.",
                             field="start_frame")
    out = np.zeros((params.num_frames, params.height, params.width, 3), np.uint8)
    out[:len(picked)] = np.stack(picked)
    return Sampled(out, len(picked), stride, fps, count)


def note_padding(ctx: Any, s: Sampled, params: Any) -> None:
    """Say in the job log how the source was sampled, and when it was padded (VGen pads with zeros too)."""
    ctx.log.info(f"source: {s.source_frames} frames at {s.source_fps:g} fps; stride {s.stride} "
                 f"(sample_fps {params.sample_fps}) from frame {params.start_frame}")
    if s.real < len(s.frames):
        ctx.log.warning(f"the source gives {s.real} frame(s) with stride {s.stride}: {len(s.frames) - s.real} empty "
                        f"frame(s) added to make num_frames={len(s.frames)}, as VGen pads its condition videos")


def run_frames(ctx: Any, count: int, make: Callable[[int], np.ndarray]) -> np.ndarray:
    """``make(i)`` for each of ``count`` frames (uint8 RGB), checking cancel before each, reporting progress after
    each and previews about eight times over the run. Returns the stacked frames."""
    out: list[np.ndarray] = []
    every = max(1, count // 8)
    for i in range(count):
        ctx.check_cancelled()
        out.append(make(i))
        ctx.progress(i + 1, count)
        if (i + 1) % every == 0 or i + 1 == count:
            ctx.preview(np.stack(out), i + 1, count)
    return np.stack(out)


def grey(values: np.ndarray) -> np.ndarray:
    """A ``[H, W]`` array in [0, 1] as a uint8 RGB frame (the same value in the three channels)."""
    v = np.clip(np.rint(np.asarray(values, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)
