"""Precision and memory modes as every generator gets them (sdk.ml.memory, sdk.ml.preflight, sdk.ml.runtime), on
the tiny ModelScope T2V twin through its real generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import InvalidRequest, OutOfMemory
from sdk.ml import preflight
from sdk.ml.runtime import plan_runtime, resolve_precision
from sdk.params import validate_params

from plugins.modelscope_t2v.params import T2VParams
from plugins.modelscope_t2v.pipeline import T2VGenerator

PARAMS = {"prompt": "a fox", "num_frames": 3, "height": 32, "width": 32, "num_inference_steps": 2}


def render(weights: Path, tmp: Path, cache: ModelCache, *, dtype: str = "float32", mode: str = "none", **over):
    ctx = JobContext("j", lambda e: None, staging_dir=tmp / "s", models=cache, dtype=dtype, memory_mode=mode)
    req = JobRequest("j", "generate", "modelscope_t2v.t2v", validate_params(T2VParams, {**PARAMS, **over}), seed=3,
                     weights=weights)
    try:
        return T2VGenerator().generate(ctx, req), ctx
    finally:
        ctx.finish()


def test_the_chosen_dtype_reaches_the_unet_weights_and_activations(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    _, ctx = render(tiny_t2v_weights, tmp_path, cache, dtype="bfloat16")
    assert ctx.runtime["unet_dtype"] == "bfloat16" and ctx.runtime["activations_dtype"] == "bfloat16"
    unet = next(cache.value(k) for k in cache.keys if cache.role(k) == "denoiser")
    assert {p.dtype for p in unet.parameters()} == {torch.bfloat16}
    _, ctx32 = render(tiny_t2v_weights, tmp_path, cache, dtype="float32")
    assert ctx32.runtime["unet_dtype"] == "float32" and ctx32.runtime["activations_dtype"] == "float32"


def test_bf16_frames_stay_close_to_fp32(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    a, _ = render(tiny_t2v_weights, tmp_path, cache, dtype="float32")
    b, _ = render(tiny_t2v_weights, tmp_path, cache, dtype="bfloat16")
    mse = np.mean((a.frames.astype(np.float64) - b.frames.astype(np.float64)) ** 2)
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))
    assert psnr > 25, f"bf16 frames are {psnr:.1f} dB from fp32"


def test_lighter_modes_compute_the_same_frames_and_free_the_encoders(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    full, ctx = render(tiny_t2v_weights, tmp_path, cache, mode="none", decode_chunk_size=8)
    assert not ctx.runtime.get("encoders_freed") and cache.misses == 3  # UNet, VAE, text encoder
    for mode in ("balanced", "low", "minimum"):
        light, ctx = render(tiny_t2v_weights, tmp_path, cache, mode=mode, decode_chunk_size=8)
        diff = np.abs(full.frames.astype(int) - light.frames.astype(int)).max()
        assert diff <= 1, f"memory_mode={mode} changed the frames by {diff}/255"
        assert ctx.runtime.get("encoders_freed", False) == (mode in ("low", "minimum"))
    # the encoders freed by the last job are reloaded, not used as empty tensors
    again, _ = render(tiny_t2v_weights, tmp_path, cache, mode="none", decode_chunk_size=8)
    assert np.array_equal(again.frames, full.frames)


def test_fp16_on_the_cpu_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidRequest, match="fp16") as err:
        resolve_precision("fp16", torch.device("cpu"))
    assert "bf16" in err.value.hint and err.value.field == "precision"
    assert resolve_precision("fp32", torch.device("cpu")) == torch.float32


def test_auto_picks_a_lighter_mode_or_refuses_before_anything_loads(tiny_t2v_weights: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    params = validate_params(T2VParams, {**PARAMS, "num_frames": 16, "height": 256, "width": 256})
    payload = {"kind": "generate", "precision": "fp32", "memory_mode": "auto"}
    parts = preflight.components(tiny_t2v_weights)
    est = {m: preflight.estimate(parts, mode=m, device=torch.device("cpu"), dtype=torch.float32, frames=16,
                                 height=256, width=256, cfg=True, decode_chunk=8, available=0).total_bytes
           for m in ("none", "balanced", "low", "minimum")}
    assert est["none"] > est["balanced"] > est["low"] > est["minimum"]

    cache = ModelCache()
    used = preflight._rss()
    # halfway between what low and balanced need: the fastest mode that fits is low (RSS may move meanwhile)
    monkeypatch.setenv("VGEN_MEMORY_BUDGET", str(used + int((est["low"] + est["balanced"]) / 2 * preflight.MARGIN)))
    plan = plan_runtime(payload, params, tiny_t2v_weights, "cpu", cache)
    assert plan.memory_mode == "low" and plan.estimate["total_bytes"] == est["low"]

    monkeypatch.setenv("VGEN_MEMORY_BUDGET", str(used + est["minimum"] // 2))
    with pytest.raises(OutOfMemory, match="memory_mode=minimum") as err:
        plan_runtime(payload, params, tiny_t2v_weights, "cpu", cache)
    assert "available on cpu" in err.value.user_message and "num_frames" in err.value.hint
    assert cache.misses == 0, "nothing was loaded"


def test_a_job_after_a_low_mode_job_reloads_only_the_encoders(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    reference, _ = render(tiny_t2v_weights, tmp_path, ModelCache(), mode="none")
    cache = ModelCache()
    _, ctx = render(tiny_t2v_weights, tmp_path, cache, mode="low")
    assert ctx.runtime["encoders_freed"]
    assert cache.misses_by_role == {"denoiser": 1, "vae": 1, "encoder": 1}
    assert [cache.role(k) for k in cache.keys] == ["denoiser", "vae"], "only the encoder's entry was dropped"
    again, ctx = render(tiny_t2v_weights, tmp_path, cache, mode="none")
    # the text encoder was read again; the UNet and the VAE came from the cache, put back as loaded
    assert cache.misses_by_role == {"denoiser": 1, "vae": 1, "encoder": 2} and cache.hits == 2
    assert not ctx.runtime.get("encoders_freed")
    assert np.array_equal(again.frames, reference.frames)
