"""The VideoComposer generators (worker side, torch): ``videocomposer.t2v`` (TF-T2V vcomposer, DDIM + guidance) and
``videocomposer.lcm`` (VideoLCM vcomposer, LCM steps, no guidance), as VGen's ``inference_tft2v_vcomposer_entrance``
and ``inference_videolcm_vcomposer_entrance`` run them:

- the text is the prompt + the config's positive suffix; the unconditional text is the negative prompt;
- the style image (VGen's ``image`` key) is OpenCLIP-H's embedding of the image resized to the video size, then to
  the encoder's square (224), CLIP mean/std — 4 tokens after the 77 text tokens; zeros in the unconditional branch;
- the conditions (VGen's ``partial_keys``) are read from their videos (:mod:`plugins.videocomposer.conditions`) and
  given to both branches alike: the cond/uncond pair differs only in text and style image;
- one seeded noise ``[1, 4, F, H/8, W/8]``, so a grid over condition subsets shares it, as VGen's loop over
  ``partial_keys`` does.
"""
from __future__ import annotations

from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import Weights
from sdk.video import Video

from plugins.videocomposer.conditions import load_conditions
from plugins.videocomposer.params import CONDITION_INPUTS, ComposerLCMParams, ComposerT2VParams, chosen_conditions
from plugins.videocomposer.weights import detect_weights, load_unet

PRESET = "tft2v"  # v-prediction, scaled_linear, zero-SNR: both vcomposer configs (VideoLCM's LCMScheduler too)


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE and text encoder, each cached on its own (:mod:`sdk.ml.components`): TF-T2V and VideoLCM jobs on
    the same ``iic/tf-t2v`` files share the VAE and the text encoder."""
    from sdk.ml import components

    unet = load_unet(ctx, w, device, dtype)
    return {"unet": unet, "vae": components.vae(ctx, w.vae, dtype, device),
            "text_encoder": components.text_encoder(ctx, w.open_clip, dtype, device),
            "attention": components.attention(unet)}


def style_embedding(ctx: JobContext, w: Weights, image: Any, width: int, height: int, device: torch.device,
                    dtype: torch.dtype) -> torch.Tensor:
    """``[1, E]``: VGen's ``vit_transforms`` (bilinear resize to the video size, then to the encoder's square,
    CLIP mean/std) and OpenCLIP's ``encode_image``."""
    from PIL import Image

    from sdk.ml import components
    from sdk.ml.image import open_image, pil_to_tensor

    encoder = components.image_encoder(ctx, w.open_clip, dtype, device)
    side = encoder.image_size
    square = open_image(image, field="style_image").resize((width, height), Image.BILINEAR).resize(
        (side, side), Image.BILINEAR)
    x = pil_to_tensor(square, normalize=False)
    mean = torch.tensor(encoder.mean).view(1, 3, 1, 1)
    std = torch.tensor(encoder.std).view(1, 3, 1, 1)
    return encoder.encode((x - mean) / std).to(dtype)


class _Composer:
    params_model: type = ComposerT2VParams
    lcm = False
    title = "VideoComposer (TF-T2V)"

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs: the subset against the inputs given (again here: a re-queued job may have lost one)
        p = req.params if isinstance(req.params, self.params_model) else self.params_model.model_validate(
            dict(req.params))
        given = frozenset(n for n in CONDITION_INPUTS + ("video",) if req.inputs.get(n) is not None)
        p.check_inputs(given)
        chosen = chosen_conditions(p.conditions, given)
        weights = detect_weights(req.weights, lcm=self.lcm)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)
        conds = load_conditions(req.inputs, chosen, p.num_frames, p.height, p.width, p.sample_fps, ctx.log.warning)

        # 2. load components (cached across jobs)
        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        lacking = [n for n in chosen if (n if n != "mask" else "masked") not in unet.conditions]
        if lacking:
            raise InvalidRequest(f"The weights {weights.unet.name} have no branch for the {', '.join(lacking)} "
                                 "condition (the released VideoComposer weights hold depth, local_image, motion, "
                                 "sketch, single_sketch and mask).",
                                 hint=f"Leave {', '.join(lacking)} out of `conditions`.", field="conditions")
        factor = latent_factor(vae, p.height, p.width)
        self._check_size(ctx, weights, p)
        ctx.log.info("%s: %s, conditions %s, %s/%s", self.title, weights.unet.name, "+".join(chosen) or "none",
                     device, str(dtype).removeprefix("torch."))

        with torch.inference_mode():
            conds = {k: v.to(device, dtype) for k, v in conds.items()}
            style = None
            if req.inputs.get("style_image") is not None:
                style = style_embedding(ctx, weights, req.inputs["style_image"], p.width, p.height, device, dtype)
            shape = (1, unet.latent_channels, p.num_frames, p.height // factor, p.width // factor)
            latents = self.sample(ctx, unet, text, p, conds, style, shape, ctx.generator(req.seed), device, dtype)
            ctx.check_cancelled()
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)

    @staticmethod
    def _check_size(ctx: JobContext, weights: Weights, p: Any) -> None:
        trained = (896, 512) if "896x512" in weights.unet.name else (448, 256)
        if (p.width, p.height) != trained:
            ctx.log.warning("%s was trained at %d×%d; %d×%d was asked", weights.unet.name, *trained, p.width, p.height)

    def sample(self, ctx: JobContext | None, unet: torch.nn.Module, text: Any, p: Any, conds: dict[str, torch.Tensor],
               style: torch.Tensor | None, shape: tuple[int, ...], gen: torch.Generator, device: torch.device,
               dtype: torch.dtype) -> torch.Tensor:
        """DDIM (or the chosen sampler) with classifier-free guidance: batch ``[uncond, cond]`` that differs in the
        text (negative prompt / prompt + suffix) and the style image (zeros / its embedding) only."""
        do_cfg = uses_cfg(p.guidance_scale)
        prompt = p.prompt + p.positive_suffix
        embeds = text.encode([p.negative_prompt, prompt] if do_cfg else [prompt]).to(dtype)
        image_embeds = None
        if style is not None:
            image_embeds = torch.cat([torch.zeros_like(style), style]) if do_cfg else style
        scheduler = make_scheduler(PRESET, p.scheduler)
        timesteps = set_timesteps(scheduler, p.num_inference_steps, device)
        latents = initial_latents(shape, gen, dtype, device=device) * scheduler.init_noise_sigma

        def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return unet(model_in, t, encoder_hidden_states=embeds, image_embeds=image_embeds, conditions=conds,
                        return_dict=False)[0]

        return denoise(ctx, model_fn, scheduler, latents, timesteps, guidance_scale=p.guidance_scale)


class ComposerT2VGenerator(_Composer):
    """``videocomposer.t2v``: ``generate(ctx, req) -> Video``."""


class ComposerLCMGenerator(_Composer):
    """``videocomposer.lcm``: ``generate(ctx, req) -> Video`` in 1–8 LCM steps, the conditional branch only."""

    params_model = ComposerLCMParams
    lcm = True
    title = "VideoComposer (VideoLCM)"

    def sample(self, ctx: JobContext | None, unet: torch.nn.Module, text: Any, p: Any, conds: dict[str, torch.Tensor],
               style: torch.Tensor | None, shape: tuple[int, ...], gen: torch.Generator, device: torch.device,
               dtype: torch.dtype) -> torch.Tensor:
        """VGen's loop: ``scale_model_input`` → UNet (conditional kwargs only) → ``LCMScheduler.step``; returns the
        last step's denoised latents."""
        embeds = text.encode([p.prompt + p.positive_suffix]).to(dtype)
        scheduler = make_scheduler(PRESET, "lcm")
        timesteps = set_timesteps(scheduler, p.num_inference_steps, device)
        latents = initial_latents(shape, gen, dtype, device=device) * scheduler.init_noise_sigma

        def model_fn(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return unet(model_in, t, encoder_hidden_states=embeds, image_embeds=style, conditions=conds,
                        return_dict=False)[0]

        def step_fn(pred: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return scheduler.step(pred, t, x, generator=gen, return_dict=False)  # (latents, denoised)

        return denoise(ctx, model_fn, scheduler, latents, timesteps, step_fn=step_fn)
