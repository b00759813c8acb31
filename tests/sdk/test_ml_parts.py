"""VAE (LDM ↔ diffusers), scheduler presets and VGen timesteps, latent previews, guidance, device choice."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.ml.guidance import apply_cfg
from sdk.ml.preview import latents_to_rgb
from sdk.ml.schedulers import (make_scheduler, preset_from_filename, preset_from_scheduler_config, set_timesteps,
                               vgen_timesteps)


def test_vae_ldm_checkpoint_roundtrip(tmp_path: Path) -> None:
    from sdk.ml.tiny import tiny_vae
    from sdk.ml.vae import LDM_PREFIX, decode_video, diffusers_to_ldm_vae, load_ldm_vae, scale_factor

    vae = tiny_vae(seed=2)
    ldm = diffusers_to_ldm_vae(vae)
    assert "encoder.mid.attn_1.q.weight" in ldm and ldm["encoder.mid.attn_1.q.weight"].ndim == 4
    assert "decoder.up.3.upsample.conv.weight" in ldm and "encoder.down.0.downsample.conv.weight" in ldm
    torch.save({"state_dict": {LDM_PREFIX + k: v for k, v in ldm.items()}, "global_step": 1}, tmp_path / "v.ckpt")
    loaded = load_ldm_vae(tmp_path / "v.ckpt")
    assert scale_factor(loaded) == 8 and loaded.config["scaling_factor"] == 0.18215
    for k, v in vae.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    lat = torch.randn(1, 4, 3, 4, 4)
    a, b = decode_video(loaded, lat, chunk=1), decode_video(loaded, lat)
    assert a.shape == (1, 3, 3, 32, 32) and (a - b).abs().max() < 1e-5


def test_vgen_timesteps() -> None:
    assert vgen_timesteps(50)[:3] == [981, 961, 941] and vgen_timesteps(50)[-1] == 1 and len(vgen_timesteps(50)) == 50
    assert len(vgen_timesteps(30)) == 31 and vgen_timesteps(30)[:2] == [991, 958] and vgen_timesteps(30)[-1] == 1
    assert len(vgen_timesteps(15)) == 16 and vgen_timesteps(15)[:2] == [991, 925]
    s = make_scheduler("modelscope")
    assert set_timesteps(s, 20).tolist() == list(range(951, 0, -50))


def test_presets() -> None:
    ddim = make_scheduler("vgen_t2v")
    c = ddim.config
    assert (c.beta_schedule, c.prediction_type, c.rescale_betas_zero_snr) == ("squaredcos_cap_v2", "v_prediction", True)
    assert (c.timestep_spacing, c.steps_offset, c.set_alpha_to_one, c.clip_sample) == ("leading", 1, False, False)
    ms = make_scheduler("modelscope").config
    assert (ms.beta_schedule, ms.beta_start, ms.beta_end, ms.prediction_type) == ("scaled_linear", 0.00085, 0.012, "epsilon")
    assert make_scheduler("tft2v").config.rescale_betas_zero_snr
    for kind in ("dpmpp", "euler"):
        s = make_scheduler("vgen_t2v", kind)
        assert s.config.prediction_type == "v_prediction" and s.config.beta_schedule == "squaredcos_cap_v2"
        assert len(set_timesteps(s, 5)) >= 5
    assert preset_from_scheduler_config(dict(ms)) == "modelscope"
    assert preset_from_scheduler_config(dict(c)) == "vgen_t2v"
    assert preset_from_filename("model_scope_v1-5_0632000.pth") == "modelscope"
    assert preset_from_filename("tft2v_t2v_non_ema_512000.pth") == "tft2v"
    assert preset_from_filename("model_scope_0267000.pth") == "vgen_t2v"
    with pytest.raises(ValueError):
        make_scheduler("nope")


def test_latents_to_rgb_is_fast_and_uint8() -> None:
    lat = torch.randn(2, 4, 16, 32, 32)
    out = latents_to_rgb(lat)
    assert out.shape == (16, 32, 32, 3) and out.dtype == np.uint8
    assert latents_to_rgb(lat[0]).shape == (16, 32, 32, 3)
    assert latents_to_rgb(lat.to(torch.bfloat16)).dtype == np.uint8
    with pytest.raises(ValueError):
        latents_to_rgb(torch.zeros(3, 2, 2))


def test_guidance_and_device() -> None:
    from sdk.ml.device import resolve_device, resolve_dtype

    pred = torch.cat([torch.zeros(1, 2), torch.ones(1, 2)])
    assert torch.equal(apply_cfg(pred, 9.0), torch.full((1, 2), 9.0))
    cpu = resolve_device("cpu")
    assert resolve_dtype("bf16", cpu) == torch.bfloat16 and resolve_dtype("float32", cpu) == torch.float32
    # fp16 on the CPU is refused (tests/sdk/test_ml_accel.py), "auto" depends on the processor
