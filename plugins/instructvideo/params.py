"""Parameters of ``instructvideo.t2v`` and ``instructvideo.reward`` (torch-free: forms are built from the schema).

Defaults follow VGen's InstructVideo configs (vgen-notes §13): eps / linear_sd, DDIM 20 (or 50) on the explicit step
lists, guidance 3.0 with the empty prompt as uncond, 256×256, 16 frames; reward fine-tuning from t = 551 (12 of the
20 DDIM steps), HPSv2 over 4 segments with temporal attenuation λ = 1, AdamW lr 1e-5.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sdk.params import GenerateParams, TrainParams

LORA_KIND = "instructvideo.lora"
VIDEO_EXTS = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")


class InstructVideoParams(GenerateParams):
    """ModelScope T2V v1.4 with InstructVideo's LoRA merged in (the released one, a project adapter, or none)."""

    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    num_inference_steps: Literal[20, 50] = Field(
        20, description="DDIM steps: 20 (as InstructVideo was tuned) or 50, on VGen's explicit step lists.")
    guidance_scale: float = Field(3.0, ge=0.0, le=50.0, description="Classifier-free guidance (InstructVideo: 3.0).")
    negative_prompt: str = Field("", description="The unconditional text (InstructVideo: empty).")
    lora: Literal["released", "none"] = Field(
        "released", description="Without an adapter input: 'released' merges the fine-tuned InstructVideo LoRA "
                                "checkpoint, 'none' renders the ModelScope v1.4 base.")
    lora_scale: float = Field(1.0, ge=0.0, le=4.0,
                              description="Strength of the LoRA merged into the base (W += s·up·down; VGen: 1.0).")
    offset_noise: float = Field(0.0, ge=0.0, le=1.0,
                                description="Per-frame, per-channel initial noise offset (InstructVideo eval: 0).")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time.")


class RewardParams(TrainParams):
    """Reward fine-tuning as editing (VGen's t2v_instructvideo_entrance, DiffRewardModel with HPSv2)."""

    prompt: str = Field("", description="Caption of the motion's videos (the text HPSv2 scores against).")
    data_dir: str = Field("", description="Instead of a motion: a folder of videos with same-name .txt captions.")
    max_train_steps: int = Field(1000, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-5, gt=0.0, le=1.0)
    lr_scheduler: str = Field("constant", pattern="^(constant|constant_with_warmup|linear|cosine)$")
    lr_warmup_steps: int = Field(0, ge=0)
    adam_weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="AdamW weight decay (VGen: 0).")
    checkpointing_steps: int = Field(100, ge=1)
    validation_steps: int = Field(100, ge=1)
    train_batch_size: int = Field(1, ge=1, le=64, description="Clips per step (VGen: 2 per GPU).")
    num_frames: int = Field(16, ge=2, le=128, description="Frames per training clip (a multiple of segments).")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Training size (multiple of 8).")
    width: int = Field(256, ge=8, le=2048, multiple_of=8, description="Training size (multiple of 8).")
    sample_fps: int = Field(8, ge=1, le=60, description="Frames per second the clips are sampled at.")
    ddim_steps: Literal[20, 50] = Field(20, description="The DDIM chain the editing runs on (VGen: 20).")
    starting_partial: float = Field(0.6, gt=0.0, le=1.0,
                                    description="Fraction of the chain run (0.6 of 20: noise to t = 551, 12 steps).")
    guidance_scale: float = Field(3.0, ge=0.0, le=50.0, description="Guidance of the editing chain (uncond '').")
    noise_offset: float = Field(0.1, ge=0.0, le=1.0, description="Temporal offset noise of the editing start (0.1).")
    segments: int = Field(4, ge=1, le=64, description="Segments of the video reward (one random frame each, TSN).")
    lambda_tar: float = Field(1.0, ge=0.0, le=10.0, description="Temporal attenuation exp(−λ·|i − F/2|) (VGen: 1).")
    sample_steps: int = Field(20, ge=1, le=1000, description="DDIM steps of the sample previews.")
    sample_num_frames: int = Field(16, ge=1, le=128, description="Frames of the sample previews.")
    hps_weights: str = Field("", description="HPS_v2.pt (or a folder holding it); default: the vgen_metrics.hpsv2 "
                                             "weights the studio knows, else HPS_v2.pt beside the base weights.")

    @field_validator("data_dir")
    @classmethod
    def _captioned_folder(cls, v: str) -> str:
        if not v:
            return v
        folder = Path(v).expanduser()
        if not folder.is_dir():
            raise ValueError(f"data_dir {v!r} is not a folder; give a folder of videos with same-name .txt captions")
        if not captioned_clips(folder):
            raise ValueError(f"data_dir {v!r} holds no video with a same-name .txt caption; put e.g. clip1.mp4 "
                             "next to clip1.txt")
        return v

    @model_validator(mode="after")
    def _has_captions(self) -> "RewardParams":
        if not self.prompt.strip() and not self.data_dir:
            raise ValueError("the reward needs captioned clips: give prompt (the caption of the motion's videos) or "
                             "data_dir (videos with same-name .txt captions)")
        if self.num_frames % self.segments:
            raise ValueError(f"num_frames {self.num_frames} is not a multiple of segments {self.segments}; "
                             "use e.g. num_frames=16 with segments=4")
        return self


def captioned_clips(folder: Path) -> list[tuple[Path, str]]:
    """``(video, caption)`` for every video of ``folder`` with a non-empty same-name ``.txt``."""
    out = []
    for v in sorted(folder.iterdir()):
        cap = v.with_suffix(".txt")
        if v.suffix.lower() in VIDEO_EXTS and cap.is_file():
            text = cap.read_text(encoding="utf-8").strip()
            if text:
                out.append((v, text))
    return out
