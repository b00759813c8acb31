"""Params of the classic-CV extractor and metric (torch-free, OpenCV-free: read when listing plugins)."""
from __future__ import annotations

from pydantic import Field, model_validator

from sdk.params import Params


class CannyParams(Params):
    """Canny thresholds (as ControlNet's preprocessor: 100/200) and how to sample and size the frames."""

    low_threshold: int = Field(100, ge=1, le=1000, description="Gradients below this are never edges.")
    high_threshold: int = Field(200, ge=1, le=1000, description="Gradients above this always start an edge.")
    frame_stride: int = Field(1, ge=1, le=64, description="Take every N-th frame of the source.")
    num_frames: int | None = Field(None, ge=1, le=1024, description="Frames to make (empty: all the source has "
                                   "after the stride; a shorter source is padded with empty frames, as VGen does).")
    height: int | None = Field(None, ge=8, le=2048, description="Frame height (empty: the source's); no crop.")
    width: int | None = Field(None, ge=8, le=2048, description="Frame width (empty: the source's); no crop.")
    fps: int | None = Field(None, ge=1, le=60, description="Frame rate written (empty: the source's / stride).")

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> "CannyParams":
        if self.low_threshold > self.high_threshold:
            raise ValueError(f"low_threshold {self.low_threshold} is above high_threshold {self.high_threshold}; "
                             "give the lower one first")
        return self


class FlowWarpParams(Params):
    """How far apart the compared frames are."""

    frame_stride: int = Field(1, ge=1, le=64, description="Compare frame t with frame t+N.")
