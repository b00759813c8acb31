"""Condition videos → the tensors VideoComposer's branches take (worker side, torch).

A condition asset is a video (H.264, plus the extract job's lossless PNG frames while its output exists, which are
preferred); VGen's condition tensors are floats. The encoding contract (docs/architecture.md, VideoComposer) per
kind, with ``v`` a channel value in 0…255 and the tensor ``[1, C, F, H, W]``:

=============== ========================================= =========================================================
kind            the video holds                           the tensor (VGen's range)
=============== ========================================= =========================================================
depth           grey: VGen's depth ``clamp(d/20, 0, 10)``  1 channel, ``v / 255 · 10`` in [0, 10]
                scaled by 25.5 (white = 10)
sketch, canny   grey: white lines on black                 1 channel, ``v / 255`` in [0, 1]
single_sketch   a sketch (its first frame is used)          1 channel, frame 0 ``v / 255``, repeated over the frames
local_image     RGB frames (the first is used)              3 channels, frame 0 ``v / 255``, repeated (VGen)
motion          RGB: R = dx, G = dy (pixels), 128 = 0,      2 channels, ``(v − 128) / 2`` in [−64, 63.5]
                2 levels a pixel; B unused
mask            grey: white = hidden (VGen's mask 1)        with the ``video`` input's frames ``x`` in [0, 1]:
                                                            4 channels ``[(2x − 1)·(1 − m), 1 − m]``, m = v ≥ 128
=============== ========================================= =========================================================

A condition of another size is resized to the video's (bilinear; a mask nearest, as VGen's ``INTER_NEAREST``);
one with fewer frames than the video is padded with zero frames, as VGen pads its sampled frames, and the job log
says so; extra frames are left out.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from sdk.errors import InvalidRequest
from sdk.video import read_video_input

EXTRACT_AGAIN = "Extract the condition again (`vgen conditions extract`)."

#: channels of each branch's tensor (the UNet's ``CONDITION_CHANNELS`` under the input names)
CHANNELS = {"depth": 1, "sketch": 1, "canny": 1, "single_sketch": 1, "local_image": 3, "motion": 2, "mask": 4}
DEPTH_MAX = 10.0  # VGen's depth_clamp (after depth / depth_std 20)
MOTION_ZERO, MOTION_LEVELS = 128.0, 2.0


def frame_indices(total: int, fps: float, sample_fps: int, num_frames: int, start: int = 0) -> list[int]:
    """The source frames the condition extractors take (VGen's sampling as ``plugins/composer_conditions`` does it):
    stride ``round(fps / sample_fps)`` (at least 1), ``num_frames`` frames from ``start`` itself. (VGen starts at a
    random frame and its OpenCV loop skips one; the extractors' documented choice is kept here so the masked video
    shows the frames the other conditions were made from.)"""
    stride = max(1, round(float(fps) / sample_fps))
    return list(range(start, total, stride))[:num_frames]


def _fit(x: torch.Tensor, size: tuple[int, int], num_frames: int, mode: str) -> tuple[torch.Tensor, int]:
    """``[F, C, h, w]`` → ``[num_frames, C, H, W]``: resized, cut or zero-padded; returns it and the frames padded."""
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode=mode) if mode == "nearest" else \
            F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=x.shape[-1] > size[1])
    x = x[:num_frames]
    pad = num_frames - x.shape[0]
    if pad > 0:
        x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
    return x, max(0, pad)


def _grey(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames.astype(np.float32).mean(axis=-1, keepdims=True)).permute(0, 3, 1, 2)


def _rgb(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2)


def condition_tensor(kind: str, frames: np.ndarray, num_frames: int, height: int, width: int, *,
                     video: np.ndarray | None = None) -> tuple[torch.Tensor, int]:
    """One condition video's frames (uint8 ``[F, H, W, 3]``) → VGen's tensor ``[1, C, num_frames, height, width]``
    (float32) for the branch of ``kind`` (table above; ``mask`` also needs ``video``, the frames under it, already
    sampled). Returns the tensor and how many zero frames were padded."""
    size = (height, width)
    if kind in ("single_sketch", "local_image"):
        first = (_grey(frames[:1]) if kind == "single_sketch" else _rgb(frames[:1])) / 255.0
        x, _ = _fit(first, size, 1, "bilinear")
        return x.repeat(num_frames, 1, 1, 1).permute(1, 0, 2, 3)[None], 0  # VGen: frame 0 repeated
    if kind == "depth":
        x, pad = _fit(_grey(frames) / 255.0 * DEPTH_MAX, size, num_frames, "bilinear")
    elif kind in ("sketch", "canny"):
        x, pad = _fit(_grey(frames) / 255.0, size, num_frames, "bilinear")
    elif kind == "motion":
        x, pad = _fit((_rgb(frames)[:, :2] - MOTION_ZERO) / MOTION_LEVELS, size, num_frames, "bilinear")
    elif kind == "mask":
        if video is None:
            raise ValueError("the mask condition needs the video under it")
        m, pad = _fit((_grey(frames) >= 128).float(), size, num_frames, "nearest")
        x_rgb, _ = _fit(_rgb(video) / 255.0, size, num_frames, "bilinear")
        keep = 1.0 - m
        x = torch.cat([(x_rgb * 2 - 1) * keep, keep], dim=1)  # VGen's make_masked_images on [-1, 1] frames
    else:
        raise ValueError(f"unknown condition kind {kind!r}")
    return x.permute(1, 0, 2, 3)[None].contiguous(), pad


def sample_video(frames: np.ndarray, fps: float, sample_fps: int, num_frames: int, height: int, width: int, *,
                 start: int = 0) -> np.ndarray:
    """The frames of a reference video as the extractors sample them (:func:`frame_indices`), each resized to
    ``width``×``height`` with PIL's bilinear filter and no crop (VGen's ``data.Resize``); may be fewer than
    ``num_frames`` (the caller pads)."""
    from PIL import Image

    out = []
    for i in frame_indices(len(frames), fps, sample_fps, num_frames, start):
        frame = frames[i]
        if frame.shape[:2] != (height, width):
            frame = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
        out.append(frame)
    return np.stack(out) if out else np.zeros((0, height, width, 3), np.uint8)


def load_conditions(inputs: dict[str, Any], chosen: tuple[str, ...], num_frames: int, height: int, width: int,
                    sample_fps: int, log: Callable[[str], None]) -> dict[str, torch.Tensor]:
    """The chosen condition inputs as the UNet's ``conditions`` dict (branch name → tensor); each padding and each
    size change is logged. Raises InvalidRequest naming an input that is missing."""
    from plugins.videocomposer.params import BRANCH_OF

    out: dict[str, torch.Tensor] = {}
    for name in chosen:
        value = inputs.get(name)
        if value is None:
            raise InvalidRequest(f"The condition {name!r} is chosen but no {name} input was given.",
                                 hint=f"Give --input {name}=CONDITION_ID, or leave {name} out of `conditions`.",
                                 field="conditions")
        frames, _ = read_video_input(value, field=name, hint=EXTRACT_AGAIN)
        video = None
        if name == "mask":
            source = inputs.get("video")
            if source is None:
                raise InvalidRequest("The mask condition needs the video under the mask (input 'video').",
                                     hint="Give --input video=MOTION (the video the mask was made for).",
                                     field="video")
            src, src_fps = read_video_input(source, field="video")
            src_fps = src_fps or 8.0
            # sampled as the mask was (its extract params), so the frames under it are those it was made for
            made = dict((getattr(value, "meta", None) or {}).get("params") or {})
            rate, start = int(made.get("sample_fps") or sample_fps), int(made.get("start_frame") or 0)
            made_from = (getattr(value, "source", None) or {}).get("video")
            stem = Path(source.path).stem
            if made_from and re.fullmatch(r"[0-9a-f]{64}", stem) and stem != made_from:
                log(f"mask: it was made from video {str(made_from)[:12]}, not from the `video` input "
                    f"({Path(source.path).name})")
            video = sample_video(src, src_fps, rate, num_frames, height, width, start=start)
            if len(video) < num_frames:
                log(f"video: {len(src)} frames at {src_fps:g} fps give {len(video)} frames at sample_fps {rate} "
                    f"from frame {start}; {num_frames - len(video)} zero frame(s) added, as VGen pads")
            if len(video) == 0:  # nothing sampled: VGen's frames are all zeros then
                video = np.zeros((1, height, width, 3), np.uint8)
        if frames.shape[1:3] != (height, width):
            log(f"{name}: condition frames are {frames.shape[2]}×{frames.shape[1]}, resized to {width}×{height}")
        tensor, padded = condition_tensor(name, frames, num_frames, height, width, video=video)
        if padded:
            log(f"{name}: the condition video has {len(frames)} frames, {num_frames} are needed; {padded} zero "
                f"frame(s) added, as VGen pads a short source")
        out[BRANCH_OF[name]] = tensor
    return out
