"""The three DreamVideo trainers on the tiny twin: the loss falls, only embedding/adapters change, resume, bad inputs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdk import events as ev
from sdk.context import JobContext, JobRequest, MotionInput, SubjectInput
from sdk.errors import InvalidRequest

from plugins.dreamvideo.params import MotionParams, SubjectStep1Params, SubjectStep2Params
from plugins.dreamvideo.trainers import MotionTrainer, SubjectStep1Trainer, SubjectStep2Trainer

from tests.plugins.dreamvideo.conftest import SMALL


def _ctx(tmp: Path, job: str, events: list, **kw) -> JobContext:
    return JobContext(job, events.append, staging_dir=tmp / job, **kw)


def _subject(data, masks=True) -> SubjectInput:
    return SubjectInput("dog", "<dog>", list(data["images"]), list(data["masks"]) if masks else [])


def _fixed_loss(trainer) -> float:
    """The mean loss of 4 fixed batches and noise draws (seeds 0–3)."""
    def one(seed: int) -> float:
        g = torch.Generator().manual_seed(seed)
        return float(trainer.objective(trainer.draw(g), g))

    with torch.no_grad():
        return sum(one(s) for s in range(4)) / 4


def _train_and_measure(trainer, ctx, req) -> tuple[float, float, dict, dict]:
    trainer.prepare(ctx, req)
    base = {k: v.clone() for k, v in trainer.unet.state_dict().items()}
    trainer.setup()
    before = _fixed_loss(trainer)
    try:
        trainer.run()
        after = _fixed_loss(trainer)
    finally:
        trainer.close()
    return before, after, base, trainer.unet.state_dict()


def _assert_base_unchanged(base: dict, now: dict) -> None:
    assert set(now) == set(base)  # adapters detached again
    assert all(torch.equal(base[k], now[k]) for k in base)


@pytest.fixture(scope="module")
def embedding(tmp_path_factory, dv_weights, dv_data) -> Path:
    """Step 1 trained for a few steps (shared by the step-2 and compose tests)."""
    tmp = tmp_path_factory.mktemp("step1")
    events: list = []
    ctx = _ctx(tmp, "s1", events)
    p = SubjectStep1Params(**SMALL, max_train_steps=6, learning_rate=5e-2, checkpointing_steps=3, validation_steps=3)
    before, after, base, now = _train_and_measure(SubjectStep1Trainer(), ctx, JobRequest(
        "s1", "train", "dreamvideo.subject_step1", p, 0, {"subject": _subject(dv_data)}, dv_weights))
    _assert_base_unchanged(base, now)
    return {"path": Path(ctx.artifacts[-1].path), "before": before, "after": after, "events": events}


def test_step1_lowers_the_loss_and_streams_progress_samples_checkpoints(embedding) -> None:
    assert embedding["after"] < embedding["before"]
    events = embedding["events"]
    steps = [e.step for e in events if isinstance(e, ev.ProgressUpdated)]
    assert steps == list(range(1, 7))
    assert all("loss" in e.metrics for e in events if isinstance(e, ev.ProgressUpdated))
    assert [e.step for e in events if isinstance(e, ev.PreviewReady)] == [3, 6]
    saved = [e for e in events if isinstance(e, ev.ArtifactSaved)]
    assert [e.step for e in saved] == [3, 6] and saved[0].meta["kind"] == "dreamvideo.embedding"
    assert saved[0].meta["token"] == "<dog>" and "loss" in saved[0].meta


def test_step2_trains_only_the_identity_adapter(tmp_path, dv_weights, dv_data, embedding) -> None:
    events: list = []
    p = SubjectStep2Params(**SMALL, max_train_steps=4, learning_rate=1e-3, checkpointing_steps=4, validation_steps=4)
    req = JobRequest("s2", "train", "dreamvideo.subject_step2", p, 0,
                     {"subject": _subject(dv_data), "adapters": {"embedding": {"path": str(embedding["path"]), "id": "e"}}},
                     dv_weights)
    before, after, base, now = _train_and_measure(SubjectStep2Trainer(), _ctx(tmp_path, "s2", events), req)
    assert after < before
    _assert_base_unchanged(base, now)
    from plugins.dreamvideo.formats import read_adapter

    f = read_adapter(Path([e for e in events if isinstance(e, ev.ArtifactSaved)][-1].path))
    assert f.kinds == {"identity"} and f.embedding is not None
    assert all(".1.transformer_blocks.0.cross_attn_adapter." in k or "middle_block.1." in k for k in f.adapters)


def test_motion_trains_only_the_motion_adapter_and_resumes(tmp_path, dv_weights, dv_data) -> None:
    events: list = []
    p = MotionParams(**SMALL, max_train_steps=4, learning_rate=1e-3, checkpointing_steps=2, validation_steps=4,
                     num_frames=3, prompt="turning")
    motion = MotionInput("turn", [dv_data["video"]])
    req = JobRequest("m1", "train", "dreamvideo.motion", p, 0, {"motion": motion}, dv_weights)
    before, after, base, now = _train_and_measure(MotionTrainer(), _ctx(tmp_path, "m1", events), req)
    assert after < before
    _assert_base_unchanged(base, now)
    saved = [e for e in events if isinstance(e, ev.ArtifactSaved)]
    assert [e.step for e in saved] == [2, 4] and saved[-1].meta["kind"] == "dreamvideo.motion"

    # a retried job starts after its last checkpoint
    resumed: list = []
    ctx = _ctx(tmp_path, "m1b", resumed, resume_from=Path(saved[0].path), resume_step=2)
    MotionTrainer().train(ctx, req)
    assert [e.step for e in resumed if isinstance(e, ev.ProgressUpdated)] == [3, 4]
    assert any("resumed" in e.message for e in resumed if isinstance(e, ev.LogRecord))


@pytest.mark.parametrize("guidance", [1.0, 0.0])
def test_samples_without_guidance_run_on_the_prompt_alone(tmp_path, dv_weights, dv_data, guidance) -> None:
    """sample_guidance_scale ≤ 1 means no classifier-free guidance: the sample preview runs one batch (it used to
    feed [uncond, cond] text and a doubled appearance condition to a batch of one and fail: 8 vs 16)."""
    events: list = []
    p = MotionParams(**SMALL, max_train_steps=2, learning_rate=1e-3, checkpointing_steps=2, validation_steps=2,
                     num_frames=3, prompt="turning", sample_guidance_scale=guidance)
    req = JobRequest("m2", "train", "dreamvideo.motion", p, 0, {"motion": MotionInput("turn", [dv_data["video"]])},
                     dv_weights)
    MotionTrainer().train(_ctx(tmp_path, "m2", events), req)
    previews = [e for e in events if isinstance(e, ev.PreviewReady)]
    assert previews and previews[-1].step == 2


def test_bad_training_inputs_get_clear_errors(tmp_path, dv_weights, dv_data) -> None:
    p1 = SubjectStep1Params(**SMALL, max_train_steps=1)
    one = SubjectInput("dog", "<dog>", [dv_data["images"][0]], [])
    with pytest.raises(InvalidRequest, match="has 1 image; DreamVideo needs at least 2") as e:
        SubjectStep1Trainer().train(_ctx(tmp_path, "a", []), JobRequest("a", "train", "x", p1, 0, {"subject": one},
                                                                        dv_weights))
    assert e.value.field == "subject"
    bad_mask = SubjectInput("dog", "<dog>", list(dv_data["images"]), [dv_data["small_mask"], None])
    with pytest.raises(InvalidRequest, match="mask of dog0.png is 20×20, the image 48×40"):
        SubjectStep1Trainer().train(_ctx(tmp_path, "b", []), JobRequest("b", "train", "x", p1, 0, {"subject": bad_mask},
                                                                        dv_weights))
    pm = MotionParams(**SMALL, max_train_steps=1, num_frames=2)
    with pytest.raises(InvalidRequest, match="still.mp4 has 1 frame; a motion needs videos of at least 2 frames"):
        MotionTrainer().train(_ctx(tmp_path, "c", []), JobRequest(
            "c", "train", "x", pm, 0, {"motion": MotionInput("still", [dv_data["still"]])}, dv_weights))
    p2 = SubjectStep2Params(**SMALL, max_train_steps=1)
    with pytest.raises(InvalidRequest, match="has no text embedding yet"):
        SubjectStep2Trainer().train(_ctx(tmp_path, "d", []), JobRequest(
            "d", "train", "x", p2, 0, {"subject": _subject(dv_data), "adapters": {"embedding": None}}, dv_weights))


def test_defaults_follow_vgens_configs() -> None:
    """dog2/wolf_plushie step 1 and 2: batch_sizes {"1": 4}; motion: {"32": 1}; all: warm-up 10 then constant."""
    s1, s2, m = SubjectStep1Params(), SubjectStep2Params(), MotionParams()
    assert (s1.train_batch_size, s2.train_batch_size, m.train_batch_size) == (4, 4, 1)
    assert {(x.lr_scheduler, x.lr_warmup_steps) for x in (s1, s2, m)} == {("constant_with_warmup", 10)}
    assert (s1.learning_rate, s2.learning_rate, m.learning_rate) == (1e-4, 1e-5, 1e-5)


def test_the_base_unet_trains_with_vgens_dropout_then_is_restored(tmp_path, dv_weights, dv_data) -> None:
    """VGen calls model.train() every step: its ResBlocks drop with p 0.1 like its temporal convs. The cached base
    UNet is back in eval mode with its own dropout afterwards (generators share it)."""
    from sdk.ml.unet_training import resnet_dropouts

    seen: list[tuple[bool, frozenset[float]]] = []
    p = SubjectStep1Params(**SMALL, max_train_steps=1, checkpointing_steps=1, validation_steps=5)
    trainer = SubjectStep1Trainer()
    trainer.prepare(_ctx(tmp_path, "d", []), JobRequest("d", "train", "dreamvideo.subject_step1", p, 0,
                                                        {"subject": _subject(dv_data)}, dv_weights))
    unet = trainer.unet
    handle = unet.register_forward_pre_hook(
        lambda m, a: seen.append((m.training, frozenset(d.p for d in resnet_dropouts(m)))))
    try:
        trainer.setup()
        trainer.run()
    finally:
        trainer.close()
        handle.remove()
    assert (True, frozenset({0.1})) in seen, seen  # the training step
    assert not unet.training and {d.p for d in resnet_dropouts(unet)} == {0.0}
