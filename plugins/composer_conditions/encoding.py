"""How each condition video (uint8 RGB, what the project stores and shows) holds VGen's condition tensor. The
VideoComposer generators read the extract job's lossless frames (``ConditionInput.frames_dir``; the H.264 asset is
the preview) and invert these:

==============  ============================================  =================================================
condition       VGen tensor (per frame)                        stored frame
==============  ============================================  =================================================
depth           1 channel, ``depth/20`` clamped to [0, 10]     grey ``round(v · 25.5)`` (``v = grey / 25.5``)
sketch          1 channel in [0, 1], edges bright              grey ``round(v · 255)``
single_sketch   the first frame's sketch, every frame          as sketch
local_image     3 channels in [0, 1]: the first frame          the RGB frame (``v = rgb / 255``)
mask            ``m`` in {0, 1}: 1 where generated             white where ``m = 1``, black elsewhere
motion          2 channels (dx, dy) in pixels, sparse          R = 128 + 2·dx, G = 128 + 2·dy, B = 128
==============  ============================================  =================================================

The masked video VGen feeds (``[frames·(1 − m) in [−1, 1], 1 − m]``) is built by the generator from the mask and
the frames of the same source; the motion field is zero except at each coded block's centre (VideoComposer's layout),
at half-pixel precision, within ±63.5 px.
"""
from __future__ import annotations

import numpy as np

#: grey levels per unit of VGen's depth (its range [0, 10] fills 0-255)
DEPTH_LEVELS = 25.5
#: grey levels per pixel of motion, and the level of "no motion"
MOTION_LEVELS = 2.0
MOTION_ZERO = 128


def depth_to_frame(depth: np.ndarray) -> np.ndarray:
    """VGen's scaled depth ``[H, W]`` in [0, 10] → a grey uint8 RGB frame."""
    v = np.clip(np.rint(np.asarray(depth, np.float64) * DEPTH_LEVELS), 0, 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


def motion_to_frame(mv: np.ndarray) -> tuple[np.ndarray, int]:
    """A motion field ``[H, W, 2]`` (dx, dy pixels) → (a uint8 RGB frame, how many values were clipped)."""
    coded = np.rint(MOTION_ZERO + MOTION_LEVELS * np.asarray(mv, np.float64))
    clipped = int(((coded < 0) | (coded > 255)).sum())
    frame = np.full((*mv.shape[:2], 3), MOTION_ZERO, np.uint8)
    frame[..., :2] = np.clip(coded, 0, 255).astype(np.uint8)
    return frame, clipped


def frame_to_motion(frame: np.ndarray) -> np.ndarray:
    """The inverse of :func:`motion_to_frame`: ``[H, W, 2]`` float32 pixels."""
    return (frame[..., :2].astype(np.float32) - MOTION_ZERO) / MOTION_LEVELS
