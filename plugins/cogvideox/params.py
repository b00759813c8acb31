"""Parameters of the CogVideoX generators (torch-free: the GUI builds forms from the schema) and their per-model
defaults, resolved at queue time from the weights (:meth:`CogVideoXParams.for_weights`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from sdk.errors import InvalidRequest
from sdk.params import GenerateParams

#: mirrors sdk.ml.cogvideox (which imports torch): the ExVideo adapter for more than 49 frames
EXVIDEO_WEIGHTS = "exvideo-cogvideox-lora-129f"
EXVIDEO_GENERATOR = "exvideo.cogvideox"
MAX_FRAMES = 49
#: per weights id: (height, width, fps, dynamic_cfg), as the model cards and diffusers' docs give them
DEFAULTS: dict[str, tuple[int, int, int, bool]] = {
    "cogvideox-2b": (480, 720, 8, False), "cogvideox-5b": (480, 720, 8, True),
    "cogvideox-5b-i2v": (480, 720, 8, True), "cogvideox1.5-5b": (768, 1360, 16, True)}


def frames_problem(frames: int, limit: int = MAX_FRAMES) -> tuple[str, str] | None:
    """(message, hint) when ``frames`` is not a CogVideoX frame count: 4k+1 (the VAE packs 4 frames into one
    latent after the first) and at most ``limit``, naming the ExVideo adapter beyond it; None when it is fine."""
    if frames > limit:
        return (f"num_frames {frames} is more than CogVideoX renders ({limit} frames).",
                f"Use at most {limit} frames, or the ExVideo adapter for up to 129: generator {EXVIDEO_GENERATOR} "
                f"with weights {EXVIDEO_WEIGHTS} (CogVideoX-5B + its LoRA).")
    if frames < 1 or (frames - 1) % 4:
        lo = max(1, (frames - 1) // 4 * 4 + 1)
        return (f"num_frames {frames} is not 4k+1: CogVideoX's VAE packs 4 frames into one latent after the first.",
                f"Use {lo} or {lo + 4}.")
    return None


def model_defaults(weights: str | Path | None) -> tuple[int, int, int, bool]:
    """(height, width, fps, dynamic_cfg) for a weights id or folder: a folder's ``transformer/config.json`` gives
    the trained size (sample_height/width × 8) and the family (5B: rotary positions → dynamic CFG; 1.5: a temporal
    patch → 16 fps); a known id without a readable folder gives the model card's values; else CogVideoX-2B's."""
    base = DEFAULTS.get(str(weights or ""), DEFAULTS["cogvideox-2b"])
    folder = None
    if weights and str(weights) not in DEFAULTS:
        folder = Path(str(weights))
    elif weights:
        from sdk import weights as w

        entry = w.installed(str(weights))
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
    v15 = cfg.get("patch_size_t") is not None
    five_b = bool(cfg.get("use_rotary_positional_embeddings"))
    return (int(cfg.get("sample_height", 60)) * spatial, int(cfg.get("sample_width", 90)) * spatial,
            16 if v15 else 8, five_b)


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
    num_frames: int = Field(49, ge=1, description="Frames: 4k+1, at most 49 (the ExVideo adapter goes to 129).")
    height: int = Field(0, ge=0, le=2048, multiple_of=16, description="Frame height (0: the model's, 480; 768 on 1.5).")
    width: int = Field(0, ge=0, le=2048, multiple_of=16, description="Frame width (0: the model's, 720; 1360 on 1.5).")
    num_inference_steps: int = Field(50, ge=1, le=500, description="Denoising steps (CogVideoX DDIM, trailing).")
    guidance_scale: float = Field(6.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1: off).")
    use_dynamic_cfg: bool | None = Field(None, description="Raise guidance along a cosine over the steps (unset: on "
                                                           "for the 5B family, off for 2B, as their model cards).")
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
        height, width, fps, dynamic = model_defaults(weights)
        out = dict(params)
        if not out.get("height") or not out.get("width"):
            out["height"], out["width"] = out.get("height") or height, out.get("width") or width
        out["fps"] = out.get("fps") or fps
        if out.get("use_dynamic_cfg") is None:
            out["use_dynamic_cfg"] = dynamic
        return out


class CogVideoXV2VParams(CogVideoXParams):
    """Video-to-video: the source is resized to the frame size, noised to ``strength`` and denoised again."""

    strength: float = Field(0.8, gt=0.0, le=1.0, description="How much of the source is replaced (1: all of it; "
                                                             "steps run = num_inference_steps × strength).")


def check_frames(frames: int, field: str = "num_frames") -> None:
    """:class:`InvalidRequest` for a frame count CogVideoX cannot render (see :func:`frames_problem`)."""
    problem = frames_problem(frames)
    if problem:
        raise InvalidRequest(problem[0], hint=problem[1], field=field)
