"""What the tests compare against: the shared reference beside the checkout (``../shared``, or ``$VGEN_SHARED``) —
VGen's UNet manifests, which the loaders must map key for key (a test that needs one is skipped, saying how to point
at it, when it is not there) — and VGen's DDIM sampling loop re-derived from its read-only source in float64."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def manifest(name: str) -> dict:
    """``reference/vgen_unet_manifests/<name>`` of the shared folder, parsed (skips the test when absent)."""
    roots = [Path(os.environ["VGEN_SHARED"]) if os.environ.get("VGEN_SHARED") else None, REPO.parent / "shared"]
    for root in filter(None, roots):
        path = root / "reference" / "vgen_unet_manifests" / name
        if path.exists():
            return json.loads(path.read_text())
    pytest.skip(f"manifest {name} not found (set VGEN_SHARED to the shared folder holding reference/vgen_unet_manifests)")


def vgen_betas() -> torch.Tensor:
    """``beta_schedule('linear_sd', 1000, 0.00085, 0.012, zero_terminal_snr=True)`` in float64."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ab_sqrt = (1 - betas).cumprod(0).sqrt()
    a0, at = ab_sqrt[0].clone(), ab_sqrt[-1].clone()
    ab_sqrt = (ab_sqrt - at) * (a0 / (a0 - at))
    ab = ab_sqrt ** 2
    return 1 - torch.cat([ab[0:1], ab[1:] / ab[:-1]])


def vgen_ddim_loop(model: Any, noise: torch.Tensor, kwargs: list[dict[str, Any]], steps: int,
                   guide_scale: float) -> torch.Tensor:
    """``DiffusionDDIM.ddim_sample_loop`` with ``mean_type='v'``, eta 0, classifier-free guidance."""
    ac = torch.cumprod(1 - vgen_betas(), dim=0)

    def at(tensor: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # VGen's _i
        return tensor[t].view(x.size(0), *((1,) * (x.ndim - 1))).to(x)

    stride = 1000 // steps
    xt = noise
    for step in (1 + torch.arange(0, 1000, stride)).clamp(0, 999).flip(0):
        t = torch.full((xt.size(0),), int(step), dtype=torch.long)
        y_out = model(xt, t, **kwargs[0])
        u_out = model(xt, t, **kwargs[1])
        out = u_out + guide_scale * (y_out - u_out)
        x0 = at(ac.sqrt(), t, xt) * xt - at((1 - ac).sqrt(), t, xt) * out
        eps = (at((1 / ac).sqrt(), t, xt) * xt - x0) / at((1 / ac - 1).sqrt(), t, xt)
        prev = at(ac, (t - stride).clamp(0), xt)
        xt = prev.sqrt() * x0 + (1 - prev).sqrt() * eps
    return xt
