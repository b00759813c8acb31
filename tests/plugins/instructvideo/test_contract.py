"""instructvideo.t2v passes the generator contract with the released LoRA and with a project LoRA adapter."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plugins.instructvideo import vgen_generators
from sdk.testing.contract import GeneratorContract

SMALL = {"prompt": "a red panda surfing", "num_frames": 2, "height": 32, "width": 32}
BAD = ({"num_frames": 0}, {"num_inference_steps": 25}, {"lora_scale": -1.0}, {"lora": "mine"},
       {"guidance_scale": float("nan")}, {"no_such_param": 1})


class TestReleasedLoRA(GeneratorContract):
    spec = vgen_generators()[0]
    params = SMALL
    bad_params = BAD

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.instructvideo.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "iv-tiny")


class TestProjectAdapter(GeneratorContract):
    spec = vgen_generators()[0]
    params = {**SMALL, "lora_scale": 0.7}
    bad_params = BAD

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.instructvideo.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / "iv-tiny")

    def make_inputs(self, tmp_path: Path) -> dict[str, Any]:
        from sdk.inputs import AdapterInput

        from plugins.instructvideo.tiny import write_tiny_adapter

        folder = write_tiny_adapter(tmp_path / "adapter")
        return {"adapter": AdapterInput("a1", folder, 1, "instructvideo.lora", {})}
