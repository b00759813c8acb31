"""Tiny twin of the TF-T2V weights in the VGen layout the loader reads: ``tft2v_t2v_non_ema_tiny.pth`` (12-channel
core + ``pre_image_condition``), ``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt``, ``vgen_studio.json``.
Tiny random weights produce noise: they exist so tests and the demo run end to end without downloads.
"""
from __future__ import annotations

from pathlib import Path

UNET_FILE = "tft2v_t2v_non_ema_tiny.pth"


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Write a complete tiny weights folder into ``dir`` (created) and return it."""
    from sdk.ml.concat_unet import write_tiny_vgen_folder

    if format != "vgen":
        raise ValueError(f"Unknown weights format {format!r}; TF-T2V weights come as 'vgen' .pth files")
    return write_tiny_vgen_folder(Path(dir), UNET_FILE, seed=seed, num_image_tokens=4)
