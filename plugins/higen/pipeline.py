"""HiGen's two-stage sampler (VGen's ``inference_higen_entrance``, vgen-notes §8), worker side (torch).

1. Spatial stage: one frame from noise ``[1, 4, 1, h, w]`` with a zero spatial prior, motion 0 and an all-ones
   appearance vector; DDIM with guidance → the key-frame latent, decoded and shown as a preview.
2. Temporal stage: ``[1, 4, F, h, w]`` noise plus offset noise, the key frame as spatial prior, ``F − 1`` copies of
   ``motion_factor`` and the appearance Toeplitz matrix ``1 − a·|i − j| / (F − 1)``; DDIM with guidance → decoded
   in frame chunks.

Both stages draw their noise from the job's one seeded generator in VGen's order (key-frame noise, video noise,
offset noise). The unconditional branch is ``negative_prompt`` (VGen: ""); the cues are the same in both branches.

``req.weights`` is a VGen folder (the UNet ``.pth`` — ``cvpr2024.t2v.*.pth``, or the one ``vgen_studio.json`` names —
beside ``open_clip_pytorch_model.bin`` and ``v2-1_512-ema-pruned.ckpt``) or the UNet ``.pth`` itself.
"""
from __future__ import annotations

from typing import Any

import torch

from sdk.context import JobContext, JobRequest
from sdk.errors import InvalidRequest
from sdk.ml.checkpoints import load_state_dict
from sdk.ml.device import resolve_device, resolve_dtype
from sdk.ml.guidance import uses_cfg
from sdk.ml.sampling import denoise, initial_latents
from sdk.ml.schedulers import make_scheduler, set_timesteps
from sdk.ml.weights_layout import Weights, detect_vgen_folder
from sdk.video import Video

from plugins.higen import WEIGHTS_ID
from plugins.higen.params import HiGenParams
from plugins.higen.unet import HiGenUNet, appearance_matrix, load_higen_unet

PRESET = "tft2v"  # v-prediction on VGen's linear_sd (= scaled_linear) betas with zero terminal SNR
KIND = "vgen-higen-unet"


def detect_weights(path: Any) -> Weights:
    """The HiGen VGen folder at ``path``; raises :class:`~sdk.errors.WeightsMissing` naming what is missing."""
    return detect_vgen_folder(path, what="HiGen", weights_id=WEIGHTS_ID, prefixes=("cvpr2024.t2v", "higen"))


def load_unet(ctx: JobContext, w: Weights, device: torch.device, dtype: torch.dtype) -> HiGenUNet:
    """The HiGen UNet of ``w`` from ``ctx.models`` (a second job on the same file pays no load)."""
    from sdk.ml import components

    assert w.unet is not None
    unet_file, config = w.unet, w.config()
    return components.unet(ctx, unet_file, dtype, device,
                           lambda: load_higen_unet(load_state_dict(unet_file), config, source=unet_file.name),
                           kind=KIND, config=config)


class _Stage:
    """What :func:`sdk.ml.sampling.denoise` reports through: one stage's steps as a part of the job's whole count."""

    def __init__(self, ctx: JobContext, offset: int, total: int) -> None:
        self.ctx, self.offset, self.total = ctx, offset, total

    def check_cancelled(self) -> None:
        self.ctx.check_cancelled()

    def progress(self, step: int, _total: int) -> None:
        self.ctx.progress(self.offset + step, self.total)

    def preview(self, latents: Any, step: int, _total: int) -> bool:
        return self.ctx.preview(latents, self.offset + step, self.total)


def sample_stages(ctx: JobContext | None, unet: HiGenUNet, embeds: torch.Tensor, p: HiGenParams,
                  gen: torch.Generator, grid: tuple[int, int], *, on_key_frame: Any = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Both stages on the latent ``grid`` (h, w): returns (key-frame latent ``[1, 4, 1, h, w]``, video latents
    ``[1, 4, F, h, w]``). ``embeds``: ``[uncond, cond]`` text tokens (``[cond]`` without guidance); ``gen``: the
    job's generator, drawn in VGen's order; ``on_key_frame(key)`` runs between the stages. ``ctx`` (None: no
    reports) sees progress over both stages (``2 × num_inference_steps``) and cancel checks."""
    steps, frames, (h, w) = p.num_inference_steps, p.num_frames, grid
    device, dtype, c = unet.device, unet.dtype, unet.latent_channels

    def run(stage: int, noise: torch.Tensor, prior: torch.Tensor, motion: torch.Tensor,
            appearance: torch.Tensor) -> torch.Tensor:
        def call(model_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return unet(model_in, t, embeds, spatial_prior=prior, motion=motion, appearance=appearance,
                        return_dict=False)[0]

        scheduler = make_scheduler(PRESET)  # fresh per stage: schedulers hold per-run state
        timesteps = set_timesteps(scheduler, steps, device)
        reporter = None if ctx is None else _Stage(ctx, stage * steps, 2 * steps)
        return denoise(reporter, call, scheduler, noise * scheduler.init_noise_sigma, timesteps,  # type: ignore[arg-type]
                       guidance_scale=p.guidance_scale)

    # spatial stage: one frame, zero prior, motion 0, an all-ones appearance vector
    noise = initial_latents((1, c, 1, h, w), gen, dtype, device=device)
    key = run(0, noise, torch.zeros(1, c, h, w, dtype=dtype, device=device), torch.zeros(1, 1, device=device),
              torch.ones(1, 1, unet.appearance_dim, device=device))
    if ctx is not None:
        ctx.check_cancelled()
    if on_key_frame is not None:
        on_key_frame(key)
    # temporal stage: offset noise, the key frame as prior, F − 1 motion values, the appearance Toeplitz matrix
    noise = initial_latents((1, c, frames, h, w), gen, dtype, p.offset_noise, device)
    motion = torch.full((1, frames - 1), float(p.motion_factor), device=device)
    latents = run(1, noise, key[:, :, 0], motion, appearance_matrix(frames, p.appearance_factor).to(device))
    return key, latents


class HiGenGenerator:
    """``generate(ctx, req) -> Video``; models come from ``ctx.models``."""

    def generate(self, ctx: JobContext, req: JobRequest) -> Video:
        from sdk.ml import components
        from sdk.ml.vae import decode_video, latent_factor, to_uint8

        # 1. check inputs and load (cached across jobs)
        p = req.params if isinstance(req.params, HiGenParams) else HiGenParams.model_validate(dict(req.params))
        weights = detect_weights(req.weights)
        device = resolve_device(ctx.device)
        dtype = resolve_dtype(ctx.dtype, device)
        unet = load_unet(ctx, weights, device, dtype)
        frames = unet.appearance_dim
        if p.num_frames != frames:
            raise InvalidRequest(
                f"num_frames is {p.num_frames}, but these HiGen weights ({weights.unet.name}) take exactly {frames} "
                f"frames: their appearance cue is {frames} wide.", hint=f"Set num_frames={frames}.",
                field="num_frames")
        vae = components.vae(ctx, weights.vae, dtype, device)
        text = components.text_encoder(ctx, weights.open_clip, dtype, device)
        factor = latent_factor(vae, p.height, p.width)
        do_cfg = uses_cfg(p.guidance_scale)
        steps = p.num_inference_steps
        ctx.log.info("HiGen: %s, %d frames, motion %g, appearance %g, %s/%s", weights.unet.name, frames,
                     p.motion_factor, p.appearance_factor, device, str(dtype).removeprefix("torch."))

        # 2. both stages (the key frame is shown between them)
        with torch.inference_mode():
            embeds = text.encode([p.negative_prompt, p.prompt] if do_cfg else [p.prompt]).to(dtype)

            def show_key_frame(key: torch.Tensor) -> None:
                ctx.preview(to_uint8(decode_video(vae, key, 1)[0]), steps, 2 * steps, force=True)
                ctx.log.info("HiGen: key frame done; temporal stage")

            _, latents = sample_stages(ctx, unet, embeds, p, ctx.generator(req.seed),
                                       (p.height // factor, p.width // factor), on_key_frame=show_key_frame)
            ctx.check_cancelled()

            # 3. decode in frame chunks
            pixels = decode_video(vae, latents, p.decode_chunk_size)
        return Video(to_uint8(pixels[0]), fps=p.fps)
