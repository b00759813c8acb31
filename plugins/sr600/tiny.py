"""Twins of the SR600 weights in VGen's layout: ``sr_step_*.pth`` (VGen names, ``{'state_dict', 'step'}``),
``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt`` and ``vgen_studio.json``.

``size="tiny"`` builds the four-level tiny SR600 UNet (:func:`plugins.sr600.unet.tiny_config`) in memory;
``size="real"`` streams random tensors at the released dimensions (UNet 1.41 B, OpenCLIP-H, SD VAE) to disk, tensor
by tensor, for benchmarks and GPU checks (never for CI). Random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path

TINY_FILE = "sr_step_tiny.pth"
REAL_FILE = "sr_step_realsize.pth"
NOTE = {"preset": "sr600", "note": "Random weights: they produce noise."}


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0, size: str = "tiny") -> Path:
    """Write a complete SR600 weights folder of random values into ``dir`` (created) and return it."""
    if format != "vgen":
        raise ValueError(f"Unknown weights format {format!r}; SR600 weights come as a VGen .pth")
    if size not in ("tiny", "real"):
        raise ValueError(f"Unknown twin size {size!r}; use 'tiny' or 'real'")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    if size == "real":
        return _write_real(out, seed)

    import torch

    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_vae, write_vgen_encoders
    from sdk.ml.weights_layout import STUDIO_FILE

    from plugins.sr600.unet import tiny_sr600_unet, vgen_state_dict

    unet = tiny_sr600_unet(seed)
    torch.save({"state_dict": vgen_state_dict(unet), "step": 0}, out / TINY_FILE)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    note = dict(NOTE, tiny=True, seed=seed, unet=TINY_FILE, unet_config=unet.unet_config())
    (out / STUDIO_FILE).write_text(json.dumps(note, indent=2))
    return out


def _write_real(out: Path, seed: int) -> Path:
    from sdk.ml.convert import KeyMap
    from sdk.ml.tiny import OPENCLIP_REAL, VAE_REAL, write_vgen_streamed
    from sdk.ml.twins import converted_plan, meta_model

    from plugins.sr600.unet import SR600UNet

    unet = meta_model(lambda: SR600UNet())  # diffusers' defaults are the released 1.41 B configuration
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    plan = converted_plan(shapes, seed + 1, KeyMap.for_model(unet).diffusers_to_vgen)
    note = dict(NOTE, twin="real", seed=seed)
    return write_vgen_streamed(out, REAL_FILE, plan, OPENCLIP_REAL, VAE_REAL, seed, note)
