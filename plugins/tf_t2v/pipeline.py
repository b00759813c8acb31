"""The TF-T2V text-to-video generator: our own DDIM loop on the shared TF-T2V UNet (worker side, torch).

``req.weights`` is a VGen folder (the UNet ``.pth`` — ``tft2v_t2v_*.pth``, or the one ``vgen_studio.json`` names —
beside ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt``) or the UNet ``.pth`` itself.
No style image is given at inference in the released t2v configs, so the context is the 77 text tokens; an optional
style image (``req.inputs["style_image"]``) adds its OpenCLIP-H image embedding as 4 more tokens through the UNet's
``pre_image_condition`` branch (zeros in the unconditional branch, as VGen does).
"""
from __future__ import annotations

from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.concat_unet import load_concat_unet
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import Weights, detect_vgen_folder
from sdk.video import Video

from plugins.tf_t2v.params import TFT2VParams

PRESET = "tft2v"  # v-prediction, scaled_linear, zero-SNR (vgen-notes §4.4)
WEIGHTS_ID = "tf_t2v.tft2v_t2v_16f"


def detect_weights(path: Any) -> Weights:
    return detect_vgen_folder(path, what="TF-T2V", weights_id=WEIGHTS_ID, prefixes=("tft2v_t2v",))


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE and text encoder, placed on ``device`` in ``dtype`` and in eval mode, each cached on its own
    (:mod:`sdk.ml.components`: VideoLCM and the other VGen methods share the VAE and text encoder)."""
    from sdk.ml import components

    assert w.unet is not None
    config = w.config()
    unet = components.unet(ctx, w.unet, dtype, device,
                           lambda: load_concat_unet(load_state_dict(w.unet), config, source=w.unet.name),
                           kind="vgen-concat-unet", config=config)
    return {"unet": unet, "vae": components.vae(ctx, w.vae, dtype, device),
            "text_encoder": components.text_encoder(ctx, w.open_clip, dtype, device),
            "attention": components.attention(unet)}


class TFT2VGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models`` (a second job on the same weights pays no load)."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs
        p = req.params if isinstance(req.params, TFT2VParams) else TFT2VParams.model_validate(dict(req.params))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        # 2. load components (cached across jobs)
        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        factor = latent_factor(vae, p.height, p.width)
        scheduler = make_scheduler(PRESET, p.scheduler)
        do_cfg = uses_cfg(p.guidance_scale)
        ctx.log.info("TF-T2V: %s, scheduler %s, %s/%s", weights.unet.name, p.scheduler, device,
                     str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            # 3. encode prompt (+ positive suffix) and the negative prompt: batch [uncond, cond]
            prompt = p.prompt + p.positive_suffix
            embeds = text.encode([p.negative_prompt, prompt] if do_cfg else [prompt]).to(dtype)

            # 3b. optional style image → CLIP image embedding: batch [zeros, image]
            image_embeds = None
            if req.inputs.get("style_image") is not None:
                image_embeds = self._style_embedding(ctx, weights, req.inputs["style_image"], device, dtype)
                if do_cfg:
                    image_embeds = torch.cat([torch.zeros_like(image_embeds), image_embeds])

            # 4. timesteps
            timesteps = set_timesteps(scheduler, p.num_inference_steps, device)

            # 5. initial latents (4 channels; the UNet appends its 8 zero condition channels)
            shape = (1, unet.latent_channels, p.num_frames, p.height // factor, p.width // factor)
            latents = initial_latents(shape, ctx.generator(req.seed), dtype, device=device) * scheduler.init_noise_sigma

            # 6. denoising loop
            def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return unet(model_in, t, encoder_hidden_states=embeds, image_embeds=image_embeds, return_dict=False)[0]

            latents = denoise(ctx, model_fn, scheduler, latents, timesteps, guidance_scale=p.guidance_scale)
            ctx.check_cancelled()

            # 7. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)

    @staticmethod
    def _style_embedding(ctx: JobContext, weights: Weights, image: Any, device: torch.device,
                         dtype: torch.dtype) -> torch.Tensor:
        """``[1, 1024]`` OpenCLIP-H image embedding of the style image (the encoder is cached like the UNet)."""
        from sdk.ml import components
        from sdk.ml.image import open_image

        encoder = components.image_encoder(ctx, weights.open_clip, dtype, device)
        return encoder.embed(open_image(image)).to(dtype)
