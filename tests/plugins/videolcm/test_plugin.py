"""VideoLCM: registration, 4-step LCM defaults and range, the real manifest, the LCM scheduler preset."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import plugins.videolcm as plugin
from plugins.videolcm import vgen_generators, vgen_trainers, vgen_weights
from sdk.errors import InvalidRequest
from sdk.params import validate_params
from sdk.plugins import PluginRegistry
from tests.reference import manifest



def test_registers_generator_trainer_and_weights() -> None:
    reg = PluginRegistry([("videolcm", plugin)])
    assert reg.plugins["videolcm"].error is None
    assert reg.generators["videolcm.t2v"].default_weights == "videolcm.videolcm_t2v"
    trainer = reg.trainers["videolcm.distill"]
    assert trainer.default_weights == "tf_t2v.tft2v_t2v_16f"
    assert not trainer.field("motion").required, "a data_dir replaces the motion"
    assert all("non-commercial" in w.licence and w.repo_id == "iic/tf-t2v" for w in vgen_weights())


def test_lcm_defaults_four_steps_one_to_eight_allowed_no_guidance() -> None:
    spec = vgen_generators()[0]
    p = validate_params(spec.params, {"prompt": "a cat"})
    assert (p.num_inference_steps, p.num_frames, p.height, p.width) == (4, 16, 256, 448)
    assert "Unreal Engine 5" in p.positive_suffix
    for n in (1, 8):
        assert validate_params(spec.params, {"prompt": "a cat", "num_inference_steps": n}).num_inference_steps == n
    for bad in ({"num_inference_steps": 0}, {"num_inference_steps": 9}, {"guidance_scale": 7.5},
                {"negative_prompt": "blurry"}):
        with pytest.raises(InvalidRequest) as info:
            validate_params(spec.params, {"prompt": "a cat", **bad})
        assert info.value.field == next(iter(bad))


def test_distill_defaults_follow_vgen() -> None:
    p = validate_params(vgen_trainers()[0].params, {"prompt": "a dog"})
    assert (p.ema_decay, p.num_ddim_timesteps, p.guidance_scale, p.huber_c, p.learning_rate) == (0.95, 50, 9.0, 0.001, 3e-5)
    assert 1000 // p.num_ddim_timesteps == 20, "skip 20"
    # videolcm_t2v_train.yaml: batch_sizes {"16": 16}; AnnealingLR warm-up 10 then cosine over 1,000,000 steps
    # (constant within any run); no clipping (use_fsdp False); Pretrain grad_scale 0.5 on the spatial keys
    assert (p.train_batch_size, p.lr_scheduler, p.lr_warmup_steps) == (16, "constant_with_warmup", 10)
    assert (p.max_grad_norm, p.spatial_grad_scale, p.target_eval) == (None, 0.5, False)


def test_lcm_scheduler_preset() -> None:
    from sdk.ml.schedulers import make_scheduler, set_timesteps

    s = make_scheduler("tft2v", "lcm")
    assert type(s).__name__ == "LCMScheduler"
    assert (s.config.prediction_type, s.config.beta_schedule, s.config.rescale_betas_zero_snr) == \
        ("v_prediction", "scaled_linear", True)
    assert set_timesteps(s, 4).tolist() == [999, 759, 499, 259]


def test_hook_and_params_modules_do_not_import_torch() -> None:
    code = ("import sys, plugins.videolcm, plugins.videolcm.params;"
            "bad=[m for m in ('torch','diffusers','transformers','open_clip') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_videolcm_manifest_loads_with_nothing_missing_or_unexpected() -> None:
    import torch

    from sdk.ml.checkpoints import check_compatible
    from sdk.ml.concat_unet import ConcatUNet, infer_concat_unet_config, keymap

    m = manifest("videolcm_t2v_unet.json")
    cfg = infer_concat_unet_config(m["params"])
    assert cfg["in_channels"] == 12 and "num_image_tokens" not in cfg
    with torch.device("meta"):
        model = ConcatUNet(**cfg)
    mapped = keymap(model).vgen_to_diffusers({k: torch.empty(v, device="meta") for k, v in m["params"].items()})
    check_compatible(model.state_dict(), mapped, source="videolcm_t2v_unet.json")
    assert sum(p.numel() for p in model.parameters()) == m["total_params"] == 1_411_256_900


def test_student_without_base_weights_is_reported(tmp_path: Path) -> None:
    from plugins.videolcm.pipeline import detect_weights
    from plugins.videolcm.tiny import make_tiny_weights
    from sdk.errors import WeightsMissing

    w = make_tiny_weights(tmp_path / "s", "student")
    assert detect_weights(w).format == "student"
    meta = json.loads((w / "meta.json").read_text())
    (w / "meta.json").write_text(json.dumps(dict(meta, base_weights="gone")))
    with pytest.raises(WeightsMissing, match="base weights"):
        detect_weights(w)


def test_fast_text_to_video_template_queues_videolcm(tmp_path: Path) -> None:
    from sdk.project import Project

    with Project.create(tmp_path / "Fast.vgen", template="fast-text-to-video") as project:
        jobs = project.meta("suggested_jobs")
        assert [j["generator"] for j in jobs] == ["videolcm.t2v"]
        assert len(project.prompts()) == 4
        for pr in project.prompts():
            validate_params(vgen_generators()[0].params, {"prompt": pr.text, **jobs[0]["params"]})
