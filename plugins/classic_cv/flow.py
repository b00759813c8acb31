"""Temporal consistency as the flow warping error between consecutive frames (OpenCV).

For each pair of frames ``(I_t, I_{t+s})`` (``s``: ``frame_stride``):

1. the backward optical flow ``F`` from ``I_{t+s}`` to ``I_t`` is estimated on the grey frames with Farnebäck's
   method (``cv2.calcOpticalFlowFarneback``; pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5,
   poly_sigma 1.2: OpenCV's reference settings), so that ``I_{t+s}(p) ≈ I_t(p + F(p))``;
2. ``I_t`` is warped onto ``I_{t+s}`` with ``cv2.remap`` (bilinear): ``W(p) = I_t(p + F(p))``;
3. the pair's error is the mean absolute difference ``|W - I_{t+s}|`` over the RGB channels and over the pixels whose
   flow stays inside the frame, divided by 255: a fraction of the full intensity range.

``warp_error`` (the headline) is the mean over pairs: 0 for a perfectly consistent (static, or purely moving) video;
about 1/3 for independent uniform noise. Lower is better. Also reported: ``warp_error_max`` (the worst pair) and
``mean_flow_px`` (the mean flow magnitude in pixels: how much moves).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from sdk.video import read_video_input

from plugins.classic_cv.params import FlowWarpParams

#: cv2.calcOpticalFlowFarneback(prev, next, flow, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags)
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)


def backward_flow(earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Flow ``[H, W, 2]`` (x, y pixels) such that ``later(p) ≈ earlier(p + flow(p))``."""
    g0 = cv2.cvtColor(earlier, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(later, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(g1, g0, None, *FARNEBACK)


def warp_error(earlier: np.ndarray, later: np.ndarray, flow: np.ndarray) -> float:
    """Mean |earlier warped by ``flow`` − later| / 255 over channels and the pixels whose flow stays in the frame."""
    h, w = later.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(earlier, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    diff = np.abs(warped.astype(np.float32) - later.astype(np.float32)).mean(axis=2)
    return float(diff[inside].mean() / 255.0) if inside.any() else float(diff.mean() / 255.0)


def flow_warp_scores(frames: np.ndarray, stride: int = 1, progress: Any = None) -> dict[str, float]:
    """The metric's values for uint8 RGB ``frames`` ``[F, H, W, 3]`` (see the module docstring). A video with fewer
    than ``stride + 1`` frames has no pair: it scores 0 (nothing to be inconsistent with)."""
    pairs = len(frames) - stride
    errors, motion = [], []
    for t in range(max(0, pairs)):
        flow = backward_flow(frames[t], frames[t + stride])
        errors.append(warp_error(frames[t], frames[t + stride], flow))
        motion.append(float(np.linalg.norm(flow, axis=2).mean()))
        if progress is not None:
            progress(t + 1, pairs)
    if not errors:
        return {"warp_error": 0.0, "warp_error_max": 0.0, "mean_flow_px": 0.0}
    return {"warp_error": float(np.mean(errors)), "warp_error_max": float(np.max(errors)),
            "mean_flow_px": float(np.mean(motion))}


class FlowWarpError:
    """``classic_cv.flow_warp``: scores the ``output`` input's frames (its lossless PNGs)."""

    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        p: FlowWarpParams = req.params
        frames, _ = read_video_input(req.inputs["output"], field="output")

        def progress(step: int, total: int) -> None:
            ctx.check_cancelled()
            ctx.progress(step, total)

        return flow_warp_scores(frames, p.frame_stride, progress)
