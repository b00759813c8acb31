"""Tiny twins of the metrics' weights, each in the real file format (random values; the real classes at tiny widths):

- ``HPS_v2.pt``: written by :func:`sdk.ml.hps.make_tiny_hps` (shared with InstructVideo's reward trainer);
- ``open_clip_pytorch_model.bin``: an OpenCLIP state dict in the OpenAI ViT-B/32 recipe (QuickGELU, heads of 64,
  patch 32) as the hub repo ``timm/vit_base_patch32_clip_224.openai`` ships it, with its ``open_clip_config.json``;
- ``dino_deitsmall16_pretrain.pth``: a plain DINO ViT-S/16 state dict (DINO's key names) at a tiny width.
"""
from __future__ import annotations

import json
from pathlib import Path

from sdk.ml.hps import TINY_NOTE as NOTE, tiny_openclip_model


def make_tiny_clip(dir: Path, format: str = "open_clip", seed: int = 0) -> Path:
    """Write ``open_clip_pytorch_model.bin`` + ``open_clip_config.json`` (OpenAI ViT-B/32 recipe, tiny)."""
    import torch

    from sdk.ml.tiny import openclip_state_dict

    if format != "open_clip":
        raise ValueError(f"Unknown weights format {format!r}; CLIP ViT-B/32 comes as open_clip_pytorch_model.bin")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    model = tiny_openclip_model(seed + 12, embed=32, vision_width=64, vision_head=64, patch=32, text_width=64, quick_gelu=True)
    torch.save(openclip_state_dict(model), out / "open_clip_pytorch_model.bin")
    cfg = {"model_cfg": {"embed_dim": 32, "quick_gelu": True,
                         "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "patch_size": 32},
                         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1,
                                      "layers": 1}},
           "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                              "std": [0.26862954, 0.26130258, 0.27577711]},
           "vgen_studio": {"tiny": True, "seed": seed, "note": NOTE}}
    (out / "open_clip_config.json").write_text(json.dumps(cfg, indent=2))
    return out


def make_tiny_dino(dir: Path, format: str = "pth", seed: int = 0) -> Path:
    """Write ``dino_deitsmall16_pretrain.pth`` (DINO ViT-S/16 key names, width 128, 2 blocks)."""
    import torch

    from sdk.ml.tiny import randomize_

    from plugins.vgen_metrics.dino import DinoViT

    if format != "pth":
        raise ValueError(f"Unknown weights format {format!r}; DINO comes as dino_deitsmall16_pretrain.pth")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    model = randomize_(DinoViT(width=128, depth=2, heads=2), seed + 13)
    torch.save({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
               out / "dino_deitsmall16_pretrain.pth")
    (out / "vgen_studio.json").write_text(json.dumps({"preset": "vgen_metrics.dino_vits16", "tiny": True,
                                                      "seed": seed, "note": NOTE}, indent=2))
    return out
