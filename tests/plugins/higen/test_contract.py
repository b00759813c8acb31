"""The HiGen generator passes the generator contract on its tiny twin (VGen format, 32 frames as released)."""
from __future__ import annotations

from pathlib import Path

from plugins.higen import vgen_generators
from sdk.testing.contract import GeneratorContract


class TestHiGen(GeneratorContract):
    spec = vgen_generators()[0]
    params = {"prompt": "a red panda surfing", "num_frames": 32, "height": 32, "width": 32, "num_inference_steps": 2}
    bad_params = GeneratorContract.bad_params + ({"motion_factor": -1}, {"appearance_factor": 3.0},
                                                 {"num_frames": 1})

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.higen.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "higen-tiny")
