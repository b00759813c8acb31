"""Canny edge conditions (OpenCV), computed the way ControlNet's Canny preprocessor does: ``cv2.Canny`` on the RGB
frame (the gradient of each pixel is that of its strongest channel), white edges on black, one map per frame."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from sdk.video import Video, read_video_input

from plugins.classic_cv.params import CannyParams


def sample_frames(frames: np.ndarray, stride: int, num_frames: int | None) -> tuple[np.ndarray, int]:
    """Every ``stride``-th frame from the first, cut to ``num_frames``; a shorter source is padded with black frames
    (VGen pads its condition videos with zeros). Returns (frames, how many were padded)."""
    picked = frames[::stride]
    if num_frames is None:
        return picked, 0
    if len(picked) >= num_frames:
        return picked[:num_frames], 0
    pad = num_frames - len(picked)
    return np.concatenate([picked, np.zeros((pad, *picked.shape[1:]), np.uint8)]), pad


def canny_frame(frame: np.ndarray, params: CannyParams) -> np.ndarray:
    """One RGB uint8 frame → its white-on-black edge map (RGB uint8), resized first (no crop) as ``params`` ask."""
    h, w = frame.shape[:2]
    size = (params.width or w, params.height or h)
    if size != (w, h):
        shrink = size[0] * size[1] < w * h
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    edges = cv2.Canny(np.ascontiguousarray(frame), params.low_threshold, params.high_threshold)
    return np.repeat(edges[..., None], 3, axis=2)


class CannyExtractor:
    """``classic_cv.canny``: the edge maps of the ``video`` input's frames."""

    def extract(self, ctx: Any, req: Any) -> Video:
        p: CannyParams = req.params
        source, fps = read_video_input(req.inputs["video"])
        fps = fps or 8.0
        frames, padded = sample_frames(source, p.frame_stride, p.num_frames)
        if padded:
            ctx.log.warning(f"the source has {len(source)} frames: {len(frames) - padded} taken with stride "
                            f"{p.frame_stride}, {padded} empty frame(s) added to make num_frames={p.num_frames}")
        real = len(frames) - padded
        out: list[np.ndarray] = []
        every = max(1, len(frames) // 8)
        for i, frame in enumerate(frames):
            ctx.check_cancelled()
            out.append(canny_frame(frame, p) if i < real else np.zeros_like(out[0] if out else canny_frame(frame, p)))
            ctx.progress(i + 1, len(frames))
            if (i + 1) % every == 0 or i + 1 == len(frames):
                ctx.preview(np.stack(out), i + 1, len(frames))
        rate = p.fps or max(1, round(fps / p.frame_stride))
        return Video(np.stack(out), fps=int(rate))
