"""``exvideo.cogvideox``, worker side: CogVideoX-5B with the ExVideo LoRA fused into its transformer, up to 129 frames.

The base snapshot (``req.weights``, the ``cogvideox-5b`` id by default) is loaded through
:func:`sdk.ml.cogvideox.load_pipeline`, so memory modes and quantization apply as to any CogVideoX job; the LoRA is
fused into the freshly loaded transformer (:func:`plugins.exvideo.lora.fuse_file`, before any quantization) and the
fused transformer is cached apart from the plain one under the LoRA file's identity and the scale. Long videos
decode as every CogVideoX video does: diffusers' CogVideoX VAE decodes two latent frames at a time with its causal
conv cache, and the ``low``/``minimum`` memory modes add spatial tiling.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdk.context import JobContext, JobRequest
from sdk.errors import IncompatibleCheckpoint, InvalidRequest
from sdk.video import Video

from plugins.exvideo.lora import fuse_file, lora_file, lora_identity
from plugins.exvideo.params import LORA_WEIGHTS, ExVideoCogParams

BASE_WEIGHTS = "cogvideox-5b"


def check_base(folder: Path) -> None:
    """Refuse a base snapshot that is not CogVideoX-5B text-to-video (the LoRA was trained on it only)."""
    config_path = Path(folder) / "transformer" / "config.json"
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return  # load_pipeline names the missing folder
    why = None
    if not cfg.get("use_rotary_positional_embeddings", False):
        why = "it has no rotary position embeddings (CogVideoX-2B?)"
    elif cfg.get("in_channels", 16) != 16:
        why = f"it takes {cfg.get('in_channels')} latent channels (an image-to-video model?)"
    elif cfg.get("patch_size_t"):
        why = "it patches time (CogVideoX 1.5?)"
    if why:
        raise IncompatibleCheckpoint(
            f"The ExVideo LoRA adapts CogVideoX-5B text-to-video only, and the weights at {folder} are another "
            f"model: {why}.", hint=f"Use the {BASE_WEIGHTS} weights (THUDM/CogVideoX-5b).")


def resolve_lora(value: str) -> Path:
    """The LoRA file of param ``lora``: an installed weights id or a path."""
    from sdk import weights as w

    path, _ = w.resolve(value, LORA_WEIGHTS)
    return lora_file(path)


class ExVideoCogGenerator:
    """``generate(ctx, req) -> Video``: text → up to 129 frames."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml import cogvideox as cog

        p = req.params if isinstance(req.params, ExVideoCogParams) else ExVideoCogParams.model_validate(
            dict(req.params))
        if req.weights is None:
            raise InvalidRequest("exvideo.cogvideox needs the CogVideoX-5B weights.",
                                 hint=f"Install {BASE_WEIGHTS} (`vgen models fetch {BASE_WEIGHTS}`).", field="weights")
        folder = Path(req.weights)
        check_base(folder)
        path = resolve_lora(p.lora)
        scale = float(p.lora_scale)
        ctx.log.info("ExVideo: %s fused at scale %g into %s; %d frames at %d×%d, %d steps, guidance %g",
                     path.name, scale, folder.name, p.num_frames, p.width, p.height, p.num_inference_steps,
                     p.guidance_scale)

        def patch(transformer: Any) -> Any:
            n = fuse_file(transformer, path, scale)
            ctx.log.info("ExVideo: the LoRA changed %d linear layers of the transformer", n)
            return transformer

        pipe = cog.load_pipeline(ctx, folder, "t2v", transformer_patch=patch, patch_id=lora_identity(path, scale))
        frames = cog.render(ctx, pipe, prompt=p.prompt, negative_prompt=p.negative_prompt, frames=p.num_frames,
                            height=p.height, width=p.width, steps=p.num_inference_steps, guidance=p.guidance_scale,
                            dynamic_cfg=p.use_dynamic_cfg, seed=req.seed)
        return Video(frames, fps=p.fps)
