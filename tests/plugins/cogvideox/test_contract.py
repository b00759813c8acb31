"""The three CogVideoX generators pass the generator contract (sdk.testing.contract) on tiny twins: progress and
previews per step, cancel, seeds, the model cache, missing weights, bad params."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plugins.cogvideox import vgen_generators
from sdk.testing.contract import GeneratorContract

SPECS = {s.id: s for s in vgen_generators()}
SMALL = {"prompt": "a paper boat on a stream", "num_frames": 9, "height": 32, "width": 48, "num_inference_steps": 2}
SAMPLE_IMAGE = Path(__file__).resolve().parents[3] / "project_templates" / "image-to-video" / "sample.png"


class TestCogVideoXT2V(GeneratorContract):
    spec = SPECS["cogvideox.t2v"]
    params = SMALL
    bad_params = GeneratorContract.bad_params + ({"num_frames": 57}, {"num_frames": 13})

    def make_weights(self, tmp_path: Path) -> Path:
        from sdk.ml.cogvideox import write_twin

        return write_twin(tmp_path / "2b", variant="2b")


class TestCogVideoXI2V(GeneratorContract):
    spec = SPECS["cogvideox.i2v"]
    params = SMALL
    inputs = {"image": SAMPLE_IMAGE}

    def make_weights(self, tmp_path: Path) -> Path:
        from sdk.ml.cogvideox import write_twin

        return write_twin(tmp_path / "5b-i2v", variant="5b-i2v")


class TestCogVideoXV2V(GeneratorContract):
    spec = SPECS["cogvideox.v2v"]
    params = {**SMALL, "num_inference_steps": 3, "strength": 0.7}
    bad_params = GeneratorContract.bad_params + ({"strength": 0.0},)

    def make_weights(self, tmp_path: Path) -> Path:
        from sdk.ml.cogvideox import write_twin

        return write_twin(tmp_path / "2b", variant="2b")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        from sdk.inputs import VideoInput
        from sdk.outputs import write_output
        from sdk.video import Video

        yy, xx = np.mgrid[0:32, 0:48]
        frames = np.stack([np.stack([(xx * 5 + 9 * t) % 256, yy * 7 % 256, (xx + yy) * 3 % 256], -1)
                           for t in range(9)]).astype(np.uint8)
        paths = write_output(tmp_path / "src", Video(frames, fps=8), {"kind": "source"})
        return {"video": VideoInput(path=paths["video"], num_frames=9, width=48, height=32, fps=8,
                                    frames_dir=paths["frames"])}
