"""An earlier output of the project upscaled through the real worker (SQLite, worker process, ffmpeg): a tiny
ModelScope T2V render, then ``sr600.upscale`` of it queued by job id, which waits for it."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.outputs import read_frames
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from plugins.modelscope_t2v.tiny import make_tiny_weights as t2v_twin
    from plugins.sr600.tiny import make_tiny_weights as sr_twin

    root = tmp_path_factory.mktemp("sr600-e2e")
    return {"t2v": t2v_twin(root / "t2v", "diffusers"), "sr600": sr_twin(root / "sr600")}


def test_a_render_is_upscaled_after_it_finishes_in_the_worker(tmp_path: Path, weights: dict[str, Path],
                                                             capsys) -> None:
    registry = load_plugins(refresh=True)
    assert "sr600.upscale" in registry.generators, registry.plugins.get("sr600")
    path = tmp_path / "Chain.vgen"
    with Project.create(path) as project:
        src = queue_jobs(project, registry, "modelscope_t2v.t2v", prompts=["a lighthouse"], seeds="2",
                         weights=str(weights["t2v"]),
                         params={"num_frames": [2], "height": [32], "width": [56], "num_inference_steps": [2]}
                         ).job_ids[0]
    # the upscale is queued before its source has run: it waits for it (queued with the CLI, by job id)
    argv = ["queue", "add", str(path), "--generator", "sr600.upscale", "--input", f"video={src}", "--prompt",
            "a lighthouse", "--weights", str(weights["sr600"]), "--seeds", "5"]
    params = ["num_frames=4", "height=80", "width=128", "num_inference_steps=2", "total_noise_levels=40"]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        up = next(j for j in project.jobs() if j.spec_id == "sr600.upscale")
        assert src in (up.depends_on or [])
        stats = RenderService(project, registry=registry).run(until_empty=True)
        assert stats["succeeded"] == 2, [(j.spec_id, j.error_message) for j in project.jobs()]
        frames = read_frames(project.output(up.id).dir)
        # the 2-frame source ran as 4 model frames (doubled) and came back as 2, at the target size
        assert frames.shape == (2, 80, 128, 3)
        logs = [line["message"] for line in project.logs(up.id)]
        assert any("each is taken twice" in m for m in logs), logs
        assert frames.std() > 1.0  # not a blank frame
