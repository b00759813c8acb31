"""instructvideo.t2v: what the LoRA choice and strength do to a render."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plugins.instructvideo.params import InstructVideoParams
from plugins.instructvideo.pipeline import InstructVideoGenerator
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import IncompatibleCheckpoint
from sdk.inputs import AdapterInput

CACHE = ModelCache()
SMALL = dict(prompt="a cat", num_frames=2, height=32, width=32)


def _render(weights: Path, tmp_path: Path, adapter: Path | None = None, **over) -> np.ndarray:
    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path / "s", models=CACHE)
    inputs = {"adapter": AdapterInput("a", adapter, 1, "instructvideo.lora")} if adapter else {}
    req = JobRequest("j", "generate", "instructvideo.t2v", InstructVideoParams(**{**SMALL, **over}), seed=4,
                     weights=weights, inputs=inputs)
    return InstructVideoGenerator().generate(ctx, req).frames


def test_lora_choice_and_strength(iv_weights: Path, tmp_path: Path) -> None:
    from plugins.instructvideo.tiny import write_tiny_adapter

    released = _render(iv_weights, tmp_path)
    base = _render(iv_weights, tmp_path, lora="none")
    assert not np.array_equal(released, base), "the released LoRA changes the video"
    assert np.array_equal(_render(iv_weights, tmp_path, lora_scale=0.0), base), "strength 0 is the v1.4 base"
    adapter = write_tiny_adapter(tmp_path / "adapter")
    tuned = _render(iv_weights, tmp_path, adapter=adapter)
    assert not np.array_equal(tuned, base) and not np.array_equal(tuned, released)


def test_an_adapter_without_lora_tensors_is_refused(iv_weights: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    save_file({"something.weight": torch.zeros(2)}, str(bad / "weights.safetensors"))
    with pytest.raises(IncompatibleCheckpoint, match="no LoRA tensors"):
        _render(iv_weights, tmp_path, adapter=bad)


def test_weights_without_the_released_lora_name_the_fix(iv_weights: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from sdk.errors import WeightsMissing

    bare = tmp_path / "bare"
    shutil.copytree(iv_weights, bare, ignore=shutil.ignore_patterns("instructvideo-finetuned"))
    studio = json.loads((bare / "vgen_studio.json").read_text())
    studio.pop("lora")
    (bare / "vgen_studio.json").write_text(json.dumps(studio))
    with pytest.raises(WeightsMissing, match="lora=none"):
        _render(bare, tmp_path)
    assert _render(bare, tmp_path, lora="none").shape == (2, 32, 32, 3)
