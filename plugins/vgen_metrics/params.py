"""Params of the vgen_metrics metrics (torch-free: read when listing plugins)."""
from __future__ import annotations

from pydantic import Field

from sdk.params import Params


class MetricParams(Params):
    """How many frames to feed the model at once (the scores do not depend on it)."""

    batch_size: int = Field(8, ge=1, le=256, description="Frames encoded at once (lower it on a small GPU).")
