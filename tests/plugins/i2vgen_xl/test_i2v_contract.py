"""The built-in I2VGen-XL generator passes the generator contract (both weight formats) and needs its image."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugins.i2vgen_xl import vgen_generators
from sdk.errors import InvalidRequest
from sdk.testing.contract import GeneratorContract

SAMPLE_IMAGE = Path(__file__).resolve().parents[3] / "project_templates" / "image-to-video" / "sample.png"

SMALL = {"prompt": "a boat drifting on a lake", "num_frames": 2, "height": 32, "width": 48, "num_inference_steps": 3}


class _I2VContract(GeneratorContract):
    spec = vgen_generators()[0]
    params = SMALL
    inputs = {"image": SAMPLE_IMAGE}
    format = "diffusers"

    @pytest.fixture(scope="class")
    def weights(self, i2v_twins: dict[str, Path]) -> Path:  # the session's twins: written once for all modules
        return i2v_twins[self.format]

    def make_weights(self, tmp_path: Path) -> Path:
        from plugins.i2vgen_xl.tiny import make_tiny_weights

        return make_tiny_weights(tmp_path / f"i2v-{self.format}", self.format)


class TestI2VGenXLDiffusers(_I2VContract):
    format = "diffusers"


class TestI2VGenXLVGen(_I2VContract):
    format = "vgen"
    params = {**SMALL, "scheduler": "dpmpp", "negative_prompt": "blurry", "target_fps": 8}

    def test_a_job_without_image_is_refused(self, weights: Path, tmp_path: Path) -> None:
        self.inputs = {}
        with pytest.raises(InvalidRequest) as info:
            self.run_job(weights, tmp_path)
        assert info.value.field == "image" and "--image" in info.value.hint
