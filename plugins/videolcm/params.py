"""Parameters of VideoLCM sampling and distillation (torch-free: the GUI builds forms from the schema)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sdk.params import Params, TrainParams

#: appended to every prompt by the released videolcm_t2v_infer.yaml
POSITIVE_SUFFIX = ", cinematic, High Contrast, highly detailed, Unreal Engine 5, no blur, 4k render"
#: VGen's default negative prompt: the teacher's unconditional text during distillation
DEFAULT_NEGATIVE = ("Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
                    "disconnected limbs, Ugly faces, incomplete arms")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class VideoLCMParams(Params):
    """No guidance_scale / negative_prompt: the teacher's guidance (w = 9) is distilled into the model."""

    prompt: str = Field(min_length=1, description="What the video should show.")
    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(4, ge=1, le=8, description="LCM steps (1–8; 4 as released).")
    positive_suffix: str = Field(POSITIVE_SUFFIX, description="Appended to the prompt, as the released config does.")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time (lower saves memory).")

    _prompt = field_validator("prompt")(classmethod(lambda cls, v: _not_blank(v)))


class DistillParams(TrainParams):
    """Latent consistency distillation as VGen's train_videolcm_t2v (vgen-notes §11); diffusers' LCD script names."""

    prompt: str = Field(min_length=1, description="Caption of the motion's videos, and the prompt of the sample previews.")
    negative_prompt: str = Field(DEFAULT_NEGATIVE, description="The teacher's unconditional text.")
    data_dir: str = Field("", description="Instead of a motion: a folder of videos, each with a same-name .txt caption.")
    max_train_steps: int = Field(1000, ge=1, le=1_000_000)
    learning_rate: float = Field(3e-5, gt=0.0, le=1.0)
    train_batch_size: int = Field(16, ge=1, le=256, description="Clips per step (VGen: 16 clips of 16 frames).")
    # VGen: warm-up 10, then cosine over its num_steps = 1,000,000 (the LR moves < 0.25 % in 32,000 steps)
    lr_scheduler: str = Field("constant_with_warmup", pattern="^(constant|constant_with_warmup|linear|cosine)$")
    lr_warmup_steps: int = Field(10, ge=0)
    adam_weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    max_grad_norm: float | None = Field(None, gt=0.0, description="Clip the gradient norm (VGen: no clipping).")
    spatial_grad_scale: float = Field(0.5, ge=0.0, le=1.0,
                                      description="Gradient scale of the student's spatial (SD-2D) weights (VGen: 0.5).")
    target_eval: bool = Field(False, description="Teacher and target without dropout (eval mode); VGen runs them in "
                                                 "train mode like the student.")
    num_frames: int = Field(16, ge=1, le=128, description="Frames per training clip.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Training clip height (multiple of 8).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8, description="Training clip width (multiple of 8).")
    sample_fps: int = Field(4, ge=1, le=60, description="Frames per second the clips are sampled at.")
    ema_decay: float = Field(0.95, ge=0.0, lt=1.0, description="EMA rate of the target network.")
    num_ddim_timesteps: int = Field(50, ge=1, le=1000,
                                    description="DDIM solver steps; the skip is 1000 / this (50 → skip 20).")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Teacher guidance w: cond + w·(cond − uncond).")
    huber_c: float = Field(0.001, gt=0.0, description="Pseudo-Huber loss parameter c.")
    loss_type: Literal["huber", "l2"] = Field("huber", description="Pseudo-Huber (as VGen) or mean squared error.")
    sample_steps: int = Field(4, ge=1, le=8, description="LCM steps of the sample previews.")
