"""Tiny-config builders for tests and demos: the real classes at tiny widths (real ×8 VAE, real tokenizer).

Every parameter is re-drawn from a seeded generator (including the ones the libraries zero-initialise, which would
hide whole branches), so the same seed gives the same weights and different seeds differ.
"""
from __future__ import annotations

import re
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


# -- real size: configs and streamed plans (sdk.ml.twins writes them without holding a model) ---------------------
#: OpenCLIP ViT-H-14 (laion2b_s32b_b79k): open_clip_pytorch_model.bin holds both towers (986 M params)
OPENCLIP_REAL: dict[str, Any] = dict(
    embed_dim=1024, vision_cfg=dict(image_size=224, layers=32, width=1280, head_width=80, patch_size=14),
    text_cfg=dict(context_length=CONTEXT, vocab_size=VOCAB, width=1024, heads=16, layers=24))
OPENCLIP_TINY: dict[str, Any] = dict(
    embed_dim=TEXT_WIDTH, vision_cfg=dict(layers=1, width=32, head_width=16, image_size=32, patch_size=8),
    text_cfg=dict(context_length=CONTEXT, vocab_size=VOCAB, width=TEXT_WIDTH, heads=1, layers=TEXT_LAYERS))
#: the SD 2.1 VAE (v2-1_512-ema-pruned.ckpt's first_stage_model; 83.7 M params)
VAE_REAL: dict[str, Any] = dict(
    in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
_OC_RES = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def openclip_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Key → shape of an open_clip ``CLIP(**cfg)`` state dict, built on the meta device (no memory)."""
    import open_clip

    from sdk.ml.twins import meta_model

    return {k: tuple(v.shape) for k, v in meta_model(lambda: open_clip.CLIP(**cfg)).state_dict().items()}


def _oc_resblock(base: str, rest: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
    from sdk.ml.text import _RES_NAMES

    if rest.startswith("attn.in_proj_"):
        kind = rest.rsplit("_", 1)[1]
        return {f"{base}self_attn.{n}_proj.{kind}": p for n, p in zip("qkv", t.chunk(3, dim=0))}
    head, _, tail = rest.rpartition(".")
    return {f"{base}{_RES_NAMES[head]}.{tail}": t}


def openclip_to_text_keys(sd: dict[str, torch.Tensor], *, layers: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """Per-key form of :func:`sdk.ml.text.openclip_to_clip_text` (any subset of keys; others are dropped)."""
    top = {"token_embedding.weight": "embeddings.token_embedding.weight",
           "positional_embedding": "embeddings.position_embedding.weight",
           "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias"}
    out: dict[str, torch.Tensor] = {}
    for k, t in sd.items():
        m = _OC_RES.match(k)
        if k in top:
            out[prefix + top[k]] = t
        elif m and not m.group(1) and int(m.group(2)) < layers:
            out.update(_oc_resblock(f"{prefix}encoder.layers.{m.group(2)}.", m.group(3), t))
    return out


def openclip_to_vision_keys(sd: dict[str, torch.Tensor], prefix: str = "vision_model.") -> dict[str, torch.Tensor]:
    """Per-key form of :func:`sdk.ml.image.openclip_to_clip_vision` (any subset of keys)."""
    top = {"visual.class_embedding": "embeddings.class_embedding",
           "visual.positional_embedding": "embeddings.position_embedding.weight",
           "visual.conv1.weight": "embeddings.patch_embedding.weight",
           "visual.ln_pre.weight": "pre_layrnorm.weight", "visual.ln_pre.bias": "pre_layrnorm.bias",
           "visual.ln_post.weight": "post_layernorm.weight", "visual.ln_post.bias": "post_layernorm.bias"}
    out: dict[str, torch.Tensor] = {}
    for k, t in sd.items():
        m = _OC_RES.match(k)
        if k in top:
            out[prefix + top[k]] = t
        elif k == "visual.proj":
            out["visual_projection.weight"] = t.t().contiguous()
        elif m and m.group(1):
            out.update(_oc_resblock(f"{prefix}encoder.layers.{m.group(2)}.", m.group(3), t))
    return out


def clip_text_twin(cfg: dict[str, Any], seed: int, *, penultimate: bool):
    """(``CLIPTextConfig``, plan keyed by ``CLIPTextModel`` keys) of the open_clip text tower of ``cfg``, values
    seeded by the open_clip keys (so they equal the ``open_clip_pytorch_model.bin`` twin of the same seed).
    ``penultimate``: drop the last layer (ModelScope's 23-layer text encoder) or keep all (I2VGen-XL's)."""
    from transformers import CLIPTextModel

    from sdk.ml.text import openclip_text_config
    from sdk.ml.twins import converted_plan, meta_model

    shapes = openclip_shapes(cfg)
    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    config, _ = openclip_text_config(meta, penultimate=penultimate)
    model = meta_model(lambda: CLIPTextModel(config))
    prefix = "text_model." if any(k.startswith("text_model.") for k in model.state_dict()) else ""
    plan = converted_plan(shapes, seed, lambda sd: openclip_to_text_keys(sd, layers=config.num_hidden_layers,
                                                                         prefix=prefix))
    _same_keys(plan, model, "CLIPTextModel")
    return config, plan


def clip_vision_twin(cfg: dict[str, Any], seed: int, *, head_width: int | None = None):
    """(``CLIPVisionConfig``, plan keyed by ``CLIPVisionModelWithProjection`` keys) of the vision tower of ``cfg``."""
    from transformers import CLIPVisionModelWithProjection

    from sdk.ml.image import openclip_vision_config
    from sdk.ml.twins import converted_plan, meta_model

    shapes = openclip_shapes(cfg)
    config = openclip_vision_config({k: torch.empty(s, device="meta") for k, s in shapes.items()},
                                    head_width=head_width)
    model = meta_model(lambda: CLIPVisionModelWithProjection(config))
    plan = converted_plan(shapes, seed, openclip_to_vision_keys)
    _same_keys(plan, model, "CLIPVisionModelWithProjection")
    return config, plan


def vae_twin(cfg: dict[str, Any], seed: int, *, ldm: bool):
    """(the ``AutoencoderKL`` meta model, plan): diffusers keys, or (``ldm``) the LDM checkpoint's
    ``first_stage_model.*`` keys with the attention projections as 1×1 convs."""
    from diffusers import AutoencoderKL

    from sdk.ml.twins import converted_plan, meta_model, model_plan
    from sdk.ml.vae import LDM_PREFIX, diffusers_to_ldm_vae_key

    model = meta_model(lambda: AutoencoderKL(**cfg))
    if not ldm:
        return model, model_plan(model, seed)
    n_up = len(cfg["up_block_types"])
    attn = re.compile(r"mid_block\.attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$")

    def to_ldm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {LDM_PREFIX + diffusers_to_ldm_vae_key(k, n_up): (v[:, :, None, None] if attn.search(k) else v)
                for k, v in sd.items()}

    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return model, converted_plan(shapes, seed, to_ldm)


def write_vgen_streamed(out: Any, unet_file: str, unet_plan: dict[str, Any], clip_cfg: dict[str, Any],
                        vae_cfg: dict[str, Any], seed: int, note: dict[str, Any]) -> Any:
    """The files every streamed VGen-format twin has: the UNet ``.pth`` (``unet_plan``, seeded ``seed + 1`` by the
    caller), the open_clip checkpoint (seed + 3), the SD VAE's LDM checkpoint (seed + 2) and ``vgen_studio.json``
    (``note`` plus the UNet's file name). Returns ``out``."""
    import json
    from pathlib import Path

    from sdk.ml.twins import plan_from_shapes, write_torch_file
    from sdk.ml.weights_layout import OPEN_CLIP_FILE, VAE_FILE

    out = Path(out)
    write_torch_file(out / unet_file, unet_plan, wrap="state_dict", extra={"step": 0})
    write_torch_file(out / OPEN_CLIP_FILE, plan_from_shapes(openclip_shapes(clip_cfg), seed + 3))
    write_torch_file(out / VAE_FILE, vae_twin(vae_cfg, seed + 2, ldm=True)[1], wrap="state_dict")
    (out / "vgen_studio.json").write_text(json.dumps(dict(note, unet=unet_file), indent=2))
    return out


def _same_keys(plan: dict[str, Any], model: torch.nn.Module, what: str) -> None:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: e.shape for k, e in plan.items()}
    if want != got:
        diff = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        raise AssertionError(f"twin plan does not fit {what}: {diff[:5]}")
