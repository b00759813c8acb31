"""Tiny twins of the I2VGen-XL weights, in both on-disk formats the loader reads.

``make_tiny_weights(dir, "diffusers")`` writes the layout of ``ali-vilab/i2vgen-xl`` (model_index.json, unet/, vae/,
text_encoder/ with every layer, tokenizer/, image_encoder/, feature_extractor/, scheduler/); ``"vgen"`` writes VGen's
files (``i2vgen_xl_tiny.pth``, ``open_clip_pytorch_model.bin`` with text and vision towers,
``v2-1_512-ema-pruned.ckpt``, ``vgen_studio.json``). One random init, two layouts: the VGen UNet file holds
``conv_in``'s concat slice halved, as VGen's own checkpoints do (VGen adds the image branch twice), so the loader's
doubling gives back exactly the diffusers weights. Tiny weights produce noise: they exist so tests and the demo run
end to end without downloads.
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


def make_tiny_weights(dir: Path, format: str = "diffusers", seed: int = 0) -> Path:
    """Write a complete tiny weights folder into ``dir`` (created) and return it."""
    import torch

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
