"""Tiny twins of the ModelScope T2V weights, in both on-disk formats the loader reads.

``make_tiny_weights(dir, "diffusers")`` writes the layout of ``text-to-video-ms-1.7b``; ``"vgen"`` writes the VGen
files (``model_scope_v1-5_tiny.pth``, ``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt``,
``vgen_studio.json``). The same seed gives the same weights in both formats (one random init, two layouts).
Tiny weights produce noise: they exist so tests and the demo run end to end without downloads.
"""
from __future__ import annotations

import json
from pathlib import Path

MODEL_INDEX = {
    "_class_name": "TextToVideoSDPipeline",
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet3DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
VGEN_UNET_FILE = "model_scope_v1-5_tiny.pth"


def make_tiny_weights(dir: Path, format: str = "diffusers", seed: int = 0, preset: str = "modelscope") -> Path:
    """Write a complete tiny weights folder into ``dir`` (created) and return it."""
    import torch

    from sdk.ml.convert import KeyMap
    from sdk.ml.schedulers import make_scheduler
    from sdk.ml.text import clip_text_from_openclip_state, write_clip_tokenizer_files
    from sdk.ml.tiny import (openclip_state_dict, tiny_openclip, tiny_unet3d, tiny_vae, write_text_encoder_folder,
                             write_vgen_encoders)

    if format not in ("diffusers", "vgen"):
        raise ValueError(f"Unknown weights format {format!r}; use 'diffusers' or 'vgen'")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet, vae, clip = tiny_unet3d(seed), tiny_vae(seed), openclip_state_dict(tiny_openclip(seed))
    note = {"tiny": True, "seed": seed, "preset": preset, "note": "Tiny random weights: they produce noise."}

    if format == "diffusers":
        (out / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
        (out / "vgen_studio.json").write_text(json.dumps(note, indent=2))
        unet.save_pretrained(out / "unet")
        vae.save_pretrained(out / "vae")
        text = clip_text_from_openclip_state(clip)
        write_text_encoder_folder(text, out / "text_encoder")
        write_clip_tokenizer_files(out / "tokenizer")
        make_scheduler(preset).save_pretrained(out / "scheduler")
        return out

    km = KeyMap.for_model(unet)
    torch.save({"state_dict": km.diffusers_to_vgen(unet.state_dict()), "step": 0}, out / VGEN_UNET_FILE)
    write_vgen_encoders(out, clip, vae)
    (out / "vgen_studio.json").write_text(json.dumps(dict(note, unet=VGEN_UNET_FILE), indent=2))
    return out
