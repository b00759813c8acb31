"""exvideo's registration and what it refuses at queue time (no render: fast)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk.errors import InvalidRequest
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs

from plugins.exvideo.params import ExVideoCogParams


@pytest.fixture(scope="module")
def registry():
    return load_plugins(refresh=True)


def test_the_generator_and_the_lora_weights_are_registered_with_their_licences(registry) -> None:
    gen = registry.generators["exvideo.cogvideox"]
    assert gen.default_weights == "cogvideox-5b"
    lora = registry.weights["exvideo-cogvideox-lora-129f"]
    assert lora.repo_id == "ECNU-CILab/ExVideo-CogVideoX-LoRA-129f-v1"
    assert [f.path for f in lora.files] == ["ExVideo-CogVideoX-LoRA-129f-v1.safetensors"]
    assert "Apache-2.0" in lora.licence and "CogVideoX" in lora.licence


def test_the_published_settings_are_the_defaults() -> None:
    p = ExVideoCogParams(prompt="a dog")
    assert (p.num_frames, p.width, p.height, p.guidance_scale, p.num_inference_steps, p.fps) == (
        129, 720, 480, 7.0, 100, 8)
    assert p.lora == "exvideo-cogvideox-lora-129f" and p.lora_scale == 1.0
    assert p.use_dynamic_cfg is False  # DiffSynth's example guides with a constant 7


@pytest.mark.parametrize("frames, words", [(133, "129"), (130, "8k+1"), (125, "8k+1"), (48, "49")])
def test_bad_frame_counts_are_refused_when_queued(tmp_path: Path, registry, frames: int, words: str) -> None:
    with Project.create(tmp_path / "P.vgen") as project:
        with pytest.raises(InvalidRequest) as info:
            queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a dog"], seeds="1",
                       weights=str(tmp_path), params={"num_frames": [frames]})
        assert str(frames) in str(info.value) and words in str(info.value)
        assert project.jobs() == []


def test_a_missing_or_unsafe_lora_is_refused_when_queued(tmp_path: Path, registry) -> None:
    from sdk.errors import WeightsMissing

    pickle = tmp_path / "lora.pth"
    pickle.write_bytes(b"\x80\x04")
    with Project.create(tmp_path / "P.vgen") as project:
        with pytest.raises(WeightsMissing, match="exvideo-cogvideox-lora-129f"):
            queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a dog"], seeds="1", weights=str(tmp_path),
                       params={"num_frames": [9]})
        with pytest.raises(InvalidRequest, match="safetensors") as info:
            queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a dog"], seeds="1", weights=str(tmp_path),
                       params={"num_frames": [9], "lora": [str(pickle)]})
        assert info.value.field == "lora"
        assert project.jobs() == []


def test_the_installed_lora_id_is_what_a_job_uses_by_default(tmp_path: Path, registry) -> None:
    from sdk import weights as W

    from plugins.exvideo.pipeline import resolve_lora

    folder = W.make_tiny(registry.weights["exvideo-cogvideox-lora-129f"], tmp_path / "lora", register=True)
    assert resolve_lora("exvideo-cogvideox-lora-129f") == folder / "ExVideo-CogVideoX-LoRA-129f-v1.safetensors"
    ExVideoCogParams(prompt="a dog").check_inputs(frozenset(), None)  # installed: nothing to refuse
    assert "tiny" in W.installed("exvideo-cogvideox-lora-129f")["source"]
