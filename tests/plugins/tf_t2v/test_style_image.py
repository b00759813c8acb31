"""TF-T2V's optional style image: its CLIP image embedding becomes 4 extra context tokens."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plugins.tf_t2v import vgen_generators
from plugins.tf_t2v.params import TFT2VParams
from plugins.tf_t2v.pipeline import TFT2VGenerator
from sdk.context import JobContext, JobRequest, ModelCache

SMALL = {"prompt": "a red panda surfing", "num_frames": 2, "height": 32, "width": 32, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plugins.tf_t2v.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("tft2v") / "tiny", "vgen")


def render(weights: Path, tmp_path: Path, cache: ModelCache, image: Path | None) -> np.ndarray:
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "staging", models=cache)
    inputs = {"style_image": image} if image else {}
    req = JobRequest("j", "generate", "tf_t2v.t2v", TFT2VParams(**SMALL), seed=3, inputs=inputs, weights=weights)
    return TFT2VGenerator().generate(ctx, req).frames


def test_a_style_image_steers_the_video_and_stays_deterministic(weights: Path, tmp_path: Path) -> None:
    style = tmp_path / "style.jpg"
    Image.new("RGB", (120, 80), (200, 40, 40)).save(style)
    other = tmp_path / "other.png"
    Image.new("RGB", (64, 64), (10, 200, 90)).save(other)
    cache = ModelCache()
    plain = render(weights, tmp_path, cache, None)
    styled = render(weights, tmp_path, cache, style)
    assert not np.array_equal(plain, styled)
    assert np.array_equal(styled, render(weights, tmp_path, cache, style))
    assert not np.array_equal(styled, render(weights, tmp_path, cache, other))


def test_the_style_image_is_optional_at_queue_time() -> None:
    spec = vgen_generators()[0]
    assert [(f.name, f.required) for f in spec.fields] == [("style_image", False)] and spec.takes_text
