"""Parameters of the TF-T2V text-to-video generator (torch-free: the GUI builds forms from the schema)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdk.params import GenerateParams

#: VGen's default negative prompt (tools/modules/config.py), the unconditional text of the released configs.
DEFAULT_NEGATIVE = ("Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
                    "disconnected limbs, Ugly faces, incomplete arms")
#: appended to every prompt by the released tft2v_t2v_infer.yaml
POSITIVE_SUFFIX = ", cinematic, High Contrast, highly detailed, no blur, 4k render"


class TFT2VParams(GenerateParams):
    """diffusers names plus the sampler choice; defaults are the released inference configs (448×256, DDIM 50, w 9)."""

    num_frames: int = Field(16, ge=1, le=128, description="Number of frames (16, or 32 with the 32-frame weights).")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="Denoising steps (DDIM: VGen's timestep list).")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1 turns it off).")
    negative_prompt: str = Field(DEFAULT_NEGATIVE, description="What the video should not show (the unconditional text).")
    positive_suffix: str = Field(POSITIVE_SUFFIX, description="Appended to the prompt, as the released configs do.")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")
    scheduler: Literal["ddim", "dpmpp", "euler"] = Field(
        "ddim", description="Sampler: ddim (as VGen), dpmpp (DPM-Solver++ 2M) or euler; same betas and prediction type.")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time (lower saves memory).")
