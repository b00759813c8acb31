"""Depth as VGen computes it: MiDaS v3 DPT-Large on the frame scaled to [−1, 1], then ``depth / 20`` clamped to
[0, 10] (``cfg.depth_std``, ``cfg.depth_clamp``), one channel at the frame's size; in fp16 on CUDA as VGen runs it,
fp32 elsewhere."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdk.video import Video

from plugins.composer_conditions.encoding import depth_to_frame
from plugins.composer_conditions.frames import note_padding, run_frames, sample
from plugins.composer_conditions.params import DepthParams
from plugins.composer_conditions.weights import DEPTH_ID, MIDAS_FILE, find_file, weights_path

#: VGen's cfg.depth_std and cfg.depth_clamp
DEPTH_STD, DEPTH_CLAMP = 20.0, 10.0


def midas_source(root: Path) -> Path:
    """The file or folder to load: a transformers DPT folder (``config.json``) as it is, else VGen's ``.pth``."""
    if root.is_dir() and (root / "config.json").is_file():
        return root
    return find_file(root, MIDAS_FILE, DEPTH_ID)


@torch.no_grad()
def vgen_depth(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[B, H, W, 3]`` → VGen's scaled depth ``[B, H, W]`` in [0, 10]."""
    from plugins.composer_conditions.midas import predict_depth

    p = next(model.parameters())
    x = torch.from_numpy(frames).to(p.device).permute(0, 3, 1, 2).to(p.dtype) / 255.0
    depth = predict_depth(model, x.sub(0.5).div(0.5))
    return (depth.float() / DEPTH_STD).clamp(0, DEPTH_CLAMP).cpu().numpy()


class DepthExtractor:
    """``composer_conditions.depth``: VGen's depth of each sampled frame (padding frames too, as VGen's zero frames)."""

    def extract(self, ctx: Any, req: Any) -> Video:
        from sdk.ml.components import file_identity

        from plugins.composer_conditions.midas import load_dpt

        p: DepthParams = req.params
        source = midas_source(weights_path(req, DEPTH_ID))
        s = sample(req.inputs["video"], p)
        note_padding(ctx, s, p)
        device = ctx.device_for_models()
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        files = [source / "config.json"] if source.is_dir() else [source]
        ident = tuple(file_identity(f) for f in files)
        model = ctx.models.get(f"other:midas@{ident[0]}|{dtype}|{device}",
                               lambda: load_dpt(source).to(device, dtype), role="other", files=ident)
        done: dict[int, np.ndarray] = {}

        def make(i: int) -> np.ndarray:
            if i not in done:  # one forward pass per batch_size frames (VGen's chunk_size)
                chunk = vgen_depth(model, s.frames[i:i + p.batch_size])
                done.update({i + j: d for j, d in enumerate(chunk)})
            return depth_to_frame(done.pop(i))

        return Video(run_frames(ctx, p.num_frames, make), fps=p.sample_fps)
