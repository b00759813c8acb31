"""The extractors that need no weights: the local image (the first frame) and the inpainting mask."""
from __future__ import annotations

from typing import Any

from sdk.video import Video

from plugins.composer_conditions.frames import grey, note_padding, run_frames, sample
from plugins.composer_conditions.masks import mask_from_image, random_mask
from plugins.composer_conditions.params import LocalImageParams, MaskParams


class LocalImageExtractor:
    """``composer_conditions.local_image``: the first sampled frame repeated over every frame (VGen's
    ``image_local = misc_data[:, :1].repeat(...)``), RGB as sampled (VGen feeds it in [0, 1])."""

    def extract(self, ctx: Any, req: Any) -> Video:
        p: LocalImageParams = req.params
        s = sample(req.inputs["video"], p)
        note_padding(ctx, s, p)
        first = s.frames[0]
        return Video(run_frames(ctx, p.num_frames, lambda i: first.copy()), fps=p.sample_fps)


class MaskExtractor:
    """``composer_conditions.mask``: one mask over every frame (VGen repeats it), white where VideoComposer generates.
    From ``mask_image`` when given (a user's drawing), else one of VGen's random families, seeded."""

    def extract(self, ctx: Any, req: Any) -> Video:
        p: MaskParams = req.params
        s = sample(req.inputs["video"], p)  # decodes the source: a broken one fails here, and it sets the frame count
        note_padding(ctx, s, p)
        image = req.inputs.get("mask_image")
        if image is not None:
            mask = mask_from_image(image, p.width, p.height)
            ctx.log.info(f"mask drawn by the user ({image.name}): {mask.mean():.1%} of the frame to generate")
        else:
            mask, family = random_mask(p.family, p.seed, p.width, p.height)
            ctx.log.info(f"mask: VGen's {family} family, seed {p.seed}: {mask.mean():.1%} of the frame to generate")
        frame = grey(mask)
        return Video(run_frames(ctx, p.num_frames, lambda i: frame.copy()), fps=p.sample_fps)

