"""Tiny twins of the metrics' weights, each in the real file format (random values; the real classes at tiny widths):

- ``HPS_v2.pt``: ``{"state_dict": OpenCLIP keys}`` of an OpenCLIP ViT in the ViT-H-14 recipe (vision heads of 80,
  text heads of 64, exact GELU) with one block per tower;
- ``open_clip_pytorch_model.bin``: an OpenCLIP state dict in the OpenAI ViT-B/32 recipe (QuickGELU, heads of 64,
  patch 32) as the hub repo ``timm/vit_base_patch32_clip_224.openai`` ships it, with its ``open_clip_config.json``;
- ``dino_deitsmall16_pretrain.pth``: a plain DINO ViT-S/16 state dict (DINO's key names) at a tiny width.
"""
from __future__ import annotations

import json
from pathlib import Path

NOTE = "Random weights of the right layout: scores are meaningless."


def _clip(seed: int, *, embed: int, vision_width: int, vision_head: int, patch: int, text_width: int,
          quick_gelu: bool):
    import open_clip

    from sdk.ml.tiny import randomize_

    model = open_clip.CLIP(
        embed_dim=embed, quick_gelu=quick_gelu,
        vision_cfg=dict(layers=1, width=vision_width, head_width=vision_head, patch_size=patch, image_size=224),
        text_cfg=dict(context_length=77, vocab_size=49408, width=text_width, heads=max(1, text_width // 64),
                      layers=1),
    )
    return randomize_(model, seed).eval()


def make_tiny_hps(dir: Path, format: str = "pth", seed: int = 0) -> Path:
    """Write ``HPS_v2.pt`` (tiny) into ``dir`` and return the folder."""
    import torch

    from sdk.ml.tiny import openclip_state_dict

    if format != "pth":
        raise ValueError(f"Unknown weights format {format!r}; HPSv2 comes as HPS_v2.pt")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    model = _clip(seed + 11, embed=32, vision_width=80, vision_head=80, patch=14, text_width=64, quick_gelu=False)
    torch.save({"state_dict": openclip_state_dict(model)}, out / "HPS_v2.pt")
    (out / "vgen_studio.json").write_text(json.dumps({"preset": "vgen_metrics.hpsv2", "tiny": True, "seed": seed,
                                                      "note": NOTE}, indent=2))
    return out


def make_tiny_clip(dir: Path, format: str = "open_clip", seed: int = 0) -> Path:
    """Write ``open_clip_pytorch_model.bin`` + ``open_clip_config.json`` (OpenAI ViT-B/32 recipe, tiny)."""
    import torch

    from sdk.ml.tiny import openclip_state_dict

    if format != "open_clip":
        raise ValueError(f"Unknown weights format {format!r}; CLIP ViT-B/32 comes as open_clip_pytorch_model.bin")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    model = _clip(seed + 12, embed=32, vision_width=64, vision_head=64, patch=32, text_width=64, quick_gelu=True)
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
