"""The TF-T2V generator passes the generator contract on its tiny twin (VGen format)."""
from __future__ import annotations

from pathlib import Path

from plugins.tf_t2v import vgen_generators
from sdk.testing.contract import GeneratorContract


class TestTFT2VVGen(GeneratorContract):
    spec = vgen_generators()[0]
    params = {"prompt": "a red panda surfing", "num_frames": 2, "height": 32, "width": 32, "num_inference_steps": 2}

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.tf_t2v.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "tft2v-tiny", "vgen")
