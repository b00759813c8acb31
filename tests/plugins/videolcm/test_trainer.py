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
from sdk.errors import CancelRequested, InvalidRequest

SMALL = dict(prompt="a dog running", max_train_steps=4, checkpointing_steps=2, validation_steps=2, num_frames=2,
             height=32, width=32, learning_rate=1e-3, lr_scheduler="constant", lr_warmup_steps=0, train_batch_size=1)


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
    from plugins.videolcm.trainer import Distiller
    from sdk.ml.checkpoints import load_state_dict
    from sdk.ml.concat_unet import load_concat_unet as load_tft2v_unet
    from sdk.ml.training import TrainingConfig, make_optimizer

    torch.manual_seed(0)
    teacher = load_tft2v_unet(load_state_dict(setup["teacher"] / "tft2v_t2v_non_ema_tiny.pth"))
    # Adam's first update moves every weight by ~lr (the loss jumps), the next ones descend
    p = DistillParams(**{**SMALL, "learning_rate": 1e-4})
    dist = Distiller(teacher, p, torch.device("cpu"))
    dist.student.eval()  # no dropout: the same batch must give the same loss
    opt = make_optimizer(dist.student.parameters(), TrainingConfig.from_params(p))
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
    from sdk.ml.concat_unet import vgen_state_dict

    progress = [e for e in first_run if isinstance(e, ev.ProgressUpdated)]
    assert [e.step for e in progress] == [1, 2, 3, 4] and all(np.isfinite(e.metrics["loss"]) for e in progress)
    samples = [e for e in first_run if isinstance(e, ev.PreviewReady)]
    assert [e.step for e in samples] == [2, 4] and samples[0].frames.shape == (2, 32, 32, 3)
    saved = [e for e in first_run if isinstance(e, ev.ArtifactSaved)]
    assert [e.step for e in saved] == [2, 4]
    meta = json.loads((Path(saved[-1].path) / "meta.json").read_text())
    assert meta["kind"] == "videolcm.student" and meta["step"] == 4
    assert Path(meta["base_weights"]) == setup["teacher"].resolve()

    teacher = _teacher(setup)
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
    with pytest.raises(CancelRequested):
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


def _teacher(setup: dict):
    return next(v for k, (v, *_) in setup["cache"]._items.items() if k.startswith("videolcm.distill.teacher"))


@pytest.mark.parametrize("target_eval", [False, True])
def test_teacher_and_target_run_in_train_mode_with_vgens_dropout(setup: dict, first_run, tmp_path: Path,
                                                                 target_eval: bool) -> None:
    """VGen's train_videolcm_t2v never puts its teacher in eval mode and calls target_unet.train() (unless
    set_target_eval): all three UNets drop (resnets 0.1, temporal convs 0.1) while distilling."""
    from sdk.ml.unet_training import resnet_dropouts

    teacher = _teacher(setup)
    # (is the teacher, grad enabled, train mode, resnet dropout p); the student and target are deep copies of the
    # teacher, so they carry the hook too: grad-free calls that are not the teacher's are the target's (or a sample's)
    seen: list[tuple[bool, bool, bool, frozenset[float]]] = []
    handle = teacher.register_forward_pre_hook(lambda m, a, k: seen.append(
        (m is teacher, torch.is_grad_enabled(), m.training, frozenset(d.p for d in resnet_dropouts(m)))),
        with_kwargs=True)
    try:
        run(setup, tmp_path / "r", max_train_steps=1, checkpointing_steps=1, validation_steps=5, target_eval=target_eval)
    finally:
        handle.remove()
    train = not target_eval
    assert {s[1:] for s in seen if s[0]} == {(False, train, frozenset({0.1}))}, "the teacher"
    assert (False, False, train, frozenset({0.1})) in seen, "the target"
    assert (False, True, True, frozenset({0.1})) in seen, "the student"
    assert not teacher.training and {d.p for d in resnet_dropouts(teacher)} == {0.0}, "the cached teacher comes back"


def test_the_students_spatial_gradients_are_halved(setup: dict, first_run) -> None:
    """VGen's Pretrain pretrain_specific_strategies(grad_scale=0.5): a hook on each spatial (SD-2D) parameter."""
    from plugins.videolcm.params import DistillParams
    from plugins.videolcm.trainer import Distiller
    from sdk.ml.training import scaled_gradients
    from sdk.ml.unet_training import spatial_parameters

    z0, text, uncond = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 77, 64), torch.randn(1, 77, 64)

    def grads(scale: float) -> tuple[dict[str, torch.Tensor], set[str]]:
        dist = Distiller(_teacher(setup), DistillParams(**{**SMALL, "spatial_grad_scale": scale}), torch.device("cpu"))
        with dist.vgen_training(), scaled_gradients(dist.gradient_scales()):  # as the training loop applies them
            torch.manual_seed(5)  # the same dropout masks in both runs
            dist.loss(z0, text, uncond, torch.Generator().manual_seed(3)).backward()
        return ({k: p.grad for k, p in dist.student.named_parameters() if p.grad is not None},
                {k for k, _ in spatial_parameters(dist.student)})

    half, spatial = grads(0.5)
    full, _ = grads(1.0)
    assert spatial and set(full) - spatial
    for k, g in full.items():
        assert torch.equal(half[k], g * 0.5 if k in spatial else g), k
