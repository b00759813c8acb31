"""The built-in ModelScope T2V generator passes the generator contract (both weight formats)."""
from __future__ import annotations

from pathlib import Path

from plugins.modelscope_t2v import vgen_generators
from sdk.testing.contract import GeneratorContract

SMALL = {"prompt": "a red panda surfing", "num_frames": 3, "height": 64, "width": 64, "num_inference_steps": 4}


class TestModelScopeT2VDiffusers(GeneratorContract):
    spec = vgen_generators()[0]
    params = SMALL

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.modelscope_t2v.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "ms-tiny", "diffusers")


class TestModelScopeT2VVGen(GeneratorContract):
    spec = vgen_generators()[0]
    params = {**SMALL, "scheduler": "dpmpp", "negative_prompt": "blurry"}

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.modelscope_t2v.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "vgen-tiny", "vgen")
