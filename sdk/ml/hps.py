"""HPSv2 (Human Preference Score v2) as InstructVideo's reward model uses it (vgen-notes §13) and as a metric.

The contract the reward trainer calls (issue 14):

- :func:`load_hps(path, device, dtype) <load_hps>` → :class:`HPSScorer`: OpenCLIP ViT-H-14 (laion2B-s32B-b79K
  architecture: exact GELU, vision heads of 80, text heads of 64) with the ``HPS_v2.pt`` weights
  (``{"state_dict": …}`` or the raw dict; read with ``weights_only=True``). A tiny twin of the same layout loads the
  same way (its size is read from its tensors).
- :meth:`HPSScorer.score(images, texts) <HPSScorer.score>` → ``Tensor[N]``: the dot product of the L2-normalised
  image feature and the L2-normalised text feature of each (image, text) pair; differentiable w.r.t. ``images``
  (the weights are frozen). ``images``: ``[N, 3, 224, 224]`` already CLIP-normalised; ``texts``: N strings.
- :func:`preprocess_frames(frames01) <preprocess_frames>`: VGen's resize + normalise, differentiable: the shorter
  side resized to 224 (bilinear, no antialiasing: torchvision 0.13's ``Resize(224)`` on tensors, which VGen pins),
  a centre crop to 224×224 when the frame is not square (VGen only scores square 256×256 frames; the ViT needs a
  square), then the OpenCLIP mean/std.

The metric ``vgen_metrics.hpsv2`` (:class:`HPSv2Metric`) scores an output against its own prompt. VGen's reward
samples one random frame from each of 4 equal segments (TSN); a metric must be deterministic, so it takes the
middle frame of each segment (segment ``s`` of span ``F // 4`` covers frames ``s·span … (s+1)·span − 1``; frame
``s·span + span // 2``), and reports their plain mean as ``hpsv2`` (the training-time exponential weighting is a
reward shaping, not a measure). ``hpsv2_all_frames`` is the mean over every frame. A video of fewer than 4 frames
uses all its frames for both.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from sdk.ml.clip_models import CLIP_MEAN, CLIP_STD, build_clip, find_file, load_state, tokenizer

#: VGen's name, then the name on the hub (xswu/HPSv2: the same weights without the optimizer state)
HPS_FILE = ("HPS_v2.pt", "HPS_v2_compressed.pt")
TINY_NOTE = "Random weights of the right layout: scores are meaningless."
SEGMENTS = 4
#: ViT-H-14's head widths (1280 / 16 heads, 1024 / 16 heads); the tiny twin keeps them
VISION_HEAD_WIDTH = 80
TEXT_HEAD_WIDTH = 64


class HPSScorer(torch.nn.Module):
    """HPSv2's CLIP, frozen; :meth:`score` is differentiable w.r.t. the images."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip
        self._tokenize = tokenizer(int(clip.context_length))

    @property
    def image_size(self) -> int:
        size = self.clip.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def tokens(self, texts: Sequence[str]) -> torch.Tensor:
        return self._tokenize(list(texts))

    def score(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """``[N]``: normalised image feature · normalised text feature per (image, text) pair."""
        if images.ndim != 4 or len(texts) != images.shape[0]:
            raise ValueError(f"score() takes images [N, 3, H, W] and N texts; got {list(images.shape)} and "
                             f"{len(texts)} texts")
        param = next(self.clip.parameters())
        img = self.clip.encode_image(images.to(param.device, param.dtype), normalize=True)
        txt = self.clip.encode_text(self.tokens(texts).to(param.device), normalize=True)
        return (img * txt.to(img.dtype)).sum(dim=-1)

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        return self.score(images, texts)


def load_hps(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> HPSScorer:
    """The HPSv2 scorer from ``HPS_v2.pt`` (a file, or a folder holding it) on ``device`` in ``dtype``."""
    file = find_file(path, HPS_FILE, "HPSv2")
    sd = load_state(file, "HPSv2")
    clip = build_clip(sd, quick_gelu=False, vision_head_width=VISION_HEAD_WIDTH, text_head_width=TEXT_HEAD_WIDTH,
                      what=f"HPSv2 ({file.name})")
    return HPSScorer(clip).to(device=device, dtype=dtype).eval()


def preprocess_frames(frames01: torch.Tensor, size: int = 224) -> torch.Tensor:
    """``[N, 3, H, W]`` in [0, 1] → ``[N, 3, size, size]`` CLIP-normalised (see the module docstring)."""
    if frames01.ndim != 4 or frames01.shape[1] != 3:
        raise ValueError(f"preprocess_frames takes [N, 3, H, W]; got {list(frames01.shape)}")
    h, w = frames01.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = (size, max(size, int(w * scale))) if h <= w else (max(size, int(h * scale)), size)
        frames01 = F.interpolate(frames01, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        frames01 = frames01[..., top:top + size, left:left + size]
    mean = torch.tensor(CLIP_MEAN, device=frames01.device, dtype=frames01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=frames01.device, dtype=frames01.dtype).view(1, 3, 1, 1)
    return (frames01 - mean) / std


def segment_frames(num_frames: int, segments: int = SEGMENTS) -> list[int]:
    """The frame each segment is scored by: the middle of ``segments`` equal spans (all frames if too few)."""
    span = num_frames // segments
    if span == 0:
        return list(range(num_frames))
    return [s * span + span // 2 for s in range(segments)]


@torch.no_grad()
def hps_video_scores(scorer: HPSScorer, frames01: torch.Tensor, prompt: str, *, batch: int = 8,
                     progress: Any = None) -> dict[str, float]:
    """The metric's values for one video ``[F, 3, H, W]`` in [0, 1] against its prompt."""
    per_frame: list[torch.Tensor] = []
    total = frames01.shape[0]
    for start in range(0, total, batch):
        chunk = preprocess_frames(frames01[start:start + batch].float(), scorer.image_size)
        per_frame.append(scorer.score(chunk, [prompt] * chunk.shape[0]).float().cpu())
        if progress is not None:
            progress(min(start + batch, total), total)
    scores = torch.cat(per_frame)
    picked = scores[segment_frames(total)]
    return {"hpsv2": float(picked.mean()), "hpsv2_all_frames": float(scores.mean())}


def tiny_openclip_model(seed: int, *, embed: int, vision_width: int, vision_head: int, patch: int, text_width: int,
          quick_gelu: bool):
    import open_clip

    from sdk.ml.tiny import randomize_

    model = open_clip.CLIP(
        embed_dim=embed, quick_gelu=quick_gelu,
        vision_cfg=dict(layers=1, width=vision_width, head_width=vision_head, patch_size=patch, image_size=224),
        text_cfg=dict(context_length=77, vocab_size=49408, width=text_width, heads=max(1, text_width // 64),
                      layers=1),
    )
    return randomize_(model, seed).eval()


def make_tiny_hps(dir: Path, format: str = "pth", seed: int = 0) -> Path:
    """Write ``HPS_v2.pt`` (tiny) into ``dir`` and return the folder."""
    import torch

    from sdk.ml.tiny import openclip_state_dict

    if format != "pth":
        raise ValueError(f"Unknown weights format {format!r}; HPSv2 comes as HPS_v2.pt")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    model = tiny_openclip_model(seed + 11, embed=32, vision_width=80, vision_head=80, patch=14, text_width=64, quick_gelu=False)
    torch.save({"state_dict": openclip_state_dict(model)}, out / "HPS_v2.pt")
    (out / "vgen_studio.json").write_text(json.dumps({"preset": "vgen_metrics.hpsv2", "tiny": True, "seed": seed,
                                                      "note": TINY_NOTE}, indent=2))
    return out
