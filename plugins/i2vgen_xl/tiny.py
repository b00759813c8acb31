"""Tiny twins of the I2VGen-XL weights, in both on-disk formats the loader reads.

``make_tiny_weights(dir, "diffusers")`` writes the layout of ``ali-vilab/i2vgen-xl`` (model_index.json, unet/, vae/,
text_encoder/ with every layer, tokenizer/, image_encoder/, feature_extractor/, scheduler/); ``"vgen"`` writes VGen's
files (``i2vgen_xl_tiny.pth``, ``open_clip_pytorch_model.bin`` with text and vision towers,
``v2-1_512-ema-pruned.ckpt``, ``vgen_studio.json``). One random init, two layouts: the VGen UNet file holds
``conv_in``'s concat slice halved, as VGen's own checkpoints do (VGen adds the image branch twice), so the loader's
doubling gives back exactly the diffusers weights. Tiny weights produce noise: they exist so tests and the demo run
end to end without downloads.

``size="real"`` writes random weights at the real dimensions (I2VGenXLUNet 1.42 B, OpenCLIP ViT-H-14 text and
vision towers, SD VAE) in the real layout, tensor by tensor (:func:`write_streamed`). For benchmarks and GPU checks,
never for CI.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_INDEX = {
    "_class_name": "I2VGenXLPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "I2VGenXLUNet"],
    "vae": ["diffusers", "AutoencoderKL"],
}
VGEN_UNET_FILE = "i2vgen_xl_tiny.pth"
VGEN_UNET_FILE_REAL = "i2vgen_xl_realsize.pth"
VGEN_UNET_FILE_STREAMED = "i2vgen_xl_streamed.pth"  # write_streamed at other dimensions (tests)
SIZES = ("tiny", "real")
WIDTH = 64  # text width = CLIP embedding = UNet cross-attention dim (I2VGenXLUNet needs all three equal)
UNET_TINY: dict[str, Any] = dict(
    in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
    attention_head_dim=8, cross_attention_dim=WIDTH, norm_num_groups=32,
)
#: vision head width 64 = what the loader assumes for a non-ViT-H width (the head count is not in the weights)
VISION_TINY: dict[str, Any] = dict(layers=2, width=128, head_width=64, image_size=32, patch_size=8)


def tiny_i2v_unet(seed: int = 0):
    from diffusers import I2VGenXLUNet

    from sdk.ml.tiny import randomize_

    return randomize_(I2VGenXLUNet(**UNET_TINY), seed + 1).eval()


def tiny_i2v_openclip(seed: int = 0):
    """A tiny open_clip ``CLIP`` in the ViT-H-14 recipe (exact GELU, LN 1e-5, context 77, vocab 49408), both towers."""
    import open_clip

    from sdk.ml.tiny import CONTEXT, VOCAB, randomize_

    model = open_clip.CLIP(embed_dim=WIDTH, vision_cfg=dict(VISION_TINY),
                           text_cfg=dict(context_length=CONTEXT, vocab_size=VOCAB, width=WIDTH, heads=1, layers=3))
    return randomize_(model, seed + 3).eval()


def full_clip_text(sd: dict[str, Any]):
    """All layers of the open_clip text tower as a ``CLIPTextModel`` (the diffusers folder keeps every layer;
    the pipeline reads the penultimate one)."""
    from transformers import CLIPTextModel

    from sdk.ml.checkpoints import load_into
    from sdk.ml.text import openclip_text_config, openclip_to_clip_text

    cfg, _ = openclip_text_config(sd, penultimate=False)
    model = CLIPTextModel(cfg)
    prefix = "text_model." if any(k.startswith("text_model.") for k in model.state_dict()) else ""
    mapped = openclip_to_clip_text(sd, cfg.num_hidden_layers, prefix)
    for name, buf in model.named_buffers():
        if name in model.state_dict() and name not in mapped:
            mapped[name] = buf
    return load_into(model, mapped, source="tiny open_clip").eval()


def make_tiny_weights(dir: Path, format: str = "diffusers", seed: int = 0, size: str = "tiny") -> Path:
    """Write a complete weights folder of random values into ``dir`` (created) and return it.

    ``size``: "tiny" (test widths, built in memory) or "real" (the released dimensions, streamed to disk)."""
    import torch

    if size not in SIZES:
        raise ValueError(f"Unknown twin size {size!r}; use 'tiny' or 'real'")
    if size == "real":
        return write_streamed(dir, format, seed=seed)

    from plugins.i2vgen_xl.convert import diffusers_to_vgen, keymap
    from sdk.ml.image import clip_vision_from_openclip_state, write_image_encoder_folder
    from sdk.ml.schedulers import make_scheduler
    from sdk.ml.text import write_clip_tokenizer_files
    from sdk.ml.tiny import openclip_state_dict, tiny_vae, write_text_encoder_folder, write_vgen_encoders

    if format not in ("diffusers", "vgen"):
        raise ValueError(f"Unknown weights format {format!r}; use 'diffusers' or 'vgen'")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet, vae, clip = tiny_i2v_unet(seed), tiny_vae(seed), openclip_state_dict(tiny_i2v_openclip(seed))
    note = {"tiny": True, "seed": seed, "note": "Tiny random weights: they produce noise."}

    if format == "diffusers":
        (out / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
        (out / "vgen_studio.json").write_text(json.dumps(note, indent=2))
        unet.save_pretrained(out / "unet")
        vae.save_pretrained(out / "vae")
        text = full_clip_text(clip)
        write_text_encoder_folder(text, out / "text_encoder")
        write_clip_tokenizer_files(out / "tokenizer")
        write_image_encoder_folder(clip_vision_from_openclip_state(clip), out / "image_encoder",
                                   feature_extractor=out / "feature_extractor")
        make_scheduler("vgen_t2v").save_pretrained(out / "scheduler")
        return out

    torch.save({"state_dict": diffusers_to_vgen(unet.state_dict(), keymap(unet)), "step": 0}, out / VGEN_UNET_FILE)
    write_vgen_encoders(out, clip, vae)
    (out / "vgen_studio.json").write_text(json.dumps(dict(note, unet=VGEN_UNET_FILE), indent=2))
    return out


#: the tiny dimensions, for :func:`write_streamed` in tests
TINY_DIMS: dict[str, Any] = dict(unet=UNET_TINY, openclip=dict(
    embed_dim=WIDTH, vision_cfg=dict(VISION_TINY), text_cfg=dict(context_length=77, vocab_size=49408, width=WIDTH,
                                                                 heads=1, layers=3)))


def unet_vgen_converter(model: Any):
    """diffusers → VGen names for groups of ``I2VGenXLUNet`` keys (the per-key form of
    :func:`plugins.i2vgen_xl.convert.diffusers_to_vgen`): halves ``conv_in``'s concat slice, fuses q|k|v."""
    from plugins.i2vgen_xl.convert import _SPLIT, CONCAT, QKV, keymap

    km = keymap(model)

    def convert(sd: dict[str, Any]) -> dict[str, Any]:
        sd = dict(sd)
        if "conv_in.weight" in sd and not sd["conv_in.weight"].is_meta:
            w = sd["conv_in.weight"].clone()
            w[:, CONCAT] *= 0.5
            sd["conv_in.weight"] = w
        out = km.diffusers_to_vgen(sd)
        if all(n in out for n in _SPLIT):
            import torch

            out[QKV] = torch.cat([out.pop(n) for n in _SPLIT], dim=0)
        return out

    qkv = [k for k in km.to_vgen if km.to_vgen[k] in _SPLIT]
    groups = [qkv] + [[k] for k in km.diffusers_keys if k not in qkv]
    return convert, groups


def write_streamed(dir: Path, format: str = "diffusers", *, seed: int = 0, dims: dict[str, Any] | None = None,
                   max_shard_bytes: int | None = None) -> Path:
    """Write a twin tensor by tensor (never a whole model in memory): real dimensions unless ``dims`` gives
    ``unet``/``vae``/``openclip`` configs (tests use :data:`TINY_DIMS`); the UNet is sharded above
    ``max_shard_bytes`` (default 2 GiB). One seed gives the same weights in both formats."""
    from diffusers import I2VGenXLUNet

    from sdk.ml.image import CLIP_MEAN, CLIP_STD
    from sdk.ml.schedulers import make_scheduler
    from sdk.ml.text import write_clip_tokenizer_files
    from sdk.ml.tiny import (OPENCLIP_REAL, VAE_REAL, VAE_TINY, clip_text_twin, clip_vision_twin, vae_twin,
                             write_vgen_streamed)
    from sdk.ml.twins import DEFAULT_SHARD_BYTES, meta_model, write_component

    if format not in ("diffusers", "vgen"):
        raise ValueError(f"Unknown weights format {format!r}; use 'diffusers' or 'vgen'")
    dims = dict(dims or {})
    unet_cfg, clip_cfg = dims.get("unet", {}), dims.get("openclip", OPENCLIP_REAL)
    vae_cfg = dims.get("vae", VAE_TINY if dims else VAE_REAL)
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet = meta_model(lambda: I2VGenXLUNet(**unet_cfg))
    unet_plan = vgen_unet_plan if format == "vgen" else diffusers_unet_plan
    note = {"twin": "real" if not dims else "streamed", "seed": seed,
            "note": "Random weights at these dimensions: they produce noise (benchmarks, GPU checks)."}
    if format == "diffusers":
        (out / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
        (out / "vgen_studio.json").write_text(json.dumps(note, indent=2))
        write_component(out / "unet", "diffusion_pytorch_model", unet_plan(unet, seed + 1),
                        config=json.loads(unet.to_json_string()), max_shard_bytes=max_shard_bytes or DEFAULT_SHARD_BYTES)
        vae, plan = vae_twin(vae_cfg, seed + 2, ldm=False)
        write_component(out / "vae", "diffusion_pytorch_model", plan, config=json.loads(vae.to_json_string()),
                        max_shard_bytes=None)
        text_cfg, plan = clip_text_twin(clip_cfg, seed + 3, penultimate=False)  # all layers, as the hub folder
        write_component(out / "text_encoder", "model", plan, config=_hf_config(text_cfg, "CLIPTextModel"),
                        max_shard_bytes=None)
        write_clip_tokenizer_files(out / "tokenizer")
        vision_cfg, plan = clip_vision_twin(clip_cfg, seed + 3)
        write_component(out / "image_encoder", "model", plan,
                        config=_hf_config(vision_cfg, "CLIPVisionModelWithProjection"), max_shard_bytes=None)
        size = int(vision_cfg.image_size)
        fe = out / "feature_extractor"
        fe.mkdir(parents=True, exist_ok=True)
        (fe / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "CLIPImageProcessor", "crop_size": {"height": size, "width": size},
            "size": {"shortest_edge": size}, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "do_rescale": True, "do_convert_rgb": True, "rescale_factor": 1 / 255, "resample": 3,
            "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}, indent=2))
        make_scheduler("vgen_t2v").save_pretrained(out / "scheduler")
        return out

    unet_file = VGEN_UNET_FILE_REAL if not dims else VGEN_UNET_FILE_STREAMED
    return write_vgen_streamed(out, unet_file, unet_plan(unet, seed + 1), clip_cfg, vae_cfg, seed, note)


def diffusers_unet_plan(unet: Any, seed: int) -> dict[str, Any]:
    """The plan of ``unet/`` (diffusers keys) for a meta-built ``I2VGenXLUNet``."""
    from sdk.ml.twins import model_plan

    return model_plan(unet, seed)


def vgen_unet_plan(unet: Any, seed: int) -> dict[str, Any]:
    """The plan of VGen's UNet ``.pth`` (VGen keys, fused ``to_qkv``, halved ``conv_in`` concat slice), values equal
    to :func:`diffusers_unet_plan`'s for the same seed."""
    from sdk.ml.twins import converted_plan

    convert, groups = unet_vgen_converter(unet)
    return converted_plan({k: tuple(v.shape) for k, v in unet.state_dict().items()}, seed, convert, groups)


def _hf_config(cfg: Any, architecture: str) -> dict[str, Any]:
    d = cfg.to_dict()
    d.pop("transformers_version", None)
    d["architectures"] = [architecture]
    return d
