"""Latent → RGB previews for SD-VAE latents: one 4×3 linear map (~0.1 ms per step)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: SD latent → RGB factors (rows: latent channels 0..3; columns R, G, B).
SD_LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
_FACTORS: dict[tuple[Any, Any], torch.Tensor] = {}


def _factors(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (device, dtype)
    t = _FACTORS.get(key)
    if t is None:
        t = _FACTORS[key] = torch.tensor(SD_LATENT_RGB, dtype=dtype, device=device)
    return t


@torch.inference_mode()
def latents_to_rgb(latents: Any) -> np.ndarray:
    """``[B,4,F,h,w]`` or ``[4,F,h,w]`` latents (first batch item) → uint8 ``[F,h,w,3]``."""
    x = latents if isinstance(latents, torch.Tensor) else torch.as_tensor(np.asarray(latents))
    if x.ndim == 5:
        x = x[0]
    if x.ndim != 4 or x.shape[0] != 4:
        raise ValueError(f"expected SD latents [B,4,F,h,w] or [4,F,h,w], got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    rgb = torch.einsum("cfhw,cr->fhwr", x, _factors(x.device, x.dtype))
    return rgb.add_(1.0).mul_(127.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
