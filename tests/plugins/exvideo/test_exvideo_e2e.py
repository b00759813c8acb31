"""ExVideo through the real worker (SQLite, worker process, ffmpeg) on tiny twins: CogVideoX-5B's twin with the LoRA
twin fused renders 129 frames; the LoRA changes the video; a LoRA made for another model is refused by the job."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService

pytestmark = pytest.mark.slow

TINY = {"height": [16], "width": [16], "num_inference_steps": [2]}  # 129 frames decode in seconds


def _transformer(folder: Path, **changes):
    from diffusers import CogVideoXTransformer3DModel

    config = json.loads((folder / "transformer" / "config.json").read_text())
    config.update(changes)
    return CogVideoXTransformer3DModel.from_config(config)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sdk.ml.cogvideox import write_twin

    from plugins.exvideo.lora import write_lora_twin

    root = tmp_path_factory.mktemp("exvideo-e2e")
    base = write_twin(root / "cog5b", variant="5b", size="tiny", seed=0)
    head_dim = json.loads((base / "transformer" / "config.json").read_text())["attention_head_dim"]
    return {
        "base": base,
        "lora": write_lora_twin(root / "lora", _transformer(base), rank=2, seed=1, std=0.5).parent,
        # the same layers of a model with other widths (another CogVideoX size)
        "other": write_lora_twin(root / "other" / "x.safetensors",
                                 _transformer(base, attention_head_dim=2 * head_dim)),
    }


def test_129_frames_render_with_the_lora(tmp_path: Path, twins: dict[str, Path]) -> None:
    registry = load_plugins(refresh=True)
    with Project.create(tmp_path / "Ex.vgen") as project:
        job = queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a lighthouse at dusk"], seeds="3",
                         weights=str(twins["base"]), params=dict(TINY, num_frames=[129], lora=[str(twins["lora"])])
                         ).job_ids[0]
        stats = RenderService(project, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 1, [(j.spec_id, j.error_message) for j in project.jobs()]
        frames = read_frames(project.output(job).dir)
        assert frames.shape == (129, 16, 16, 3)
        assert frames.std() > 1.0
        logs = [line["message"] for line in project.logs(job)]
        assert any("changed 8 linear layers" in m for m in logs), logs


def test_the_lora_changes_the_video_and_scale_zero_is_plain_cogvideox(tmp_path: Path, twins: dict[str, Path]) -> None:
    registry = load_plugins(refresh=True)
    with Project.create(tmp_path / "Scale.vgen") as project:
        # one worker: the fused and the plain transformer are cached apart (the patch id); the plain job runs with
        # model offload (balanced)
        ids = [queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a lighthouse at dusk"], seeds="3",
                          weights=str(twins["base"]), options={"memory_mode": mode},
                          params=dict(TINY, num_frames=[9], lora=[str(twins["lora"])], lora_scale=[scale])
                          ).job_ids[0] for scale, mode in ((1.0, "none"), (0.0, "balanced"))]
        stats = RenderService(project, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 2, [(j.spec_id, j.error_message) for j in project.jobs()]
        fused, plain = (read_frames(project.output(i).dir) for i in ids)
        assert fused.shape == plain.shape == (9, 16, 16, 3)
        assert abs(fused.astype(int) - plain.astype(int)).max() > 0
        assert any("changed 0 linear layers" in line["message"] for line in project.logs(ids[1]))  # scale 0


def test_a_lora_for_another_model_fails_the_job_naming_keys(tmp_path: Path, twins: dict[str, Path]) -> None:
    registry = load_plugins(refresh=True)
    with Project.create(tmp_path / "Bad.vgen") as project:
        job = queue_jobs(project, registry, "exvideo.cogvideox", prompts=["a dog"], seeds="1",
                         weights=str(twins["base"]),
                         params=dict(TINY, num_frames=[9], lora=[str(twins["other"])])).job_ids[0]
        stats = RenderService(project, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 0
        err = project.job(job).error_message
        assert "does not fit" in err and "blocks.0.attn1.to_q.lora_A.default.weight" in err, err
