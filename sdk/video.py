"""The value every generator returns."""
from __future__ import annotations

from dataclasses import dataclass

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
