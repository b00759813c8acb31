"""instructvideo.reward passes the trainer contract (sdk.testing.trainer_contract) on a motion captioned by prompt."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plugins.instructvideo import vgen_trainers
from sdk.context import MotionInput
from sdk.testing.trainer_contract import TrainerContract

SMALL = {"prompt": "a cat walking", "height": 32, "width": 32, "num_frames": 4, "segments": 2, "sample_steps": 2,
         "sample_num_frames": 2, "learning_rate": 1e-3, "starting_partial": 0.15}


def write_clip(path: Path, frames: int = 6, size: int = 32, seed: int = 0) -> Path:
    import imageio.v2 as imageio
    import numpy as np

    rng = np.random.default_rng(seed)
    imageio.mimwrite(str(path), [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(frames)], fps=8)
    return path


class TestReward(TrainerContract):
    spec = vgen_trainers()[0]
    params = SMALL

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.instructvideo.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "iv-tiny")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        return {"motion": MotionInput("walk", [write_clip(tmp_path / "walk.mp4")])}
