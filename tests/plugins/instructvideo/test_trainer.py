"""instructvideo.reward: only the LoRA trains, the cached base comes back untouched, and a data_dir of captioned clips
trains as a motion does."""
from __future__ import annotations

from pathlib import Path

import torch

from plugins.instructvideo.params import RewardParams
from plugins.instructvideo.pipeline import find_base
from plugins.instructvideo.tiny import write_tiny_clip
from plugins.instructvideo.trainer import RewardTrainer
from sdk import events as ev
from sdk.context import JobContext, JobRequest, ModelCache

SMALL = dict(height=32, width=32, num_frames=4, segments=2, starting_partial=0.15, sample_steps=1, sample_num_frames=1,
             learning_rate=1e-3, max_train_steps=2, checkpointing_steps=2, validation_steps=2)


def test_data_dir_training_changes_only_the_lora(iv_weights: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from sdk.ml import components

    data = tmp_path / "clips"
    data.mkdir()
    for i, caption in enumerate(["a cat walking", "a fish swimming"]):
        write_tiny_clip(data / f"c{i}.mp4", seed=i)
        (data / f"c{i}.txt").write_text(caption)
    cache, events = ModelCache(), []
    ctx = JobContext("t", events.append, staging_dir=tmp_path / "staging", models=cache, kind="train")
    req = JobRequest("t", "train", "instructvideo.reward", RewardParams(data_dir=str(data), **SMALL), seed=0,
                     weights=iv_weights)
    w = find_base(iv_weights)
    unet = components.vgen_unet3d(ctx, w.unet, torch.float32, torch.device("cpu"), config=w.config())
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    RewardTrainer().train(ctx, req)

    assert len([k for k in cache.keys if k.startswith("denoiser")]) == 1, "the trainer trained on this cached UNet"
    after = unet.state_dict()
    assert after.keys() == before.keys(), "the LoRA modules are gone from the cached UNet"
    assert all(torch.equal(after[k], before[k]) for k in before), "the base weights never change"
    assert all(p.requires_grad for p in unet.parameters()) and not unet.training
    (saved,) = [e for e in events if isinstance(e, ev.ArtifactSaved)]
    tensors = load_file(str(Path(saved.path) / "weights.safetensors"))
    assert tensors and all("_lora." in k for k in tensors)
    assert any(k.startswith("input_blocks.0.1.transformer_blocks.0.attn1.to_q_lora.") for k in tensors)
    assert any(float(t.abs().max()) > 0 for k, t in tensors.items() if "up_linear" in k), "the LoRA learned"
    assert saved.meta["captions"] == ["a cat walking", "a fish swimming"]
