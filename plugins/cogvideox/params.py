"""Parameters of the CogVideoX generators (torch-free: the GUI builds forms from the schema) and their per-model
defaults, resolved at queue time from the weights (:meth:`CogVideoXParams.for_weights`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, field_validator

from sdk.errors import InvalidRequest
from sdk.ml.cogvideox_models import MODELS, frames_problem
from sdk.params import GenerateParams

#: per weights id: (height, width, fps, dynamic_cfg), as the model cards and diffusers' docs give them
DEFAULTS: dict[str, tuple[int, int, int, bool]] = {
    wid: (m.height, m.width, m.fps, m.dynamic_cfg) for wid, m in MODELS.items()}


class ModelDefaults(NamedTuple):
    height: int
    width: int
    fps: int
    dynamic_cfg: bool
    #: learned position embeddings (5B-I2V): the transformer takes its trained size only
    fixed_size: bool = False


def model_defaults(weights: str | Path | None) -> ModelDefaults:
    """The model's size, fps and dynamic CFG for a weights id or folder: a folder's ``transformer/config.json`` gives
    the trained size (sample_height/width × the VAE's factor) and the family (5B: rotary positions → dynamic CFG;
    1.5: a temporal patch → 16 fps; 5B-I2V: learned positions → that size only); a known id without a readable
    folder gives the model card's values; else CogVideoX-2B's."""
    wid = str(weights or "")
    base = ModelDefaults(*DEFAULTS.get(wid, DEFAULTS["cogvideox-2b"]), fixed_size=wid == "cogvideox-5b-i2v")
    folder = None
    if weights and wid not in DEFAULTS:
        folder = Path(wid)
    elif weights:
        from sdk import weights as w

        entry = w.installed(wid)
        folder = Path(entry["path"]) if entry and entry.get("path") else None
    try:
        cfg = json.loads((folder / "transformer" / "config.json").read_text()) if folder else None
    except (OSError, ValueError):
        cfg = None
    if not isinstance(cfg, dict):
        return base
    spatial = 8
    try:
        vae = json.loads((folder / "vae" / "config.json").read_text())
        spatial = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
    except (OSError, ValueError, TypeError):
        pass
    return ModelDefaults(int(cfg.get("sample_height", 60)) * spatial, int(cfg.get("sample_width", 90)) * spatial,
                         16 if cfg.get("patch_size_t") is not None else 8,
                         bool(cfg.get("use_rotary_positional_embeddings")),
                         bool(cfg.get("use_learned_positional_embeddings")))


class CogVideoXParams(GenerateParams):
    """diffusers' ``CogVideoXPipeline`` names and defaults: 49 frames, 50 steps, guidance 6; the size, the fps and
    dynamic CFG follow the model (0 / unset: the model's own, filled in when the job is queued)."""

    #: T5-XXL reads 226 tokens: the queue's CLIP 77-token warning does not apply
    TEXT_ENCODER: ClassVar[str] = "t5"
    #: CogVideoX guidance runs both branches in one batch
    CFG_BATCHED: ClassVar[bool] = True
    #: the preflight's activation factor (sdk.ml.preflight: bytes per batch × frame × (h/8)(w/8) × 320 × byte).
    #: Derived, not measured: a CogVideoX block at 49×480×720 with guidance holds about 1.5 GB in bf16 (2 × 17,776
    #: tokens × 1920 wide: the residual, QKV, the 4× feed-forward; SDPA keeps attention linear); 6 says 2 GB.
    #: scripts/gpu_check.py prints the real peak beside it.
    DENOISER_BYTES_PER_UNIT: ClassVar[float] = 6.0
    #: CogVideoX's VAE decodes two latent frames (8 frames) at a time with its causal conv cache, whatever the mode
    decode_chunk_size: ClassVar[int] = 8

    negative_prompt: str = Field("", description="What the video should not show (guidance pushes away from it).")
    # no upper bound here: the validator names the ExVideo adapter past 49
    num_frames: int = Field(49, ge=1, description="Frames: 8k+1 (9, 17, …, 49; the ExVideo adapter goes to 129).")
    height: int = Field(0, ge=0, le=2048, multiple_of=16, description="Frame height (0: the model's, 480; 768 on 1.5).")
    width: int = Field(0, ge=0, le=2048, multiple_of=16, description="Frame width (0: the model's, 720; 1360 on 1.5).")
    num_inference_steps: int = Field(50, ge=1, le=500, description="Denoising steps (CogVideoX DDIM, trailing).")
    guidance_scale: float = Field(6.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1: off).")
    # "auto" rather than None: a form edits an optional bool as a checkbox, which cannot say "the model's"
    use_dynamic_cfg: Literal["auto", True, False] = Field(
        "auto", description="Raise guidance along a cosine over the steps (auto: on for the 5B family, off for 2B, "
                            "as their model cards).")
    fps: int = Field(0, ge=0, le=60, description="Frames per second of the written video (0: the model's, 8; 16 "
                                                 "for CogVideoX 1.5).")

    @field_validator("num_frames")
    @classmethod
    def _frames(cls, value: int) -> int:
        problem = frames_problem(value)
        if problem:
            raise ValueError(" ".join(problem).rstrip("."))
        return value

    def queue_warnings(self) -> list[str]:
        """None of VGen's DDIM warnings apply: CogVideoX spaces its timesteps itself (trailing)."""
        return []

    @classmethod
    def for_weights(cls, params: dict[str, Any], weights: str | None) -> dict[str, Any]:
        """Queue time, once the weights are known: fill in the model's size, fps and dynamic CFG where unset."""
        m = model_defaults(weights)
        out = dict(params)
        out["height"], out["width"] = out.get("height") or m.height, out.get("width") or m.width
        out["fps"] = out.get("fps") or m.fps
        if out.get("use_dynamic_cfg") in (None, "auto"):
            out["use_dynamic_cfg"] = m.dynamic_cfg
        if m.fixed_size and (out["height"], out["width"]) != (m.height, m.width):
            raise InvalidRequest(
                f"height×width {out['height']}×{out['width']} does not fit these weights: their transformer has "
                f"learned position embeddings for {m.height}×{m.width} only (CogVideoX-5B-I2V).",
                hint=f"Use height {m.height} and width {m.width} (or leave them at 0).", field="height")
        return out


class CogVideoXV2VParams(CogVideoXParams):
    """Video-to-video: the source is resized to the frame size, noised to ``strength`` and denoised again."""

    strength: float = Field(0.8, gt=0.0, le=1.0, description="How much of the source is replaced (1: all of it; "
                                                             "steps run = num_inference_steps × strength).")
