"""The source video as SR600 takes it (worker side): its frames, the frame count the model runs on, the aspect
ratio and the resize to the target size.

Decisions (docs/architecture.md, SR600), each written to the job log when it applies:

- **Frame count**: the model runs on ``num_frames`` (VGen: 32). A source with half as many (16) is doubled, each
  frame twice in a row, and every second frame is dropped after decoding, so the output keeps the source's 16
  (VGen's ``double_frames_sr``). A source with exactly ``num_frames`` runs as is. Any other count is resampled
  to ``num_frames`` (nearest frame at evenly spaced times) and the output has ``num_frames``.
- **Aspect ratio**: a source within 10 % of the target's (16:9 for 1280×720) is resized as VGen does (bilinear,
  stretched to the target). One further off is letterboxed: padded with black bars to the target's aspect (centred),
  then resized, so nothing is stretched or cut off.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from plugins.sr600.params import ASPECT_TOLERANCE

#: frame rate when neither the params nor the source give one (VGen's saved videos)
DEFAULT_FPS = 8


@dataclass
class Prepared:
    """Pixels ``[F, 3, H, W]`` in [-1, 1] at the target size, how to map the model's frames back, and what was done."""

    pixels: torch.Tensor
    doubled: bool
    source_frames: int
    fps: float
    notes: list[str] = field(default_factory=list)


def frame_plan(count: int, model_frames: int) -> tuple[list[int], bool, str | None]:
    """(source index of each model frame, doubled?, log note or None) for a ``count``-frame source."""
    if count == model_frames:
        return list(range(count)), False, None
    if 2 * count == model_frames:
        return [i for i in range(count) for _ in (0, 1)], True, (
            f"the source has {count} frames: each is taken twice ({model_frames} frames, as VGen's "
            f"double_frames_sr), and every second frame is dropped after decoding ({count} frames out)")
    idx = np.linspace(0, count - 1, model_frames).round().astype(int).tolist()
    return idx, False, (f"the source has {count} frames, SR600 runs on {model_frames} (or half as many, doubled): "
                        f"resampled to {model_frames} frames (nearest frame at evenly spaced times)")


def letterbox(frames: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str | None]:
    """Pad ``frames`` with black bars to the aspect ratio of ``width``×``height`` when theirs is more than
    :data:`~plugins.sr600.params.ASPECT_TOLERANCE` off; (frames, log note or None)."""
    f, h, w, _ = frames.shape
    src, dst = w / h, width / height
    if abs(src / dst - 1) <= ASPECT_TOLERANCE:
        return frames, None
    if src < dst:  # too narrow: bars left and right
        new_w, new_h = int(round(h * dst)), h
    else:          # too wide: bars top and bottom
        new_w, new_h = w, int(round(w / dst))
    out = np.zeros((f, new_h, new_w, 3), np.uint8)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    out[:, top:top + h, left:left + w] = frames
    return out, (f"the source is {w}×{h} (aspect {src:.2f}), {abs(src / dst - 1):.0%} off the target's {dst:.2f}: "
                 f"letterboxed to {new_w}×{new_h} with black bars, then resized")


def prepare(frames: np.ndarray, fps: float | None, *, model_frames: int, height: int, width: int) -> Prepared:
    """The model's input pixels from the source ``frames``: frame plan, letterbox, [−1, 1], bilinear resize."""
    import torch.nn.functional as F

    notes = []
    idx, doubled, note = frame_plan(int(frames.shape[0]), model_frames)
    if note:
        notes.append(note)
    boxed, note = letterbox(frames, height, width)
    if note:
        notes.append(note)
    x = torch.from_numpy(np.ascontiguousarray(boxed[idx])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear")
    return Prepared(x, doubled, int(frames.shape[0]), float(fps or DEFAULT_FPS), notes)
