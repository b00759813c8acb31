"""Scheduler presets per checkpoint family (numerics §5, rules 12–13).

All presets: 1000 train steps, DDIM ``timestep_spacing="leading"``, ``steps_offset=1``, ``set_alpha_to_one=False``,
``clip_sample=False``, eta 0. For DDIM the timesteps are VGen's own list when N divides 1000 (otherwise exactly N leading steps).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

SchedulerKind = Literal["ddim", "dpmpp", "euler", "lcm"]

COMMON: dict[str, Any] = dict(num_train_timesteps=1000, timestep_spacing="leading", steps_offset=1,
                              set_alpha_to_one=False, clip_sample=False)
PRESETS: dict[str, dict[str, Any]] = {
    # ModelScope v1.4/v1.5, DreamVideo, InstructVideo, text-to-video-ms-1.7b
    "modelscope": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                       prediction_type="epsilon", rescale_betas_zero_snr=False),
    # VGen T2V, I2VGen-XL
    "vgen_t2v": dict(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", rescale_betas_zero_snr=True),
    # TF-T2V, HiGen, VideoComposer, VideoLCM
    "tft2v": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                  prediction_type="v_prediction", rescale_betas_zero_snr=True),
}
#: LCM sampling as VideoLCM runs it (vgen-notes §11): diffusers' LCMScheduler defaults (original 50 steps,
#: ``set_alpha_to_one``, offset 0) with "linspace" spacing, on the preset's betas and prediction type.
LCM_OVERRIDES: dict[str, Any] = dict(timestep_spacing="linspace", steps_offset=0, set_alpha_to_one=True,
                                     original_inference_steps=50, timestep_scaling=10.0)


def preset_config(preset: str) -> dict[str, Any]:
    if preset not in PRESETS:
        raise ValueError(f"Unknown scheduler preset {preset!r}; known: {', '.join(PRESETS)}")
    return {**COMMON, **PRESETS[preset]}


def make_scheduler(preset: str, kind: SchedulerKind = "ddim"):
    """A fresh scheduler (they hold per-run state) built from the preset's betas and prediction type."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    cfg = preset_config(preset)
    if kind == "ddim":
        return DDIMScheduler(**cfg)
    if kind == "dpmpp":
        return DPMSolverMultistepScheduler.from_config(dict(cfg, algorithm_type="dpmsolver++", solver_order=2))
    if kind == "euler":
        return EulerDiscreteScheduler.from_config(cfg)
    if kind == "lcm":
        from diffusers import LCMScheduler

        return LCMScheduler.from_config(dict(cfg, **LCM_OVERRIDES))
    raise ValueError(f"Unknown scheduler {kind!r}; use ddim, dpmpp, euler or lcm")


def vgen_timesteps(num_inference_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """VGen's DDIM timesteps: ``1 + arange(0, T, T // N)`` descending (N=30 → 31 steps 991 … 1)."""
    stride = max(1, num_train_timesteps // num_inference_steps)
    return [min(t + 1, num_train_timesteps - 1) for t in range(0, num_train_timesteps, stride)][::-1]


def set_timesteps(scheduler, num_inference_steps: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``set_timesteps``; returns the timesteps to loop over.

    ``num_inference_steps`` means exactly that many UNet calls, as in diffusers. When it divides the
    1000 training steps (50, 25, 20 …, VGen's defaults) the DDIM timesteps are VGen's own list,
    bit for bit. Otherwise VGen's scripts would take one extra step (30 → 31); we keep the count the
    user asked for (diffusers' "leading" list, ~1e-2 away from VGen's result; numerics.md §5).
    """
    scheduler.set_timesteps(num_inference_steps, device=device)
    total = scheduler.config.num_train_timesteps
    if type(scheduler).__name__ == "DDIMScheduler" and total % num_inference_steps == 0:
        scheduler.timesteps = torch.tensor(vgen_timesteps(num_inference_steps, scheduler.config.num_train_timesteps),
                                           dtype=torch.long, device=device)
    return scheduler.timesteps


def preset_from_scheduler_config(cfg: dict[str, Any]) -> str:
    """The preset a diffusers ``scheduler_config.json`` describes."""
    pred = cfg.get("prediction_type", "epsilon")
    if pred == "epsilon":
        return "modelscope"
    return "vgen_t2v" if cfg.get("beta_schedule") == "squaredcos_cap_v2" else "tft2v"


def preset_from_filename(name: str) -> str:
    """Guess the preset from a VGen checkpoint's file name (a ``vgen_studio.json`` beside it wins)."""
    n = Path(name).name.lower()
    if n.startswith(("model_scope_v1-", "text2video_pytorch_model")) or "dreamvideo" in n or "instructvideo" in n \
            or n.startswith("ddim20_"):
        return "modelscope"
    if n.startswith(("tft2v", "videolcm", "cvpr2024.t2v", "higen")):
        return "tft2v"
    return "vgen_t2v"
