"""Writes this template's two tiny captioned clips (run from the repository root:
``python project_templates/preference-tuning/make_clips.py``). A procedurally drawn orange blob walks across green
grass, and the same blob bobs in blue water; 64×64, 16 frames at 8 fps, a few kB each."""
from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

HERE = Path(__file__).resolve().parent
SIZE, FRAMES = 64, 16


def frame(i: int, background: tuple[int, int, int], x: float, y: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = background
    img[(xx - x) ** 2 / 100 + (yy - y) ** 2 / 49 < 1] = (235, 140, 40)  # body
    img[(xx - x - 9) ** 2 + (yy - y + 5) ** 2 < 16] = (235, 140, 40)  # head
    return img


def main() -> None:
    walk = [frame(i, (60, 150, 60), 12 + 2.5 * i, 40 + (i % 2)) for i in range(FRAMES)]
    swim = [frame(i, (40, 90, 190), 32 + 10 * np.sin(i / 3), 32 + 4 * np.cos(i / 2)) for i in range(FRAMES)]
    for name, frames in (("walk.mp4", walk), ("swim.mp4", swim)):
        imageio.mimwrite(str(HERE / name), frames, fps=8, quality=5)


if __name__ == "__main__":
    main()
