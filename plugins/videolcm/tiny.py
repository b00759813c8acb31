"""Tiny twins of the VideoLCM weights in both formats the loader reads.

``make_tiny_weights(dir, "vgen")`` writes ``videolcm_t2v_non_ema_tiny.pth`` (12-channel core, no image branch),
``open_clip_pytorch_model.bin``, ``v2-1_512-ema-pruned.ckpt`` and ``vgen_studio.json``. ``"student"`` writes a
student checkpoint as ``videolcm.distill`` saves it (``weights.safetensors`` + ``meta.json``) with its tiny TF-T2V
base (teacher) folder in ``base/``. Tiny random weights produce noise.
"""
from __future__ import annotations

import json
from pathlib import Path

UNET_FILE = "videolcm_t2v_non_ema_tiny.pth"
TEACHER_FILE = "tft2v_t2v_non_ema_tiny.pth"


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Write a complete tiny weights folder into ``dir`` (created) and return it."""
    from sdk.ml.concat_unet import tiny_concat_unet, write_tiny_vgen_folder

    out = Path(dir)
    if format == "vgen":
        return write_tiny_vgen_folder(out, UNET_FILE, seed=seed, num_image_tokens=0)
    if format != "student":
        raise ValueError(f"Unknown weights format {format!r}; use 'vgen' or 'student'")
    from safetensors.torch import save_file

    write_tiny_vgen_folder(out / "base", TEACHER_FILE, seed=seed, num_image_tokens=4)
    student = tiny_concat_unet(seed + 100, num_image_tokens=0)
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(out / "weights.safetensors"))
    meta = {"kind": "videolcm.student", "name": "videolcm-student", "step": 0, "base_weights": "base",
            "unet_config": student.unet_config(), "tiny": True, "note": "Tiny random weights: they produce noise."}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out
