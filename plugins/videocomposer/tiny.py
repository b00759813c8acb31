"""Tiny twins of the VideoComposer weights in the VGen layout the loader reads: the composition UNet ``.pth``
(VGen names, fused ``to_qkv``, ``{'state_dict', 'step'}``), ``open_clip_pytorch_model.bin`` (text and image towers),
``v2-1_512-ema-pruned.ckpt`` and ``vgen_studio.json``. Tiny random weights produce noise: they exist so tests and the
demo run end to end without downloads.
"""
from __future__ import annotations

import json
from pathlib import Path

T2V_FILE = "tft2v_vcomposer_non_ema_tiny.pth"
LCM_FILE = "videolcm_vcomposer_non_ema_tiny.pth"


def write_tiny_folder(dir: Path, unet_file: str, *, seed: int = 0) -> Path:
    """A complete tiny VGen folder whose UNet file is ``unet_file``; returns the folder (created)."""
    import torch

    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_vae, write_vgen_encoders
    from sdk.ml.weights_layout import STUDIO_FILE

    from plugins.videocomposer.unet import tiny_composition_unet, vgen_state_dict

    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": vgen_state_dict(tiny_composition_unet(seed)), "step": 0}, out / unet_file)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    note = {"tiny": True, "seed": seed, "preset": "tft2v", "unet": unet_file,
            "note": "Tiny random weights: they produce noise."}
    (out / STUDIO_FILE).write_text(json.dumps(note, indent=2))
    return out


def _vgen_only(format: str) -> None:
    if format != "vgen":
        raise ValueError(f"Unknown weights format {format!r}; VideoComposer weights come as 'vgen' .pth files")


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Tiny twin of the TF-T2V vcomposer weights (``tft2v_vcomposer_*.pth``) in ``dir``."""
    _vgen_only(format)
    return write_tiny_folder(Path(dir), T2V_FILE, seed=seed)


def make_tiny_lcm_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Tiny twin of the VideoLCM vcomposer weights (``videolcm_vcomposer_*.pth``) in ``dir``."""
    _vgen_only(format)
    return write_tiny_folder(Path(dir), LCM_FILE, seed=seed)
