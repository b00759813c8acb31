"""Tiny-config builders for tests and demos: the real classes at tiny widths (real ×8 VAE, real tokenizer).

Every parameter is re-drawn from a seeded generator (including the ones the libraries zero-initialise, which would
hide whole branches), so the same seed gives the same weights and different seeds differ.
"""
from __future__ import annotations

from typing import Any

import torch

TEXT_WIDTH = 64
TEXT_LAYERS = 3  # open_clip layers; the CLIPTextModel twin keeps the first 2 (penultimate)
VOCAB = 49408
CONTEXT = 77

UNET_TINY: dict[str, Any] = dict(
    in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
    attention_head_dim=8, cross_attention_dim=TEXT_WIDTH, norm_num_groups=32, norm_eps=1e-5, sample_size=8,
)
VAE_TINY: dict[str, Any] = dict(
    in_channels=3, out_channels=3, block_out_channels=(32, 32, 32, 32), layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    latent_channels=4, norm_num_groups=32, sample_size=64, scaling_factor=0.18215,
)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int, *, gain: float = 1.0) -> torch.nn.Module:
    """Overwrite every parameter: matrices/convs N(0, gain²/fan_in), norm scales 1 + N(0, 0.1²), biases N(0, 0.02²)."""
    g = torch.Generator("cpu").manual_seed(int(seed))
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) * (gain / fan_in ** 0.5))
        elif "norm" in name or "ln_" in name or name.endswith(("ln_final.weight",)):
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g) if name.endswith("weight")
                    else 0.02 * torch.randn(p.shape, generator=g))
        elif p.ndim == 0:
            continue
        else:
            p.copy_(0.02 * torch.randn(p.shape, generator=g))
    return model


def tiny_unet3d(seed: int = 0, **overrides: Any):
    from diffusers import UNet3DConditionModel

    return randomize_(UNet3DConditionModel(**{**UNET_TINY, **overrides}), seed + 1).eval()


def tiny_vae(seed: int = 0, **overrides: Any):
    from diffusers import AutoencoderKL

    return randomize_(AutoencoderKL(**{**VAE_TINY, **overrides}), seed + 2).eval()


def tiny_openclip(seed: int = 0, *, width: int = TEXT_WIDTH, layers: int = TEXT_LAYERS):
    """A tiny open_clip ``CLIP`` in the ViT-H-14 recipe (exact GELU, LN 1e-5, context 77, vocab 49408,
    head width 64) with a tiny vision tower."""
    import open_clip

    model = open_clip.CLIP(
        embed_dim=width,
        vision_cfg=dict(layers=1, width=32, head_width=16, image_size=32, patch_size=8),
        text_cfg=dict(context_length=CONTEXT, vocab_size=VOCAB, width=width, heads=max(1, width // 64), layers=layers),
    )
    return randomize_(model, seed + 3).eval()


def openclip_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict as ``open_clip_pytorch_model.bin`` holds it (contiguous CPU tensors)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def write_text_encoder_folder(text: torch.nn.Module, folder: Any) -> None:
    """A diffusers ``text_encoder/`` folder (config.json + model.safetensors) for a ``CLIPTextModel`` twin."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = text.config.to_dict()
    cfg.pop("transformers_version", None)
    cfg["architectures"] = ["CLIPTextModel"]
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    save_file({k: v.contiguous() for k, v in text.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})


def write_vgen_encoders(out: Any, clip_state: dict[str, torch.Tensor], vae: torch.nn.Module) -> None:
    """VGen's encoder files beside a UNet ``.pth``: ``open_clip_pytorch_model.bin`` and the LDM VAE ``.ckpt``."""
    from pathlib import Path

    from sdk.ml.vae import LDM_PREFIX, diffusers_to_ldm_vae
    from sdk.ml.weights_layout import OPEN_CLIP_FILE, VAE_FILE

    out = Path(out)
    torch.save(clip_state, out / OPEN_CLIP_FILE)
    torch.save({"state_dict": {LDM_PREFIX + k: v for k, v in diffusers_to_ldm_vae(vae).items()}}, out / VAE_FILE)
