"""Classifier-free guidance as VGen and diffusers do it: batch ``[uncond, cond]``, ``u + s·(c − u)`` on the raw
prediction (eps or v), no rescale."""
from __future__ import annotations

import torch


def uses_cfg(guidance_scale: float) -> bool:
    return guidance_scale > 1.0


def cfg_batch(negative: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Text context for one UNet call on the doubled batch."""
    return torch.cat([negative, positive])


def apply_cfg(pred: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    uncond, cond = pred.chunk(2)
    return uncond + guidance_scale * (cond - uncond)
