"""``cogvideox.t2v`` / ``cogvideox.i2v`` / ``cogvideox.v2v``, worker side: diffusers' CogVideoX pipelines over
components from the worker's cache (:mod:`sdk.ml.cogvideox`), so memory modes and precision apply as for every
generator.

The image of ``i2v`` is cropped around its centre to the frame's aspect ratio (diffusers would stretch it) and the
source of ``v2v`` keeps its first ``num_frames`` frames (a shorter source is refused, naming the count that fits).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.video import Video

from plugins.cogvideox.params import CogVideoXParams, CogVideoXV2VParams

KIND = {"cogvideox.t2v": "t2v", "cogvideox.i2v": "i2v", "cogvideox.v2v": "v2v"}


def _params(req: JobRequest) -> CogVideoXParams:
    cls = CogVideoXV2VParams if req.spec_id == "cogvideox.v2v" else CogVideoXParams
    p = req.params if isinstance(req.params, cls) else cls.model_validate(dict(req.params))
    # a job queued without its weights known (or requeued from an old record) still gets the model's defaults
    return cls.model_validate(cls.for_weights(p.model_dump(), req.weights_id or (str(req.weights) if req.weights
                                                                                       else None)))


def _crop_to(image: Any, height: int, width: int) -> Any:
    """The centre of ``image`` (PIL) with the aspect ratio of ``width``×``height``."""
    w, h = image.size
    target = width / height
    if abs(w / h - target) < 1e-3:
        return image
    if w / h > target:
        nw = max(1, round(h * target))
        left = (w - nw) // 2
        return image.crop((left, 0, left + nw, h))
    nh = max(1, round(w / target))
    top = (h - nh) // 2
    return image.crop((0, top, w, top + nh))


class CogVideoXGenerator:
    """``generate(ctx, req) -> Video`` for the three CogVideoX generators (the kind comes from ``req.spec_id``)."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml import cogvideox as cog

        kind = KIND.get(req.spec_id, "t2v")
        p = _params(req)
        image = video = None
        frames = p.num_frames
        if kind == "i2v":  # inputs first: a bad file fails before any weights load
            from sdk.ml.image import open_image

            value = req.inputs.get("image")
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if not value:
                raise InvalidRequest("cogvideox.i2v needs an image to animate.", hint="Give one with --image FILE.",
                                     field="image")
            image = _crop_to(open_image(Path(value)), p.height, p.width)
        elif kind == "v2v":
            from sdk.video import read_video_input

            source = req.inputs.get("video")
            if source is None:
                raise InvalidRequest("cogvideox.v2v needs a source video.", hint="Give --input video=JOB_ID or a "
                                     "video file.", field="video")
            arr, _ = read_video_input(source, hint="Give an .mp4/.webm/.gif video or a finished job's id.")
            if len(arr) < frames:
                fit = max(1, (len(arr) - 1) // 4 * 4 + 1)
                raise InvalidRequest(f"The source video has {len(arr)} frames; num_frames {frames} needs at least "
                                     f"{frames}.", hint=f"Set num_frames to {fit} (4k+1, at most the source's).",
                                     field="num_frames")
            video = np.ascontiguousarray(arr[:frames])
        if req.weights is None:
            raise InvalidRequest(f"{req.spec_id} needs CogVideoX weights.", hint="Install them with `vgen models "
                                 "fetch cogvideox-2b` (or make-tiny for a test).", field="weights")
        pipe = cog.load_pipeline(ctx, req.weights, kind)
        ctx.log.info("CogVideoX %s: %s, %d frames at %d×%d, %d steps, guidance %.1f%s", kind,
                     req.weights_id or Path(req.weights).name, frames, p.width, p.height, p.num_inference_steps,
                     p.guidance_scale, " (dynamic)" if p.use_dynamic_cfg else "")
        out = cog.render(ctx, pipe, prompt=p.prompt, negative_prompt=p.negative_prompt, frames=frames,
                         height=p.height, width=p.width, steps=p.num_inference_steps, guidance=p.guidance_scale,
                         dynamic_cfg=bool(p.use_dynamic_cfg), seed=req.seed, image=image, video=video,
                         strength=getattr(p, "strength", None))
        return Video(out, fps=p.fps or 8)
