"""Tiny twin of the InstructVideo weights in VGen's layout (ModelScope ``iic/InstructVideo``).

``make_tiny_weights(dir)`` writes ``model_scope_v1-4_tiny.pth`` (the base UNet), ``instructvideo-finetuned/
ddim20_tiny_non_ema.pth`` (the whole LoRA UNet as VGen saves it: the base tensors plus ``…_lora.{down,up}_linear``
for every attention, the up-projections non-zero so that merging changes the output), ``open_clip_pytorch_model.bin``,
``v2-1_512-ema-pruned.ckpt``, a tiny ``HPS_v2.pt`` (the reward model, :mod:`sdk.ml.hps`) and
``vgen_studio.json`` naming both UNet files. Tiny random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path

BASE_FILE = "model_scope_v1-4_tiny.pth"
LORA_DIR = "instructvideo-finetuned"
LORA_FILE = f"{LORA_DIR}/ddim20_tiny_non_ema.pth"


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0, hps: bool = True) -> Path:
    import torch

    from sdk.ml.convert import KeyMap
    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_unet3d, tiny_vae, write_vgen_encoders

    from plugins.instructvideo.lora import LoRALayers

    if format != "vgen":
        raise ValueError(f"InstructVideo reads the VGen format only, not {format!r}")
    out = Path(dir)
    (out / LORA_DIR).mkdir(parents=True, exist_ok=True)
    unet = tiny_unet3d(seed)
    torch.save({"state_dict": KeyMap.for_model(unet).diffusers_to_vgen(unet.state_dict()), "step": 0}, out / BASE_FILE)
    lora = LoRALayers(unet, generator=torch.Generator().manual_seed(seed + 7))
    with torch.no_grad():  # a "trained" LoRA: zero up-projections would merge to nothing
        g = torch.Generator().manual_seed(seed + 8)
        for m in lora.modules():
            m.up_linear.weight.copy_(0.05 * torch.randn(m.up_linear.weight.shape, generator=g))
    full = KeyMap.for_model(unet).diffusers_to_vgen(unet.state_dict())
    lora.detach()
    torch.save({"state_dict": full, "step": 620000}, out / LORA_FILE)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    if hps:  # the reward model beside the base, where instructvideo.reward looks first
        from sdk.ml.hps import make_tiny_hps

        make_tiny_hps(out, seed=seed)
    (out / "vgen_studio.json").write_text(json.dumps(
        {"tiny": True, "seed": seed, "preset": "modelscope", "unet": BASE_FILE, "lora": LORA_FILE,
         "note": "Tiny random weights: they produce noise."}, indent=2))
    return out


def write_tiny_adapter(folder: Path, seed: int = 5) -> Path:
    """A tiny project LoRA adapter as ``instructvideo.reward`` saves one (``weights.safetensors`` with the LoRA tensors
    under VGen's names, up-projections non-zero), for the tiny twin of the same seed 0."""
    import torch
    from safetensors.torch import save_file

    from sdk.ml.convert import KeyMap
    from sdk.ml.tiny import tiny_unet3d

    from plugins.instructvideo.lora import LoRALayers

    unet = tiny_unet3d(0)
    layers = LoRALayers(unet, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in layers.modules():
            m.up_linear.weight.copy_(0.05 * torch.randn(m.up_linear.weight.shape, generator=g))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(KeyMap.for_model(unet).diffusers_to_vgen(layers.state_dict()), str(folder / "weights.safetensors"))
    return folder


def write_tiny_clip(path: Path, frames: int = 6, size: int = 32, seed: int = 0) -> Path:
    """A short random-noise mp4 (tests' training clips)."""
    import imageio.v2 as imageio
    import numpy as np

    rng = np.random.default_rng(seed)
    imageio.mimwrite(str(path), [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(frames)], fps=8)
    return Path(path)
