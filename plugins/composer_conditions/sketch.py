"""Sketches as VGen computes them: PiDiNet edges of the ImageNet-normalised frame, then ``1 − cleaner(1 − edges)``
(the simplification net works on dark lines over white). ``single_sketch`` is the first frame's sketch repeated."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdk.video import Video

from plugins.composer_conditions.frames import grey, note_padding, run_frames, sample
from plugins.composer_conditions.params import SketchParams
from plugins.composer_conditions.weights import PIDINET_FILE, SIMPLIFY_FILE, SKETCH_ID, find_file, weights_path


def load_sketch_nets(ctx: Any, root: Path, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(PiDiNet, the simplifier) from ``root``, cached per file in the worker's model cache."""
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.components import file_identity

    from plugins.composer_conditions.pidinet import PiDiNet, convert
    from plugins.composer_conditions.simplify import SketchSimplifier

    nets = []
    for name, build in ((PIDINET_FILE, lambda sd: PiDiNet.from_state_dict(convert(sd))),
                        (SIMPLIFY_FILE, SketchSimplifier.from_state_dict)):
        path = find_file(root, name, SKETCH_ID)
        ident = file_identity(path)
        nets.append(ctx.models.get(f"other:{name}@{ident}|float32|{device}",
                                   lambda p=path, b=build: b(load_state_dict(p)).to(device), role="other",
                                   files=(ident,)))
    return nets[0], nets[1]


@torch.no_grad()
def sketch_frames(pidinet: torch.nn.Module, cleaner: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[B, H, W, 3]`` → VGen's sketch ``[B, H, W]`` in [0, 1] (bright lines on black)."""
    from plugins.composer_conditions.pidinet import MEAN, STD

    p = next(pidinet.parameters())
    x = torch.from_numpy(frames).to(p.device, torch.float32).permute(0, 3, 1, 2) / 255.0
    x = (x - torch.tensor(MEAN, device=p.device).view(1, 3, 1, 1)) / torch.tensor(STD, device=p.device).view(1, 3, 1, 1)
    edges = pidinet(x)
    return (1.0 - cleaner(1.0 - edges))[:, 0].float().cpu().numpy()


class SketchExtractor:
    """``composer_conditions.sketch``: one sketch per sampled frame (padding frames too: VGen sketches its zero-padded
    video as it is)."""

    single = False

    def extract(self, ctx: Any, req: Any) -> Video:
        p: SketchParams = req.params
        root = weights_path(req, SKETCH_ID)
        s = sample(req.inputs["video"], p)
        note_padding(ctx, s, p)
        device = ctx.device_for_models()
        pidinet, cleaner = load_sketch_nets(ctx, root, device)
        if self.single:
            first = grey(sketch_frames(pidinet, cleaner, s.frames[:1])[0])
            return Video(run_frames(ctx, p.num_frames, lambda i: first.copy()), fps=p.sample_fps)
        return Video(run_frames(ctx, p.num_frames, lambda i: grey(sketch_frames(pidinet, cleaner, s.frames[i:i + 1])[0])),
                     fps=p.sample_fps)


class SingleSketchExtractor(SketchExtractor):
    """``composer_conditions.single_sketch``: the first frame's sketch repeated over every frame."""

    single = True
