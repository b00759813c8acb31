"""DreamVideo's subject step 1 and motion trainers pass the trainer contract (sdk.testing.trainer_contract)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk.context import MotionInput, SubjectInput
from sdk.testing.trainer_contract import TrainerContract

from plugins.dreamvideo import vgen_trainers

SMALL = {"height": 32, "width": 32, "sample_steps": 1, "sample_num_frames": 1, "lr_warmup_steps": 0,
         "train_batch_size": 1}


def _spec(spec_id: str):
    return next(s for s in vgen_trainers() if s.id == spec_id)


def _tiny(tmp_path: Path) -> Path:
    from plugins.dreamvideo.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path / "tiny")


class TestSubjectStep1(TrainerContract):
    spec = _spec("dreamvideo.subject_step1")
    params = {**SMALL, "learning_rate": 5e-2}

    def make_weights(self, tmp_path: Path) -> Path:
        return _tiny(tmp_path)

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        images = []
        for i in range(2):
            images.append(tmp_path / f"dog{i}.png")
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images[-1])
        return {"subject": SubjectInput("dog", "<dog>", images, [])}


class TestMotion(TrainerContract):
    spec = _spec("dreamvideo.motion")
    params = {**SMALL, "learning_rate": 1e-3, "num_frames": 2, "prompt": "turning"}

    def make_weights(self, tmp_path: Path) -> Path:
        return _tiny(tmp_path)

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        import imageio.v2 as imageio
        import numpy as np

        rng = np.random.default_rng(0)
        clip = tmp_path / "turn.mp4"
        imageio.mimwrite(str(clip), [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(6)], fps=8)
        return {"motion": MotionInput("turn", [clip])}
