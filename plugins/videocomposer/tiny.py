"""Tiny twins of the VideoComposer weights in the VGen layout the loader reads: the composition UNet ``.pth``
(VGen names, fused ``to_qkv``, ``{'state_dict', 'step'}``), ``open_clip_pytorch_model.bin`` (text and image towers),
``v2-1_512-ema-pruned.ckpt`` and ``vgen_studio.json``. Tiny random weights produce noise: they exist so tests and the
demo run end to end without downloads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T2V_FILE = "tft2v_vcomposer_non_ema_tiny.pth"
LCM_FILE = "videolcm_vcomposer_non_ema_tiny.pth"


def write_tiny_folder(dir: Path, unet_file: str, *, seed: int = 0) -> Path:
    """A complete tiny VGen folder whose UNet file is ``unet_file``; returns the folder (created)."""
    import torch

    from sdk.ml.tiny import openclip_state_dict, tiny_openclip, tiny_vae, write_vgen_encoders
    from sdk.ml.weights_layout import STUDIO_FILE

    from plugins.videocomposer.unet import tiny_composition_unet, vgen_state_dict

    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": vgen_state_dict(tiny_composition_unet(seed)), "step": 0}, out / unet_file)
    write_vgen_encoders(out, openclip_state_dict(tiny_openclip(seed)), tiny_vae(seed))
    note = {"tiny": True, "seed": seed, "preset": "tft2v", "unet": unet_file,
            "note": "Tiny random weights: they produce noise."}
    (out / STUDIO_FILE).write_text(json.dumps(note, indent=2))
    return out


def _vgen_only(format: str) -> None:
    if format != "vgen":
        raise ValueError(f"Unknown weights format {format!r}; VideoComposer weights come as 'vgen' .pth files")


def make_tiny_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Tiny twin of the TF-T2V vcomposer weights (``tft2v_vcomposer_*.pth``) in ``dir``."""
    _vgen_only(format)
    return write_tiny_folder(Path(dir), T2V_FILE, seed=seed)


def make_tiny_lcm_weights(dir: Path, format: str = "vgen", seed: int = 0) -> Path:
    """Tiny twin of the VideoLCM vcomposer weights (``videolcm_vcomposer_*.pth``) in ``dir``."""
    _vgen_only(format)
    return write_tiny_folder(Path(dir), LCM_FILE, seed=seed)


def tiny_condition_frames(num_frames: int, height: int, width: int, *, seed: int = 0) -> dict[str, Any]:
    """Frames (uint8 ``[F, H, W, 3]``) of one condition video per kind, in the encoding the generators read
    (:mod:`plugins.videocomposer.conditions`), plus ``video`` (the RGB reference under the mask): smooth seeded
    patterns, so each condition steers a tiny UNet differently."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]

    def grey(a: Any) -> Any:
        a = np.clip(a, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=-1)

    phase = rng.uniform(0, 6.28, 3)
    rgb = np.stack([127 + 120 * np.sin(xx / width * 6.28 * (k + 1) + t * 0.4 + phase[k]) for k in range(3)], -1)
    out = {
        "depth": grey(255 * (yy / height) + 0 * t),                                     # near at the bottom
        "sketch": grey(255.0 * (np.abs((xx + 3 * t) % 12 - 6) < 1)),                     # moving vertical lines
        "single_sketch": grey(255.0 * (np.abs(yy % 10 - 5) < 1) + 0 * t),
        "local_image": np.clip(rgb, 0, 255).astype(np.uint8),
        "motion": np.stack([np.full_like(yy, 140) + 0 * t, np.full_like(yy, 120) + 0 * t,
                            np.zeros_like(yy) + 0 * t], -1).astype(np.uint8),          # dx +6 px, dy −4 px
        "canny": grey(255.0 * (np.abs(xx - width / 2) < 1) + 0 * t),
        "mask": grey(255.0 * (xx >= width / 2) + 0 * t),                                  # right half hidden
        "video": np.clip(rgb[:, :, ::-1], 0, 255).astype(np.uint8),
    }
    return out


def write_tiny_conditions(dir: Path, num_frames: int, height: int, width: int, *, seed: int = 0,
                          fps: int = 8) -> dict[str, Any]:
    """Write :func:`tiny_condition_frames` as extract outputs (``frames/`` PNGs + ``video.mp4``, as condition assets
    are) under ``dir`` and return the job inputs as the worker hands them: a ``ConditionInput`` per kind and a
    ``VideoInput`` for ``video``."""
    from sdk.inputs import ConditionInput, VideoInput
    from sdk.outputs import write_output
    from sdk.video import Video

    inputs: dict[str, Any] = {}
    for kind, frames in tiny_condition_frames(num_frames, height, width, seed=seed).items():
        paths = write_output(Path(dir) / kind, Video(frames, fps=fps), {"kind": kind, "tiny": True})
        if kind == "video":
            inputs[kind] = VideoInput(path=paths["video"], num_frames=num_frames, width=width, height=height, fps=fps)
        else:
            inputs[kind] = ConditionInput(kind=kind, path=paths["video"], num_frames=num_frames, width=width,
                                          height=height, fps=fps, frames_dir=paths["frames"])
    return inputs
