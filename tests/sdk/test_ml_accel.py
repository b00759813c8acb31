"""Precision rules, the CPU fast path's switch (tiny twins stay eager), its numerics on a tiny UNet, the worker
environment, and the memory behaviour of placing memory-mapped weights. torch.compile itself is not run here
(it takes minutes on 2 cores even at tiny size); benchmarks/realsize_cpu.py measures it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdk.errors import InvalidRequest
from sdk.ml import accel
from sdk.ml.device import place, resolve_dtype
from sdk.ml.tiny import tiny_unet3d

CPU = torch.device("cpu")


def test_precision_rules() -> None:
    native = accel.cpu_bf16_native()
    assert resolve_dtype("auto", CPU) == (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype(None, CPU) == resolve_dtype("", CPU) == resolve_dtype("auto", CPU)
    assert resolve_dtype("bf16", CPU) == resolve_dtype("bfloat16", CPU) == torch.bfloat16
    assert resolve_dtype("fp32", CPU) == resolve_dtype("float32", CPU) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("fp16", torch.device("cuda")) == torch.float16
    for bad in ("fp16", "float16", torch.float16):
        with pytest.raises(InvalidRequest) as info:
            resolve_dtype(bad, CPU)
        assert info.value.field == "precision" and "GPU" in info.value.hint
    with pytest.raises(InvalidRequest) as info:
        resolve_dtype("int4", CPU)  # int8 is a precision now (issue 15): a weight-only quantized denoiser
    assert info.value.field == "precision" and "auto, fp32, bf16, fp16, int8, fp8" in info.value.hint
    assert resolve_dtype("int8", CPU) == torch.bfloat16


def test_bf16_is_native_only_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "amx_bf16", lambda: False)
    assert resolve_dtype("auto", CPU) == torch.float32  # AVX512-BF16 alone runs bf16 slower than fp32
    monkeypatch.setattr(accel, "amx_bf16", lambda: True)
    assert resolve_dtype("auto", CPU) == torch.bfloat16


def test_fast_path_is_off_for_tiny_models_and_switchable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(accel.ENV, raising=False)
    unet = place(tiny_unet3d(0), CPU, torch.float32)
    assert accel.applied(unet) == {} and "forward" not in vars(unet)  # tiny twins stay eager
    assert accel.wanted(torch.nn.Linear(4, 4), CPU) is False
    monkeypatch.setenv(accel.ENV, "1")
    assert accel.wanted(torch.nn.Linear(4, 4), CPU) is True
    assert accel.wanted(torch.nn.Linear(4, 4), torch.device("cuda")) is False  # the CPU path only
    assert accel.wanted(torch.nn.Linear(4, 4), CPU, enable=False) is False  # an argument beats the variable
    monkeypatch.setenv(accel.ENV, "off")
    assert accel.wanted(torch.nn.Linear(4, 4), CPU, enable=True) is True
    assert accel.mode() == "off"


def test_auto_leaves_big_fp32_models_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto compiles a big model only in bf16/fp16: in fp32 it was measured slower than eager (architecture.md)."""
    monkeypatch.delenv(accel.ENV, raising=False)
    monkeypatch.setattr(accel, "MIN_PARAMS", 10)
    big = torch.nn.Linear(8, 8)
    assert accel.wanted(big, CPU, dtype=torch.float32) is False
    assert accel.wanted(big, CPU, dtype=torch.bfloat16) is True
    assert accel.wanted(big, CPU) is False  # the module's own dtype: fp32
    assert accel.wanted(big, CPU, enable=True, dtype=torch.float32) is True  # VGEN_ACCEL=1 still forces it


def _unet_out(unet: torch.nn.Module, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 4, 16, 16, generator=g).to(dtype)
    e = torch.randn(2, 77, 64, generator=g).to(dtype)
    with torch.inference_mode():
        return unet(x, 981, encoder_hidden_states=e).sample.float()


def test_forced_fast_path_keeps_results_on_a_tiny_unet() -> None:
    ref = _unet_out(place(tiny_unet3d(0), CPU, torch.float32, accel=False), torch.float32)
    fast = accel.optimize(place(tiny_unet3d(0), CPU, torch.float32, accel=False), CPU, torch.float32,
                          enable=True, compile=False)
    assert accel.applied(fast)["channels_last"]
    conv = fast.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert (_unet_out(fast, torch.float32) - ref).abs().max() <= 1e-5 * ref.abs().max()  # layout only: fp32 rounding
    bf16 = place(tiny_unet3d(0), CPU, torch.bfloat16, accel=False)
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())  # cast, not autocast
    out = _unet_out(bf16, torch.bfloat16)
    rel = ((out - ref).norm() / ref.norm()).item()
    assert rel < 0.05, f"bf16 UNet output {rel:.3f} relative error from fp32"


def test_compiled_forward_falls_back_to_eager_when_the_model_changes() -> None:
    unet = place(tiny_unet3d(0), CPU, torch.float32, accel=False)
    before = accel.fingerprint(unet)
    handle = unet.down_blocks[0].register_forward_hook(lambda m, i, o: None)  # e.g. an adapter attached for a job
    assert accel.fingerprint(unet) != before
    handle.remove()
    assert accel.fingerprint(unet) == before
    with torch.no_grad():
        unet.conv_in.weight.mul_(1.0)  # modified in place: frozen weights would be stale
    assert accel.fingerprint(unet) != before


def test_the_memory_modes_hook_keeps_the_compiled_path() -> None:
    """A job's memory mode hooks its denoiser after the loader placed (and compiled) it; that hook only reads the
    call, so the compiled forward must stay in use (it once sent every fast-path denoiser back to eager)."""
    from sdk.ml import memory

    unet = place(tiny_unet3d(0), CPU, torch.float32, accel=False)
    before = accel.fingerprint(unet)
    end = memory.attach({"unet": unet}, mode="balanced", device=CPU, runtime={})
    assert accel.fingerprint(unet) == before
    end()


def test_worker_env_tunes_malloc_unless_off() -> None:
    from sdk.executor import worker_env

    env = worker_env({"PATH": "/bin"})
    if env.keys() != {"PATH"}:  # Linux
        assert env["MALLOC_TRIM_THRESHOLD_"] and env["MALLOC_MMAP_THRESHOLD_"] == str(32 * 1024 * 1024)
    assert worker_env({"MALLOC_ARENA_MAX": "1"})["MALLOC_ARENA_MAX"] == "1"  # what the user set wins
    assert worker_env({accel.ENV: "0"}) == {accel.ENV: "0"}
    assert "MALLOC_ARENA_MAX" not in worker_env({"PATH": "/bin"}, device="cuda:0")


def test_placing_mapped_fp32_weights_in_bf16_never_holds_both(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from sdk.ml.checkpoints import empty_model, load_into, load_state_dict
    from sdk.ml.process_memory import reset_peak, rss

    def factory() -> torch.nn.Module:
        return torch.nn.Sequential(*[torch.nn.Linear(1024, 2048) for _ in range(24)])

    ref = factory()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "w.safetensors"))
    fp32 = sum(p.numel() for p in ref.parameters()) * 4
    del ref
    reset_peak()
    before = rss()["rss"]
    model = load_into(empty_model(factory), load_state_dict(tmp_path / "w.safetensors"))
    model = place(model, CPU, torch.bfloat16)
    grown = rss()["peak"] - before
    assert grown < 1.3 * fp32 / 2, f"peak grew {grown / 2**20:.0f} MB; bf16 weights are {fp32 / 2**21:.0f} MB"
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    again = load_state_dict(tmp_path / "w.safetensors")  # the released pages read back from the file intact
    assert torch.equal(model[5].weight, again["5.weight"].to(torch.bfloat16))


def test_channels_last_of_a_mapped_fp32_model_does_not_double_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    from sdk.ml.checkpoints import empty_model, load_into, load_state_dict
    from sdk.ml.process_memory import reset_peak, rss

    def factory() -> torch.nn.Module:
        return torch.nn.Sequential(*[torch.nn.Conv2d(256, 256, 3) for _ in range(16)])  # 9.4 MB each

    ref = factory()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "c.safetensors"))
    size = sum(p.numel() for p in ref.parameters()) * 4
    del ref
    import torch._inductor.config as ic

    monkeypatch.setenv(accel.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))  # restored after the test
    monkeypatch.setattr(ic, "freezing", ic.freezing)
    accel.configure_inductor()  # its import is not what is measured
    reset_peak()
    before = rss()["rss"]
    model = place(load_into(empty_model(factory), load_state_dict(tmp_path / "c.safetensors")), CPU, torch.float32,
                  accel=True)  # forced on: the weights are re-laid out channels-last (compiled only when called)
    assert model[3].weight.is_contiguous(memory_format=torch.channels_last)
    grown = rss()["peak"] - before
    assert grown < 1.6 * size, f"peak grew {grown / 2**20:.0f} MB for {size / 2**20:.0f} MB of weights"
