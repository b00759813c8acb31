"""Tiny twins of the ModelScope T2V weights, in both on-disk formats the loader reads.

``make_tiny_weights(dir, "diffusers")`` writes the layout of ``text-to-video-ms-1.7b``; ``"vgen"`` writes the VGen
files (``model_scope_v1-5_tiny.pth``, ``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt``,
``vgen_studio.json``). The same seed gives the same weights in both formats (one random init, two layouts).
Tiny weights produce noise: they exist so tests and the demo run end to end without downloads.

``size="real"`` writes random weights at the real dimensions (UNet 1.41 B, OpenCLIP-H, SD VAE) in the real layout,
tensor by tensor (:func:`write_streamed`): the UNet as safetensors shards + index, or VGen's single ``.pth`` beside
the full ``open_clip_pytorch_model.bin`` and the LDM VAE ``.ckpt``. For benchmarks and GPU checks, never for CI.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_INDEX = {
    "_class_name": "TextToVideoSDPipeline",
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet3DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
VGEN_UNET_FILE = "model_scope_v1-5_tiny.pth"
VGEN_UNET_FILE_REAL = "model_scope_v1-5_realsize.pth"
VGEN_UNET_FILE_STREAMED = "model_scope_v1-5_streamed.pth"  # write_streamed at other dimensions (tests)
SIZES = ("tiny", "real")


def make_tiny_weights(dir: Path, format: str = "diffusers", seed: int = 0, preset: str = "modelscope",
                      size: str = "tiny") -> Path:
    """Write a complete weights folder of random values into ``dir`` (created) and return it.

    ``size``: "tiny" (test widths, built in memory) or "real" (the released dimensions, streamed to disk)."""
    import torch

    if size not in SIZES:
        raise ValueError(f"Unknown twin size {size!r}; use 'tiny' or 'real'")
    if size == "real":
        return write_streamed(dir, format, seed=seed, preset=preset)

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


def write_streamed(dir: Path, format: str = "diffusers", *, seed: int = 0, preset: str = "modelscope",
                   dims: dict[str, Any] | None = None, max_shard_bytes: int | None = None) -> Path:
    """Write a twin tensor by tensor (never a whole model in memory): real dimensions unless ``dims`` gives
    ``unet``/``vae``/``openclip`` configs (tests use the tiny ones); the UNet is sharded above ``max_shard_bytes``
    (default 2 GiB). One seed gives the same weights in both formats."""
    from diffusers import UNet3DConditionModel

    from sdk.ml.schedulers import make_scheduler
    from sdk.ml.text import write_clip_tokenizer_files
    from sdk.ml.tiny import OPENCLIP_REAL, VAE_REAL, clip_text_twin, vae_twin, write_vgen_streamed
    from sdk.ml.twins import DEFAULT_SHARD_BYTES, meta_model, write_component

    if format not in ("diffusers", "vgen"):
        raise ValueError(f"Unknown weights format {format!r}; use 'diffusers' or 'vgen'")
    dims = dict(dims or {})
    unet_cfg, vae_cfg, clip_cfg = dims.get("unet", {}), dims.get("vae", VAE_REAL), dims.get("openclip", OPENCLIP_REAL)
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    unet = meta_model(lambda: UNet3DConditionModel(**unet_cfg))
    unet_plan = vgen_unet_plan if format == "vgen" else diffusers_unet_plan
    note = {"twin": "real" if not dims else "streamed", "seed": seed, "preset": preset,
            "note": "Random weights at these dimensions: they produce noise (benchmarks, GPU checks)."}
    if format == "diffusers":
        (out / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
        (out / "vgen_studio.json").write_text(json.dumps(note, indent=2))
        write_component(out / "unet", "diffusion_pytorch_model", unet_plan(unet, seed + 1),
                        config=json.loads(unet.to_json_string()), max_shard_bytes=max_shard_bytes or DEFAULT_SHARD_BYTES)
        vae, plan = vae_twin(vae_cfg, seed + 2, ldm=False)
        write_component(out / "vae", "diffusion_pytorch_model", plan, config=json.loads(vae.to_json_string()),
                        max_shard_bytes=None)
        text_cfg, plan = clip_text_twin(clip_cfg, seed + 3, penultimate=True)
        write_component(out / "text_encoder", "model", plan, config=_hf_config(text_cfg, "CLIPTextModel"),
                        max_shard_bytes=None)
        write_clip_tokenizer_files(out / "tokenizer")
        make_scheduler(preset).save_pretrained(out / "scheduler")
        return out

    unet_file = VGEN_UNET_FILE_REAL if not dims else VGEN_UNET_FILE_STREAMED
    return write_vgen_streamed(out, unet_file, unet_plan(unet, seed + 1), clip_cfg, vae_cfg, seed, note)


def diffusers_unet_plan(unet: Any, seed: int) -> dict[str, Any]:
    """The plan of ``unet/`` (diffusers keys) for a meta-built ``UNet3DConditionModel``."""
    from sdk.ml.twins import model_plan

    return model_plan(unet, seed)


def vgen_unet_plan(unet: Any, seed: int) -> dict[str, Any]:
    """The plan of VGen's UNet ``.pth`` (VGen keys, Conv1d temporal projections), values equal to
    :func:`diffusers_unet_plan`'s for the same seed."""
    from sdk.ml.convert import KeyMap
    from sdk.ml.twins import converted_plan

    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    return converted_plan(shapes, seed, KeyMap.for_model(unet).diffusers_to_vgen)


def _hf_config(cfg: Any, architecture: str) -> dict[str, Any]:
    d = cfg.to_dict()
    d.pop("transformers_version", None)
    d["architectures"] = [architecture]
    return d
