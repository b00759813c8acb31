"""The board on a real DreamVideo grid (tiny twins, real worker): a subject trained 2 steps, composed over seeds ×
identity_step with 0 ("the adapter's own step") resolved to the step of the Adapter the job used, scored
automatically as each output lands (the project's auto metrics: classic_cv.flow_warp and VGen's CLIP-I on the tiny
CLIP twin); the board and `vgen batch report` name the best seed, the best step and the best output of the subject."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.conditions import set_project_auto_metrics
from sdk.evaluation import build_board
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.service import RenderService
from sdk.weights import make_tiny
from tests.plugins.dreamvideo.conftest import dv_data, dv_weights  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_a_dreamvideo_grid_is_charted_against_the_identity_step(tmp_path: Path, dv_weights, dv_data,  # noqa: F811
                                                                capsys) -> None:
    path = tmp_path / "Dream.vgen"
    registry = load_plugins()
    make_tiny(registry.weights["vgen_metrics.clip_vit_b32"], tmp_path / "clip", register=True)
    with Project.create(path) as project:
        set_project_auto_metrics(project, registry, ["classic_cv.flow_warp", "vgen_metrics.clip_i"])
    imgs = [str(i) for i in dv_data["images"]]
    assert vgen(["subject", "add", str(path), "dog", *imgs, "--token", "<dog>"]) == 0, capsys.readouterr().err
    params = ["max_train_steps=2", "checkpointing_steps=1", "validation_steps=2", "height=32", "width=32",
              "sample_steps=1", "sample_num_frames=1", "lr_warmup_steps=0", "train_batch_size=1"]
    argv = ["train", str(path), "dreamvideo.subject", "--subject", "dog", "--weights", str(dv_weights)]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err
    gen = ["queue", "add", str(path), "--generator", "dreamvideo.compose", "--prompt", "a <dog> on the beach",
           "--subject", "dog", "--weights", str(dv_weights), "--seeds", "1,2"]
    gp = ["num_frames=3", "height=32", "width=32", "num_inference_steps=2", "identity_step=0,1",
          "motion_adapter=none"]
    assert vgen(gen + [a for p in gp for a in ("--param", p)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        batch = next(j.batch_id for j in project.jobs() if j.spec_id == "dreamvideo.compose")
        stats = RenderService(project).run(until_empty=True)
        assert stats["failed"] == 0, [j.error_message for j in project.jobs()]
        board = build_board(project, batch, registry=registry)
        # every output was scored by both auto metrics, with nobody asking
        assert all(r.score("classic_cv.flow_warp") is not None and r.score("vgen_metrics.clip_i") is not None
                   for r in board.rows), [(r.job_id, r.scores) for r in board.rows]
        assert len(board.rows) == 4 and {r.subject for r in board.rows} == {"dog"}
        # identity_step=0 took the newest identity Adapter: step 2
        assert sorted((r.seed, r.params["identity_step"], r.axes["identity_step"]) for r in board.rows) == [
            (1, 0, 2.0), (1, 1, 1.0), (2, 0, 2.0), (2, 1, 1.0)]
        assert board.step_axis() == "identity_step"
        curve = board.step_curve("classic_cv.flow_warp")
        assert [p.step for p in curve.points] == [1.0, 2.0] and all(p.count == 2 for p in curve.points)
        means = {p.step: p.mean for p in curve.points}
        assert curve.peak.step == min(means, key=means.get)  # the warp error: lower is better
        errors = {r.job_id: r.score("classic_cv.flow_warp") for r in board.rows}
        assert [r.job_id for r in board.best_per("subject", "classic_cv.flow_warp")["dog"]] == [
            min(errors, key=errors.get)]
    assert vgen(["batch", "report", str(path), batch]) == 0
    out = capsys.readouterr().out
    assert f"Best step: identity_step={int(curve.peak.step)}" in out and "Best for subject 'dog'" in out
    assert "Best seed: " in out
