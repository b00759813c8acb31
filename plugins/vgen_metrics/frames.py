"""What a metric reads from the scored output: its frames (the lossless PNGs), its prompt, its subject's images; and
one cache entry per model file (:mod:`sdk.ml.components` keys)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdk.errors import InvalidRequest


def output_frames(video: Any) -> torch.Tensor:
    """``[F, 3, H, W]`` float32 in [0, 1]: every frame of the output (VGen's metrics use all frames)."""
    from sdk.video import read_video_input

    frames, _ = read_video_input(video, field="output")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def output_prompt(video: Any) -> str:
    """The prompt of the job that made the output (its ``meta.json``); InvalidRequest when it had none."""
    prompt = (video.meta or {}).get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest(f"Output {video.job_id} has no prompt, so a text metric cannot score it.",
                             hint="Score outputs of text-to-video jobs with this metric.", field="output")
    return prompt


def subject_images(video: Any) -> list[Path]:
    """The image files of the subject the output's job took (attached by :class:`ScoredOutputRef`)."""
    return [Path(p) for p in (getattr(video, "subject_images", None) or [])]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB ``[H, W, 3]`` (PIL; alpha dropped, palette expanded)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
