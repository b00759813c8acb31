"""Tiny twin of the DreamVideo base weights (ModelScope T2V v1.5 as VGen loads it) and of the released files.

``make_tiny_weights(dir)`` writes ``model_scope_v1-5_tiny.pth``, ``open_clip_pytorch_model.bin`` (text and vision
towers: the appearance image is encoded by the same file) and ``v2-1_512-ema-pruned.ckpt``. The same seed gives the
same weights as the ModelScope T2V plugin's tiny VGen twin. Tiny random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path

UNET_FILE = "model_scope_v1-5_tiny.pth"


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    import torch

    from sdk.ml.convert import KeyMap
    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_unet3d, tiny_vae
    from sdk.ml.vae import LDM_PREFIX, diffusers_to_ldm_vae

    if format != "vgen":
        raise ValueError(f"DreamVideo reads the VGen format only, not {format!r}")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet = tiny_unet3d(seed)
    torch.save({"state_dict": KeyMap.for_model(unet).diffusers_to_vgen(unet.state_dict()), "step": 0}, out / UNET_FILE)
    torch.save(openclip_state_dict(tiny_openclip(seed)), out / "open_clip_pytorch_model.bin")
    torch.save({"state_dict": {LDM_PREFIX + k: v for k, v in diffusers_to_ldm_vae(tiny_vae(seed)).items()}},
               out / "v2-1_512-ema-pruned.ckpt")
    (out / "vgen_studio.json").write_text(json.dumps(
        {"tiny": True, "seed": seed, "preset": "modelscope", "unet": UNET_FILE,
         "note": "Tiny random weights: they produce noise."}, indent=2))
    return out
