"""DINO ViT-S/16 (``dino_deitsmall16_pretrain.pth``) as VGen's DreamVideo metric script uses it: the CLS token after
the final LayerNorm. timm's ``VisionTransformer`` has DINO's key names (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``), LayerNorm eps 1e-6,
GELU and qkv biases, so the checkpoint loads strictly into it with no head (``num_classes=0``). Heads are 64 wide
(ViT-S: 384 = 6 × 64); the twin keeps that rule."""
from __future__ import annotations

from pathlib import Path

import torch

from sdk.errors import IncompatibleCheckpoint

from sdk.ml.clip_models import find_file, load_state

#: DINO's release name, then the hub copy timm/vit_small_patch16_224.dino (the same key names, safetensors)
DINO_FILE = ("dino_deitsmall16_pretrain.pth", "model.safetensors")
HEAD_WIDTH = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def DinoViT(width: int = 384, depth: int = 12, heads: int = 6, patch: int = 16, image_size: int = 224
            ) -> torch.nn.Module:
    """DINO's ``vit_small`` at any size: a timm ``VisionTransformer`` that returns the normalised CLS token."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=image_size, patch_size=patch, embed_dim=width, depth=depth, num_heads=heads,
                             mlp_ratio=4.0, qkv_bias=True, num_classes=0, global_pool="token", class_token=True)


def load_dino(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> torch.nn.Module:
    """DINO from ``dino_deitsmall16_pretrain.pth`` (a file, or a folder holding it), frozen, in eval mode."""
    file = find_file(path, DINO_FILE, "DINO")
    sd = load_state(file, "DINO")
    sd = {k: v for k, v in sd.items() if not k.startswith("head.")}  # DINO's pretrain file has no head; be lenient
    if "patch_embed.proj.weight" not in sd or "pos_embed" not in sd:
        raise IncompatibleCheckpoint(f"DINO: {file} is not a DINO ViT state dict (no patch_embed.proj.weight).",
                                     hint="Give dino_deitsmall16_pretrain.pth.")
    width, _, patch, _ = sd["patch_embed.proj.weight"].shape
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    grid = round((sd["pos_embed"].shape[1] - 1) ** 0.5)
    model = DinoViT(int(width), depth, max(1, int(width) // HEAD_WIDTH), int(patch), int(grid * patch))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise IncompatibleCheckpoint(f"DINO: {file} does not fit ViT width {width}, depth {depth} ({str(exc)[:200]}).",
                                     hint="Give dino_deitsmall16_pretrain.pth.") from None
    return model.eval().requires_grad_(False).to(device=device, dtype=dtype)
