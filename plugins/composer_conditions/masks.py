"""VGen's inpainting masks (``make_irregular_mask``, ``make_rectangle_mask``, ``make_uncrop`` of
``inference_tft2v_vcomposer_entrance``), drawn from a seeded ``numpy.random.RandomState`` so that a seed gives the
same mask as VGen's functions give after ``np.random.seed(seed)``, and a user's mask read from an image.

A mask is float32 ``[H, W]``: 1 where VideoComposer generates (VGen's ``m``: the masked video is
``frames·(1 − m)``), 0 where it keeps the video. VGen draws at 512×512 and resizes with nearest neighbours.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from sdk.errors import InvalidRequest

#: VGen draws every mask at this size, then resizes it (nearest) to the video's
CANVAS = 512


def irregular(rng: np.random.RandomState, w: int = CANVAS, h: int = CANVAS, max_angle: int = 4,
              max_length: int = 200, max_width: int = 100, min_strokes: int = 1, max_strokes: int = 5) -> np.ndarray:
    """1-5 thick polyline strokes of 1-5 segments each, every segment a random angle, length and width."""
    mask = np.zeros((h, w), np.float32)
    for stroke in range(rng.randint(min_strokes, max_strokes + 1)):
        x1, y1 = rng.randint(w), rng.randint(h)
        for _ in range(1 + rng.randint(5)):
            angle = 0.01 + rng.randint(max_angle)
            if stroke % 2 == 0:  # every other stroke turns the other way, as VGen's
                angle = 2 * 3.1415926 - angle
            length = 10 + rng.randint(max_length)
            width = 5 + rng.randint(max_width)
            x2 = int(np.clip(np.int32(x1 + length * np.sin(angle)), 0, w))
            y2 = int(np.clip(np.int32(y1 + length * np.cos(angle)), 0, h))
            cv2.line(mask, (int(x1), int(y1)), (x2, y2), 1.0, int(width))
            x1, y1 = x2, y2
    return mask


def rectangles(rng: np.random.RandomState, w: int = CANVAS, h: int = CANVAS, margin: int = 10, min_size: int = 30,
               max_size: int = 150, min_boxes: int = 1, max_boxes: int = 4) -> np.ndarray:
    """1-4 axis-aligned boxes of 30-149 px a side, at least ``margin`` px from the border."""
    mask = np.zeros((h, w), np.float32)
    for _ in range(rng.randint(min_boxes, max_boxes + 1)):
        bw, bh = rng.randint(min_size, max_size), rng.randint(min_size, max_size)
        x1 = rng.randint(margin, w - margin - bw + 1)
        y1 = rng.randint(margin, h - margin - bh + 1)
        mask[y1:y1 + bh, x1:x1 + bw] = 1
    return mask


def uncrop(rng: np.random.RandomState, w: int = CANVAS, h: int = CANVAS) -> np.ndarray:
    """One half of the image (top, bottom, left or right) to generate: VGen's outpainting mask."""
    mask = np.zeros((h, w), np.float32)
    side = rng.choice([0, 1, 2, 3])
    if side == 0:
        mask[:h // 2, :] = 1
    elif side == 1:
        mask[h // 2:, :] = 1
    elif side == 2:
        mask[:, :w // 2] = 1
    else:
        mask[:, w // 2:] = 1
    return mask


FAMILIES = {"irregular": irregular, "rectangles": rectangles, "uncrop": uncrop}


def random_mask(family: str, seed: int, width: int, height: int) -> tuple[np.ndarray, str]:
    """(the mask at ``width``×``height``, the family drawn). ``family="random"`` picks as VGen does: irregular strokes
    with probability 0.7, rectangles 0.2, uncrop 0.1."""
    rng = np.random.RandomState(seed)
    if family == "random":
        p = rng.random_sample()
        family = "irregular" if p < 0.7 else "rectangles" if p < 0.9 else "uncrop"
    canvas = FAMILIES[family](rng)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_NEAREST), family


def mask_from_image(path: Path, width: int, height: int, *, field: str = "mask_image") -> np.ndarray:
    """A user-drawn mask: the image's brightness (alpha counts as black where transparent), white (> 127) where
    VideoComposer generates, resized (nearest) to ``width``×``height``. InvalidRequest naming ``field`` when the file
    is no image or is all one value."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                grey = Image.alpha_composite(bg, rgba).convert("L")
            else:
                grey = im.convert("L")
    except (OSError, UnidentifiedImageError) as exc:
        raise InvalidRequest(f"Input {field!r}: {Path(path).name} is not an image ({exc}).",
                             hint="Give a PNG or JPEG mask: white where the video is generated, black where kept.",
                             field=field) from None
    mask = (np.asarray(grey.resize((width, height), Image.NEAREST)) > 127).astype(np.float32)
    if not mask.any():
        raise InvalidRequest(f"Input {field!r}: {Path(path).name} is black everywhere, so it masks nothing.",
                             hint="Paint white where VideoComposer should generate.", field=field)
    return mask
