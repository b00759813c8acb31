"""``sr600.upscale``: VGen's SDEdit-style refiner to 1280×720 (``inference_sr600_entrance``), worker side.

1. The source video's frames (:mod:`plugins.sr600.frames`: 16 doubled to 32, other counts resampled, far-off
   aspect ratios letterboxed) → [−1, 1] → bilinear resize to ``height``×``width`` → VAE encode (posterior sample,
   ×0.18215), a few frames at a time.
2. DDIM inversion on the cosine schedule to t = ``total_noise_levels`` − 1, conditioned on the negative prompt, no
   guidance (:func:`plugins.sr600.schedule.ddim_invert`).
3. DPM-Solver++(2M) SDE on the ``logsnr_cosine_interp`` schedule, ``num_inference_steps`` trailing steps from there
   to 0, guidance 9 with rescale 0.3; cond = prompt + positive suffix, uncond = the negative prompt; each branch
   its own UNet call (batch 1, as VGen: half the activations of a doubled batch).
4. Decode with VAE tiling (``vae_tiling``) ``decode_chunk_size`` frames at a time; a doubled source drops every
   second latent frame first.

The seed decides the posterior sample of step 1; the SDE noise of step 3 comes from a generator reset to the same
seed before sampling (VGen resets its RNG to 0 there), so a seed means the same noise whatever the source.
``req.weights`` is a VGen folder (``sr_step_*.pth`` beside ``open_clip_pytorch_model.bin`` and
``v2-1_512-ema-pruned.ckpt``) or the UNet ``.pth`` itself.
"""
from __future__ import annotations

from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.weights_layout import Weights, detect_vgen_folder
from sdk.video import Video, read_video_input

from plugins.sr600 import schedule as sch
from plugins.sr600.frames import prepare
from plugins.sr600.params import SR600Params, check_frame_size

WEIGHTS_ID = "sr600.sr600"
KIND = "vgen-sr600-unet"


def detect_weights(path: Any) -> Weights:
    return detect_vgen_folder(path, what="SR600", weights_id=WEIGHTS_ID, prefixes=("sr_step", "sr600"))


def load_components(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """UNet, VAE and text encoder on ``device`` in ``dtype``, each cached on its own (:mod:`sdk.ml.components`)."""
    from sdk.ml import components

    from plugins.sr600.unet import load_sr600_unet

    assert w.unet is not None
    config = w.config()
    unet = components.unet(ctx, w.unet, dtype, device,
                           lambda: load_sr600_unet(load_state_dict(w.unet), config, source=w.unet.name),
                           kind=KIND, config=config)
    return {"unet": unet, "vae": components.vae(ctx, w.vae, dtype, device),
            "text_encoder": components.text_encoder(ctx, w.open_clip, dtype, device)}


def _encode(vae: Any, pixels: torch.Tensor, gen: torch.Generator, chunk: int) -> torch.Tensor:
    """``[F,3,H,W]`` → latents ``[1,4,F,h,w]`` (posterior sample × scaling factor), ``chunk`` frames at a time."""
    from sdk.ml.image import encode_image_latent

    parts = [encode_image_latent(vae, pixels[i:i + chunk], gen).float().cpu() for i in range(0, len(pixels), chunk)]
    return torch.cat(parts).permute(1, 0, 2, 3).unsqueeze(0)


class SR600Generator:
    """``generate(ctx, req) -> Video`` at ``height``×``width``."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml.vae import decode_video, scale_factor, to_uint8

        p = req.params if isinstance(req.params, SR600Params) else SR600Params.model_validate(dict(req.params))
        source = req.inputs.get("video")
        if source is None:
            raise InvalidRequest("sr600.upscale needs a source video.", hint="Give --input video=JOB_ID or a video "
                                 "file.", field="video")
        if p.num_inference_steps > p.total_noise_levels:
            raise InvalidRequest(f"num_inference_steps {p.num_inference_steps} is more than total_noise_levels "
                                 f"{p.total_noise_levels}.", hint="Lower num_inference_steps or raise "
                                 "total_noise_levels.", field="num_inference_steps")
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)

        frames, src_fps = read_video_input(source, hint="Give an .mp4/.webm/.gif video or a finished job's id.")
        prep = prepare(frames, src_fps, model_frames=p.num_frames, height=p.height, width=p.width)
        for note in prep.notes:
            ctx.log.info("SR600: %s", note)

        comps = load_components(ctx, weights, device, dtype)
        unet, vae, text = comps["unet"], comps["vae"], comps["text_encoder"]
        levels = len(unet.config["block_out_channels"])
        check_frame_size(p.height, p.width, levels=levels, factor=scale_factor(vae))
        ctx.log.info("SR600: %s, %d frames at %d×%d, inversion to t=%d, %d DPM++ 2M SDE steps, %s/%s",
                     weights.unet.name, p.num_frames, p.width, p.height, p.total_noise_levels - 1,
                     p.num_inference_steps, device, str(dtype).removeprefix("torch."))

        tiling_before = bool(getattr(vae, "use_tiling", False))
        if p.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        try:
            with torch.inference_mode():
                latents = self._refine(ctx, p, req.seed, prep.pixels, unet, vae, text, device, dtype)
                if prep.doubled:
                    latents = latents[:, :, ::2]  # VGen halves before decoding
                ctx.check_cancelled()
                pixels = decode_video(vae, latents.to(device), p.decode_chunk_size)
        finally:
            if not tiling_before and hasattr(vae, "disable_tiling"):
                vae.disable_tiling()
        fps = p.fps or max(1, int(round(prep.fps)))
        return Video(to_uint8(pixels[0]), fps=fps)

    @staticmethod
    def _refine(ctx: JobContext, p: SR600Params, seed: int, pixels: torch.Tensor, unet: Any, vae: Any, text: Any,
                device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Encode, invert, sample: the refined latents ``[1,4,F,h,w]`` (float32)."""
        cap = getattr(vae, "_vgen_decode_chunk_cap", None)  # the memory mode's frames-at-once cap, for encoding too
        x0 = _encode(vae, pixels, ctx.generator(seed), min(p.decode_chunk_size, cap or p.decode_chunk_size)).to(device)
        ctx.check_cancelled()
        uncond = text.encode([p.negative_prompt]).to(device, dtype)
        cond = text.encode([p.prompt + p.positive_suffix]).to(device, dtype)

        def v_pred(x: torch.Tensor, t: int, context: torch.Tensor) -> torch.Tensor:
            tt = torch.full((x.shape[0],), t, dtype=torch.long, device=device)
            return unet(x.to(device, dtype), tt, encoder_hidden_states=context, return_dict=False)[0].float()

        n_inv = len(sch.inversion_times(p.total_noise_levels, p.num_inference_steps))
        total = n_inv + p.num_inference_steps

        def inv_step(i: int, n: int) -> None:
            ctx.progress(i, total)
            ctx.check_cancelled()

        def inv_model(x: torch.Tensor, t: int) -> torch.Tensor:
            ctx.check_cancelled()
            return v_pred(x, t, uncond)

        noisy = sch.ddim_invert(inv_model, x0, sch.cosine_sigmas(), total_noise_levels=p.total_noise_levels,
                                steps=p.num_inference_steps, on_step=inv_step)

        def guided(x: torch.Tensor, t: int) -> torch.Tensor:
            ctx.check_cancelled()
            c = v_pred(x, t, cond)
            if p.guidance_scale <= 1.0:
                return c
            return sch.guide(c, v_pred(x, t, uncond), p.guidance_scale, p.guide_rescale)

        gen = ctx.generator(seed)  # reset: the SDE noise depends on the seed only

        def noise(i: int) -> torch.Tensor:
            return torch.randn(noisy.shape, generator=gen).to(device)

        def sde_step(i: int, n: int, x0_hat: torch.Tensor) -> None:
            ctx.progress(n_inv + i, total)
            ctx.preview(x0_hat, n_inv + i, total)

        return sch.sample_sde(guided, noisy, sch.logsnr_cosine_interp_sigmas(), noise, steps=p.num_inference_steps,
                              t_max=p.total_noise_levels - 1, on_step=sde_step)
