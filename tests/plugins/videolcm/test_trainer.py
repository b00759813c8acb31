"""videolcm.distill on the tiny twin: the objective learns, the teacher is untouched, checkpoints resume exactly,
cancel stops at the next step, and the result is a student the VideoLCM generator renders with."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache, MotionInput
from sdk.errors import InvalidRequest, JobCancelled

SMALL = dict(prompt="a dog running", max_train_steps=4, checkpointing_steps=2, validation_steps=2, num_frames=2,
             height=32, width=32, learning_rate=1e-3, lr_scheduler="constant", lr_warmup_steps=0)


def write_video(path: Path, n: int = 10, size: int = 40, seed: int = 0) -> Path:
    import imageio.v2 as imageio

    rng = np.random.default_rng(seed)
    imageio.mimwrite(str(path), [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)], fps=8)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, teacher_weights: Path) -> dict:
    root = tmp_path_factory.mktemp("distill")
    return {"root": root, "teacher": teacher_weights, "video": write_video(root / "clip.mp4"), "cache": ModelCache()}


def run(setup: dict, tmp: Path, *, resume: Path | None = None, resume_step: int = 0, **over) -> list[ev.Event]:
    from plugins.videolcm.params import DistillParams
    from plugins.videolcm.trainer import DistillTrainer

    events: list[ev.Event] = []
    ctx = JobContext("t", events.append, staging_dir=tmp, models=setup["cache"], resume_from=resume, resume_step=resume_step)
    params = DistillParams(**{**SMALL, **over})
    inputs = {} if params.data_dir else {"motion": MotionInput("m", [setup["video"]])}
    req = JobRequest("t", "train", "videolcm.distill", params, seed=0, inputs=inputs, weights=setup["teacher"])
    DistillTrainer().train(ctx, req)
    return events


@pytest.fixture(scope="module")
def first_run(setup: dict) -> list[ev.Event]:
    return run(setup, setup["root"] / "run-a")


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(setup: dict) -> None:
    from plugins.videolcm.params import DistillParams
    from plugins.videolcm.trainer import Distiller, make_optimizer
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.tft2v import load_tft2v_unet

    torch.manual_seed(0)
    teacher = load_tft2v_unet(load_state_dict(setup["teacher"] / "tft2v_t2v_non_ema_tiny.pth"))
    # Adam's first update moves every weight by ~lr (the loss jumps), the next ones descend
    p = DistillParams(**{**SMALL, "learning_rate": 1e-4})
    dist = Distiller(teacher, p, torch.device("cpu"))
    dist.student.eval()  # no dropout: the same batch must give the same loss
    opt, _ = make_optimizer(dist.student, p)
    z0, text, uncond = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 77, 64), torch.randn(1, 77, 64)

    def loss() -> torch.Tensor:
        return dist.loss(z0, text, uncond, torch.Generator().manual_seed(3))

    with torch.no_grad():
        before = float(loss())
    for _ in range(6):
        opt.zero_grad()
        loss().backward()
        opt.step()
        dist.update_target()
    with torch.no_grad():
        after = float(loss())
    assert after < 0.9 * before, (before, after)


def test_training_reports_samples_checkpoints_and_keeps_the_teacher(setup: dict, first_run: list[ev.Event]) -> None:
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.tft2v import vgen_state_dict

    progress = [e for e in first_run if isinstance(e, ev.ProgressUpdated)]
    assert [e.step for e in progress] == [1, 2, 3, 4] and all(np.isfinite(e.metrics["loss"]) for e in progress)
    samples = [e for e in first_run if isinstance(e, ev.PreviewReady)]
    assert [e.step for e in samples] == [2, 4] and samples[0].frames.shape == (2, 32, 32, 3)
    saved = [e for e in first_run if isinstance(e, ev.ArtifactSaved)]
    assert [e.step for e in saved] == [2, 4]
    meta = json.loads((Path(saved[-1].path) / "meta.json").read_text())
    assert meta["kind"] == "videolcm.student" and meta["step"] == 4
    assert Path(meta["base_weights"]) == setup["teacher"].resolve()

    teacher = next(v for v, _ in setup["cache"]._items.values())["teacher"]
    on_disk = load_state_dict(setup["teacher"] / "tft2v_t2v_non_ema_tiny.pth")
    now = vgen_state_dict(teacher)
    assert set(now) == set(on_disk)
    assert all(torch.equal(now[k], on_disk[k]) for k in on_disk), "the teacher's weights must stay bitwise unchanged"


def test_resume_continues_from_the_saved_step_with_the_same_state(setup: dict, first_run: list[ev.Event]) -> None:
    from sdk.ml.checkpoints import load_state_dict

    saved = {e.step: Path(e.path) for e in first_run if isinstance(e, ev.ArtifactSaved)}
    events = run(setup, setup["root"] / "run-b", resume=saved[2], resume_step=2)
    assert [e.step for e in events if isinstance(e, ev.ProgressUpdated)] == [3, 4]
    final = Path(next(e.path for e in events if isinstance(e, ev.ArtifactSaved) and e.step == 4))
    a, b = load_state_dict(saved[4] / "weights.safetensors"), load_state_dict(final / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed training must match the uninterrupted run bit for bit"
    sa = torch.load(saved[4] / "training_state.pt", weights_only=True)
    sb = torch.load(final / "training_state.pt", weights_only=True)
    for i, st in sa["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, sb["optimizer"]["state"][i][k]), (i, k)
    assert sa["optimizer"]["param_groups"] == sb["optimizer"]["param_groups"]


def test_cancel_stops_at_the_next_step(setup: dict, tmp_path: Path) -> None:
    from plugins.videolcm.params import DistillParams
    from plugins.videolcm.trainer import DistillTrainer

    seen: list[ev.Event] = []
    ctx = JobContext("c", seen.append, staging_dir=tmp_path, models=setup["cache"],
                     cancel_flag=lambda: any(isinstance(e, ev.ProgressUpdated) for e in seen))
    req = JobRequest("c", "train", "videolcm.distill", DistillParams(**SMALL), seed=0,
                     inputs={"motion": MotionInput("m", [setup["video"]])}, weights=setup["teacher"])
    with pytest.raises(JobCancelled):
        DistillTrainer().train(ctx, req)
    assert [e.step for e in seen if isinstance(e, ev.ProgressUpdated)] == [1], "no step after the cancel"
    assert not any(isinstance(e, ev.ArtifactSaved) for e in seen)


def test_data_dir_of_video_caption_pairs(setup: dict, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_video(data / "a.mp4", seed=1)
    (data / "a.txt").write_text("waves on a beach")
    events = run(setup, tmp_path / "s", data_dir=str(data), max_train_steps=1, checkpointing_steps=1, validation_steps=5)
    assert [e.step for e in events if isinstance(e, ev.ArtifactSaved)] == [1]
    with pytest.raises(InvalidRequest, match="same-name .txt"):
        run(setup, tmp_path / "s2", data_dir=str(tmp_path / "s"))


def test_the_student_checkpoint_renders_with_videolcm_t2v(first_run: list[ev.Event], tmp_path: Path) -> None:
    from plugins.videolcm.params import VideoLCMParams
    from plugins.videolcm.pipeline import VideoLCMGenerator

    student = Path([e for e in first_run if isinstance(e, ev.ArtifactSaved)][-1].path)
    ctx = JobContext("g", lambda e: None, staging_dir=tmp_path)
    req = JobRequest("g", "generate", "videolcm.t2v",
                     VideoLCMParams(prompt="a dog", num_frames=2, height=32, width=32), seed=1, weights=student)
    video = VideoLCMGenerator().generate(ctx, req)
    assert video.frames.shape == (2, 32, 32, 3)
