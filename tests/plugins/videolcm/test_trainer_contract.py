"""videolcm.distill passes the trainer contract (sdk.testing.trainer_contract) on the tiny TF-T2V teacher."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk.context import MotionInput
from sdk.testing.trainer_contract import TrainerContract

from plugins.videolcm import vgen_trainers


class TestDistillTrainer(TrainerContract):
    spec = next(s for s in vgen_trainers() if s.id == "videolcm.distill")
    params = {"prompt": "a dog running", "num_frames": 2, "height": 32, "width": 32, "train_batch_size": 1,
              "lr_warmup_steps": 0, "learning_rate": 1e-3, "sample_steps": 1}

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.tf_t2v.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "tft2v-tiny")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        import imageio.v2 as imageio
        import numpy as np

        rng = np.random.default_rng(0)
        clip = tmp_path / "clip.mp4"
        imageio.mimwrite(str(clip), [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(10)], fps=8)
        return {"motion": MotionInput("m", [clip])}
