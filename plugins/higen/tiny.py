"""Twins of the HiGen weights in VGen's layout: the UNet ``.pth`` (VGen names, ``{'state_dict', 'step'}``) beside
``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt`` and ``vgen_studio.json``.

``size="tiny"`` builds tiny random models in memory (tests, the demo); ``size="real"`` writes random weights at the
released dimensions (UNet 1.48 B, OpenCLIP-H, SD VAE) tensor by tensor, never holding a model (benchmarks and GPU
checks). Random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

UNET_FILE = "higen_tiny.pth"
UNET_FILE_REAL = "higen_realsize.pth"
SIZES = ("tiny", "real")


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0, size: str = "tiny",
                      num_frames: int = 32) -> Path:
    """Write a complete HiGen weights folder into ``dir`` (created) and return it. ``num_frames``: the appearance
    cue's width, i.e. the frame count the twin renders (32, as released; smaller for quick tests)."""
    import torch

    if format != "vgen":
        raise ValueError(f"Unknown weights format {format!r}; HiGen weights come as 'vgen' .pth files")
    if size not in SIZES:
        raise ValueError(f"Unknown twin size {size!r}; use 'tiny' or 'real'")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    note: dict[str, Any] = {"tiny": size == "tiny", "seed": seed, "preset": "tft2v",
                            "note": "Random weights: they produce noise."}
    if size == "real":
        return write_streamed(out, seed=seed, note=note)

    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_vae, write_vgen_encoders

    from plugins.higen.unet import tiny_higen_unet, vgen_state_dict

    unet = tiny_higen_unet(seed, appearance_dim=num_frames)
    torch.save({"state_dict": vgen_state_dict(unet), "step": 0}, out / UNET_FILE)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    (out / "vgen_studio.json").write_text(json.dumps(dict(note, unet=UNET_FILE), indent=2))
    return out


def write_streamed(dir: Path, *, seed: int = 0, dims: dict[str, Any] | None = None,
                   note: dict[str, Any] | None = None) -> Path:
    """Write a twin tensor by tensor (never a whole model in memory): the released dimensions unless ``dims`` gives
    ``unet`` (``HiGenUNet`` kwargs) / ``openclip`` / ``vae`` configs (tests use the tiny ones)."""
    from sdk.ml.tiny import OPENCLIP_REAL, VAE_REAL, write_vgen_streamed
    from sdk.ml.twins import meta_model, plan_from_shapes

    from plugins.higen.unet import HiGenUNet, real_config, vgen_state_dict

    dims = dict(dims or {})
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet = meta_model(lambda: HiGenUNet(**dims.get("unet", real_config())))
    plan = plan_from_shapes(vgen_state_dict(unet), seed + 1)
    note = dict(note or {"tiny": False, "seed": seed, "preset": "tft2v", "note": "Random weights: they produce noise."})
    return write_vgen_streamed(out, UNET_FILE_REAL, plan, dims.get("openclip", OPENCLIP_REAL),
                               dims.get("vae", VAE_REAL), seed, note)
