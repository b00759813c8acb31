"""The ModelScope T2V generator: our own denoising loop on diffusers/transformers models (worker side, torch).

``req.weights`` is a folder, in one of two formats (detected):
- diffusers (``text-to-video-ms-1.7b`` layout): model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/;
- vgen: a UNet ``*.pth`` (any .pth other than the encoders; or the one ``vgen_studio.json`` names),
  ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt``.
A file path is taken as a VGen UNet ``.pth`` with its encoders beside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.ml.checkpoints import read_json
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import (make_scheduler, preset_from_filename, preset_from_scheduler_config, set_timesteps)
from sdk.ml.weights_layout import Weights
from sdk.ml.weights_layout import detect_weights as detect_layout
from sdk.video import Video

from plugins.modelscope_t2v.params import T2VParams

WEIGHTS_ID = "modelscope_t2v.ms_1_7b"
DIFFUSERS_PARTS = ("unet", "vae", "text_encoder", "tokenizer")


def detect_weights(path: Path | None) -> Weights:
    """Which format ``path`` holds; :class:`WeightsMissing` names what is missing and the fix."""
    return detect_layout(path, what="ModelScope T2V", weights_id=WEIGHTS_ID, diffusers_parts=DIFFUSERS_PARTS)


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE, text encoder (each cached on its own: :mod:`sdk.ml.components`) and the preset the weights were
    trained with."""
    from sdk.ml import components

    studio = w.studio()
    if w.format == "diffusers":
        from diffusers import UNet3DConditionModel

        unet = components.diffusers_unet(ctx, w.root / "unet", dtype, device, UNet3DConditionModel)
        text = components.text_encoder(ctx, w.root / "text_encoder", dtype, device, tokenizer=w.root / "tokenizer")
        sched = w.root / "scheduler" / "scheduler_config.json"
        preset = studio.get("preset") or (preset_from_scheduler_config(read_json(sched)) if sched.exists() else "modelscope")
    else:
        assert w.unet is not None
        unet = components.vgen_unet3d(ctx, w.unet, dtype, device, config=w.config())
        text = components.text_encoder(ctx, w.open_clip, dtype, device)
        preset = studio.get("preset") or preset_from_filename(w.unet.name)
    vae = components.vae(ctx, w.vae, dtype, device)
    return {"unet": unet, "vae": vae, "text_encoder": text, "preset": preset, "attention": components.attention(unet)}



class T2VGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models`` (a second job on the same weights pays no load)."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, T2VParams) else T2VParams.model_validate(dict(req.params))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        factor = latent_factor(vae, p.height, p.width)
        preset = comps["preset"] if p.preset == "auto" else p.preset
        scheduler = make_scheduler(preset, p.scheduler)
        do_cfg = uses_cfg(p.guidance_scale)
        ctx.log.info("ModelScope T2V: %s weights, preset %s, scheduler %s, %s/%s", weights.format, preset, p.scheduler,
                     device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. encode prompt (and negative prompt for guidance): batch [uncond, cond]
            embeds = text.encode([p.negative_prompt, p.prompt] if do_cfg else [p.prompt]).to(dtype)

            # 4. timesteps
            timesteps = set_timesteps(scheduler, p.num_inference_steps, device)

            # 5. initial latents: exactly diffusers' randn_tensor with a CPU generator (+ offset noise)
            shape = (1, unet.config["in_channels"], p.num_frames, p.height // factor, p.width // factor)
            latents = initial_latents(shape, ctx.generator(req.seed), dtype, p.offset_noise, device)
            latents = latents * scheduler.init_noise_sigma

            # 6. denoising loop
            def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]

            latents = denoise(ctx, model_fn, scheduler, latents, timesteps, guidance_scale=p.guidance_scale)
            ctx.check_cancelled()

            # 7. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
