"""What every method's sampler shares: the seeded initial noise and the denoising loop (check cancel → guidance
batch → ``scale_model_input`` → model → guidance → ``scheduler.step`` → progress → preview).

A method's own conditioning stays in its pipeline: it passes ``model_fn(model_in, t) -> prediction`` (the UNet call
with whatever extra inputs it needs) and, when its scheduler step differs, ``step_fn``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from sdk.context import JobContext
from sdk.ml.guidance import apply_cfg, uses_cfg

ModelFn = Callable[[torch.Tensor, Any], torch.Tensor]
StepFn = Callable[[torch.Tensor, Any, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def initial_latents(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, offset_noise: float = 0.0,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Exactly diffusers' ``randn_tensor`` with a CPU generator: ``randn(shape)``, then (``offset_noise`` > 0) the
    offset ``randn(B, C, F, 1, 1)`` from the same generator. Not yet scaled by ``init_noise_sigma``.

    Returns the latents on ``device`` (CPU when None)."""
    latents = torch.randn(shape, generator=gen, dtype=dtype)
    if offset_noise > 0:
        latents = latents + offset_noise * torch.randn(shape[:3] + (1, 1), generator=gen, dtype=dtype)
    return latents if device is None else latents.to(device)


def denoise(ctx: JobContext | None, model_fn: ModelFn, scheduler: Any, latents: torch.Tensor,
            timesteps: Sequence[Any], *, guidance_scale: float = 1.0, step_fn: StepFn | None = None,
            report: bool = True) -> torch.Tensor:
    """Run ``timesteps`` of ``scheduler`` from ``latents`` (already scaled by ``init_noise_sigma``).

    Parameters: ``ctx`` checks cancel before each step (None: no checks, no reports); ``model_fn(model_in, t)`` the
    model call, given the doubled batch ``[uncond, cond]`` when ``guidance_scale`` > 1 (u + s·(c − u) follows);
    ``step_fn(pred, t, latents) -> (latents, shown)`` replaces ``scheduler.step`` (``shown``: what the preview shows
    and what is returned after the last step, e.g. LCM's denoised estimate); ``report``: progress and preview each
    step. Returns the final latents (or the last ``shown``). Raises ``Cancelled`` through ``ctx.check_cancelled``."""
    do_cfg = uses_cfg(guidance_scale)
    total = len(timesteps)
    shown = latents
    for i, t in enumerate(timesteps):
        if ctx is not None:
            ctx.check_cancelled()
        model_in = torch.cat([latents, latents]) if do_cfg else latents
        pred = model_fn(scheduler.scale_model_input(model_in, t), t)
        if do_cfg:
            pred = apply_cfg(pred, guidance_scale)
        if step_fn is None:
            latents = shown = scheduler.step(pred, t, latents, return_dict=False)[0]
        else:
            latents, shown = step_fn(pred, t, latents)
        if ctx is not None and report:
            ctx.progress(i + 1, total)
            ctx.preview(shown, i + 1, total)
    return shown
