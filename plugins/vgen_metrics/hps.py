"""The metric ``vgen_metrics.hpsv2``: an output's frames against its own prompt by HPSv2 (the scorer, shared with
InstructVideo's reward trainer, is :mod:`sdk.ml.hps`; the middle frame of each of 4 segments, see there)."""
from __future__ import annotations

from typing import Any

import torch

from sdk.ml.clip_models import find_file
from sdk.ml.hps import HPS_FILE, hps_video_scores, load_hps


class HPSv2Metric:
    """``vgen_metrics.hpsv2``: the output's frames against the prompt of the job that made it."""

    def score(self, ctx: Any, req: Any) -> dict[str, float]:
        from plugins.vgen_metrics.frames import output_frames, output_prompt
        from sdk.ml.components import cached_model, device_of

        video = req.inputs["output"]
        prompt = output_prompt(video)
        frames = output_frames(video)
        file = find_file(req.weights, HPS_FILE, "HPSv2")
        scorer = cached_model(ctx, "hpsv2", file, torch.float32, lambda: load_hps(file, device_of(ctx), torch.float32))

        def progress(step: int, total: int) -> None:
            ctx.check_cancelled()
            ctx.progress(step, total)

        return hps_video_scores(scorer, frames, prompt, progress=progress)
