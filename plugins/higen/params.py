"""Parameters of the HiGen text-to-video generator (torch-free: the GUI builds forms from the schema).

Defaults are VGen's ``higen_infer.yaml``: 32 frames at 448×256, DDIM 50 in each of the two stages, guidance 12, the
empty negative prompt, motion factor 500, appearance factor 1.0, offset noise 0.1 in stage 2, written at 8 fps.
"""
from __future__ import annotations

from pydantic import Field

from sdk.params import GenerateParams

#: frames the released weights take: the appearance cue is a 32-wide vector per frame
RELEASED_FRAMES = 32


class HiGenParams(GenerateParams):
    """Both stages share the steps, guidance and negative prompt; the cues steer stage 2 only."""

    negative_prompt: str = Field("", description="What the video should not show (the unconditional text; VGen: "
                                                 "empty).")
    num_frames: int = Field(RELEASED_FRAMES, ge=2, le=128,
                            description="Number of frames. The released weights take exactly 32 (their appearance "
                                        "cue is 32 wide); a tiny twin takes the width it was made with.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(50, ge=1, le=1000,
                                     description="DDIM steps of each stage (the job runs twice this many).")
    guidance_scale: float = Field(12.0, ge=0.0, le=50.0, description="Classifier-free guidance scale of both stages "
                                                                     "(≤1 turns it off).")
    motion_factor: float = Field(500.0, ge=0.0, le=2000.0,
                                 description="Motion cue of stage 2: more motion as it grows (VGen's default 500; "
                                             "whole numbers match VGen exactly, which casts it to an integer).")
    appearance_factor: float = Field(1.0, ge=0.0, le=2.0,
                                     description="Appearance-variation cue of stage 2: 0 keeps every frame like the "
                                                 "key frame, 1 (VGen's default) lets the last frame differ most.")
    offset_noise: float = Field(0.1, ge=0.0, le=1.0, description="Offset noise of stage 2's initial latents "
                                                                 "(VGen's noise_strength 0.1).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video (VGen writes 8).")
    decode_chunk_size: int = Field(2, ge=1, le=128, description="Frames decoded by the VAE at a time (VGen: 2; "
                                                                "lower saves memory).")

    def queue_warnings(self) -> list[str]:
        """Also: a frame count other than the released 32 runs only on weights made for it (tiny twins)."""
        warnings = super().queue_warnings()
        if self.num_frames != RELEASED_FRAMES:
            warnings.append(f"num_frames={self.num_frames}: the released HiGen weights take exactly {RELEASED_FRAMES} "
                            f"frames (their appearance cue is {RELEASED_FRAMES} wide); other counts run only on "
                            f"weights made for them, e.g. a tiny twin.")
        return warnings
