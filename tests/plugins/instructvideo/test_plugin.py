"""InstructVideo: registration, VGen's defaults, the real LoRA UNet manifest (2008 tensors) on the meta device."""
from __future__ import annotations

from pathlib import Path

import pytest

import plugins.instructvideo as plugin
from plugins.instructvideo import vgen_generators, vgen_trainers, vgen_weights
from sdk.errors import InvalidRequest
from sdk.params import validate_params
from sdk.plugins import PluginRegistry
from tests.reference import manifest


def test_registers_generator_trainer_and_weights() -> None:
    reg = PluginRegistry([("instructvideo", plugin)])
    assert reg.plugins["instructvideo"].error is None
    gen = reg.generators["instructvideo.t2v"]
    assert gen.default_weights == "instructvideo.modelscope_v1_4"
    assert gen.field("adapter").adapter_kind == "instructvideo.lora"
    assert reg.trainers["instructvideo.reward"].default_weights == "instructvideo.modelscope_v1_4"
    (w,) = vgen_weights()
    assert w.repo_id == "iic/InstructVideo" and w.source == "modelscope" and "non-commercial" in w.licence
    assert {f.path for f in w.files} >= {"model_scope_v1-4_0600000.pth",
                                          "instructvideo-finetuned/ddim20_1102-18-52_non_ema_0620000.pth"}


def test_generator_defaults_are_instructvideos() -> None:
    p = validate_params(vgen_generators()[0].params, {"prompt": "a cat"})
    assert (p.num_inference_steps, p.guidance_scale, p.negative_prompt, p.height, p.width, p.num_frames) == \
        (20, 3.0, "", 256, 256, 16)
    assert (p.lora, p.lora_scale, p.offset_noise) == ("released", 1.0, 0.0)
    p50 = validate_params(vgen_generators()[0].params, {"prompt": "a", "num_inference_steps": 50})
    assert p50.num_inference_steps == 50
    with pytest.raises(InvalidRequest, match="num_inference_steps"):
        validate_params(vgen_generators()[0].params, {"prompt": "a", "num_inference_steps": 30})


def test_explicit_step_lists_are_vgens() -> None:
    from plugins.instructvideo.pipeline import STEP_LISTS, ddim_scheduler

    assert STEP_LISTS[20][0] == 951 and STEP_LISTS[20][-12] == 551 and STEP_LISTS[20][-1] == 1
    assert STEP_LISTS[50][:3] == [981, 961, 941] and len(STEP_LISTS[50]) == 50 and STEP_LISTS[50][-1] == 1
    for n in (20, 50):
        assert ddim_scheduler(n, "cpu")[1].tolist() == STEP_LISTS[n]


def test_reward_params_need_captions(tmp_path: Path) -> None:
    spec = vgen_trainers()[0]
    with pytest.raises(InvalidRequest, match="caption"):
        validate_params(spec.params, {})
    with pytest.raises(InvalidRequest, match="data_dir"):
        validate_params(spec.params, {"data_dir": str(tmp_path)})  # no video + .txt pairs
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.txt").write_text("a cat walking")
    assert validate_params(spec.params, {"data_dir": str(tmp_path)}).data_dir == str(tmp_path)
    p = validate_params(spec.params, {"prompt": "a cat"})
    assert (p.learning_rate, p.segments, p.lambda_tar, p.starting_partial, p.guidance_scale, p.noise_offset) == \
        (1e-5, 4, 1.0, 0.6, 3.0, 0.1)


def test_lora_unet_maps_the_instructvideo_manifest_exactly() -> None:
    """UNet3DConditionModel (real size, meta device) + our LoRA ↔ VGen's UNetSD_LoRA: 2008 keys, same shapes."""
    import torch
    from diffusers import UNet3DConditionModel

    from plugins.instructvideo.lora import LoRALayers
    from sdk.ml.checkpoints import check_compatible
    from sdk.ml.convert import KeyMap, infer_unet3d_config

    m = manifest("instructvideo_lora_unet.json")
    params = {k: tuple(v) for k, v in m["params"].items()}
    assert len(params) == 2008
    cfg = infer_unet3d_config({k: v for k, v in params.items() if "_lora." not in k})
    with torch.device("meta"):
        unet = UNet3DConditionModel(**cfg)
    layers = LoRALayers(unet)
    ours = KeyMap.for_model(unet).diffusers_to_vgen({k: v for k, v in unet.state_dict().items()})
    check_compatible(params, ours, source="our LoRA UNet", target="UNetSD_LoRA (manifest)")
    lora = [k for k in ours if "_lora." in k]
    assert len(lora) == 528 and sum(v.numel() for k, v in ours.items() if k in lora) == m["lora_params"]
    assert len(layers.keys()) == 528
