"""The VideoLCM generator passes the generator contract in both weight formats (VGen .pth, student checkpoint)."""
from __future__ import annotations

from pathlib import Path

from plugins.videolcm import vgen_generators
from sdk.testing.contract import GeneratorContract

SMALL = {"prompt": "a red panda surfing", "num_frames": 2, "height": 32, "width": 32}
BAD = ({"num_frames": 0}, {"num_inference_steps": 9}, {"num_inference_steps": 0}, {"guidance_scale": 9.0},
       {"no_such_param": 1})


class TestVideoLCMVGen(GeneratorContract):
    spec = vgen_generators()[0]
    params = SMALL
    bad_params = BAD

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.videolcm.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "videolcm-tiny", "vgen")


class TestVideoLCMStudent(GeneratorContract):
    spec = vgen_generators()[0]
    params = {**SMALL, "num_inference_steps": 2}
    bad_params = BAD

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.videolcm.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "student-tiny", "student")
