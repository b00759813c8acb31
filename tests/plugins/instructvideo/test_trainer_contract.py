"""instructvideo.reward passes the trainer contract (sdk.testing.trainer_contract) on a motion captioned by prompt."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plugins.instructvideo import vgen_trainers
from sdk.context import MotionInput
from sdk.testing.trainer_contract import TrainerContract

SMALL = {"prompt": "a cat walking", "height": 32, "width": 32, "num_frames": 4, "segments": 2, "sample_steps": 2,
         "sample_num_frames": 2, "learning_rate": 1e-3, "starting_partial": 0.15}


class TestReward(TrainerContract):
    spec = vgen_trainers()[0]
    params = SMALL

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.instructvideo.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "iv-tiny")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        from plugins.instructvideo.tiny import write_tiny_clip

        return {"motion": MotionInput("walk", [write_tiny_clip(tmp_path / "walk.mp4")])}
