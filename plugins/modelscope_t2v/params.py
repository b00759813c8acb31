"""Parameters of the ModelScope T2V generator (torch-free: the GUI builds forms from the schema)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdk.params import GenerateParams


class T2VParams(GenerateParams):
    """diffusers names (``TextToVideoSDPipeline``) plus the sampler choice and VGen's options."""

    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="Denoising steps (DDIM: VGen's timestep list).")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1 turns it off).")
    negative_prompt: str = Field("", description="What the video should not show (guidance pushes away from it).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")
    scheduler: Literal["ddim", "dpmpp", "euler"] = Field(
        "ddim", description="Sampler: ddim (as VGen), dpmpp (DPM-Solver++ 2M) or euler; same betas and prediction type.")
    preset: Literal["auto", "modelscope", "vgen_t2v"] = Field(
        "auto", description="Noise schedule family; auto reads it from the weights (scheduler config, vgen_studio.json "
                            "or the checkpoint's file name).")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time (lower saves memory).")
    offset_noise: float = Field(0.0, ge=0.0, le=1.0,
                                description="Per-frame, per-channel constant added to the initial noise (DreamVideo: 0.1).")
