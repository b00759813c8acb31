"""Params of VideoComposer's condition extractors (torch-free: read when listing plugins).

Every extractor samples its source the way VGen's ``inference_tft2v_vcomposer_entrance`` does: a stride of
``round(source fps / sample_fps)`` frames, ``num_frames`` frames from ``start_frame``, each resized to
``width``×``height`` without a crop (PIL bilinear); a shorter source is padded with empty frames.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdk.params import Params


class SampleParams(Params):
    """How the source video is sampled and sized (VGen's defaults: 16 frames at 3 fps, 448×256)."""

    num_frames: int = Field(16, ge=1, le=128, description="Frames to make (VGen's max_frames); a shorter source is "
                            "padded with empty frames, as VGen does.")
    sample_fps: int = Field(3, ge=1, le=60, description="Frames per second taken from the source (VGen: 3): the "
                            "stride is round(source fps / sample_fps).")
    start_frame: int = Field(0, ge=0, le=100_000, description="First source frame taken (VGen picks one at random).")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height (resized, no crop).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8, description="Frame width (resized, no crop).")


class LocalImageParams(SampleParams):
    """The first sampled frame, repeated."""


class MaskParams(SampleParams):
    """A mask over every frame: white where VideoComposer generates, black where it keeps the video."""

    family: Literal["random", "irregular", "rectangles", "uncrop"] = Field(
        "random", description="VGen's mask families: random picks irregular strokes (70 %), 1-4 rectangles (20 %) or "
                              "a half-image uncrop (10 %), as VGen does; the others force one. A mask_image input "
                              "overrides it.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the random mask (the same seed, the same mask).")


class MotionParams(SampleParams):
    """Motion vectors of the sampled frames, from the compressed stream."""

    codec: Literal["mpeg4", "h264"] = Field(
        "mpeg4", description="Codec the sampled frames are encoded with to read their motion vectors (VideoComposer: "
                             "mpeg4, one vector per 16×16 block).")


class SketchParams(SampleParams):
    """PiDiNet edges, cleaned by the sketch-simplification net (VGen's sketch)."""


class DepthParams(SampleParams):
    """MiDaS v3 DPT-Large depth, scaled as VGen does (depth / 20, clamped to [0, 10])."""

    height: int = Field(256, ge=32, le=2048, multiple_of=32, description="Frame height (multiple of 32: DPT's "
                        "patch grid must halve evenly).")
    width: int = Field(448, ge=32, le=2048, multiple_of=32, description="Frame width (multiple of 32).")
    batch_size: int = Field(2, ge=1, le=64, description="Frames per forward pass (VGen's chunk_size: 2).")
