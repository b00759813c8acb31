"""Parameters of the I2VGen-XL generator (torch-free: the GUI builds forms from the schema)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdk.params import GenerateParams

#: VGen's default negative prompt (tools/modules/config.py), used by its I2VGen-XL inference.
VGEN_NEGATIVE_PROMPT = ("Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
                        "disconnected limbs, Ugly faces, incomplete arms")


class I2VParams(GenerateParams):
    """diffusers names (``I2VGenXLPipeline``) with VGen's I2VGen-XL defaults: 1280×704, 16 frames, 50 DDIM steps,
    guidance 9, VGen's negative prompt, fps conditioning 16."""

    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    height: int = Field(704, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(1280, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="Denoising steps (DDIM: VGen's timestep list).")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0,
                                  description="Classifier-free guidance scale (≤1 turns it off); the unconditional "
                                              "branch sees the negative prompt and a zero image embedding.")
    negative_prompt: str = Field(VGEN_NEGATIVE_PROMPT, description="What the video should not show (VGen's default).")
    target_fps: int = Field(16, ge=1, le=60,
                            description="Frame-rate the model is conditioned on (I2VGen-XL was trained with 16).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")
    scheduler: Literal["ddim", "dpmpp", "euler"] = Field(
        "ddim", description="Sampler: ddim (as VGen), dpmpp (DPM-Solver++ 2M) or euler; v-prediction, cosine, zero-SNR.")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time (lower saves memory).")
