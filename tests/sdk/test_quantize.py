"""precision=int8/fp8 (sdk.ml.quantize): the denoiser every generator loads with role="denoiser" is weight-only
quantized, cached apart from the bf16 one, survives the offload hooks the memory modes use, and the preflight counts
what it really holds. On the tiny ModelScope T2V twin through its real generator."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from sdk import options
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.errors import InvalidRequest, OutOfMemory
from sdk.ml import device as mldevice
from sdk.ml import preflight, quantize, runtime
from sdk.ml.cogvideox_twin import HUB_2B_TRANSFORMER as COGVIDEOX_2B  # the hub's transformer/config.json
from sdk.params import validate_params

from plugins.modelscope_t2v.params import T2VParams
from plugins.modelscope_t2v.pipeline import T2VGenerator

PARAMS = {"prompt": "a fox", "num_frames": 3, "height": 32, "width": 32, "num_inference_steps": 2}


def render(weights: Path, tmp: Path, cache: ModelCache, *, quant: str = "none", mode: str = "none",
           device: str = "cpu"):
    ctx = JobContext("j", lambda e: None, staging_dir=tmp / "s", models=cache, dtype="bfloat16", memory_mode=mode,
                     quantization=quant, device=device)
    req = JobRequest("j", "generate", "modelscope_t2v.t2v", validate_params(T2VParams, PARAMS), seed=3,
                     weights=weights)
    try:
        return T2VGenerator().generate(ctx, req), ctx
    finally:
        ctx.finish()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def denoisers(cache: ModelCache) -> dict[str, torch.nn.Module]:
    return {k: cache.value(k) for k in cache.keys if cache.role(k) == "denoiser"}


def test_int8_and_fp8_are_precisions_everywhere_with_one_source() -> None:
    assert mldevice.PRECISIONS is options.PRECISIONS and runtime.PRECISIONS is options.PRECISIONS
    assert {"int8", "fp8"} <= set(options.PRECISIONS)
    assert options.validate_options({"precision": "INT8"})["precision"] == "int8"
    # int8 computes in bf16 on the CPU
    assert runtime.resolve_precision("int8", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(InvalidRequest, match="fp8") as err:
        runtime.resolve_precision("fp8", torch.device("cpu"))
    assert err.value.field == "precision" and "int8" in err.value.hint
    from app.dialogs.settings import PRECISION_HELP

    assert set(PRECISION_HELP) == set(options.PRECISIONS)


@pytest.mark.skipif(bool(options.fp8_gpus()), reason="this machine has an fp8 GPU")
def test_fp8_without_an_fp8_gpu_is_refused_at_queue_time() -> None:
    with pytest.raises(InvalidRequest, match="compute capability 8.9") as err:
        options.validate_options({"precision": "fp8"})
    assert err.value.field == "precision" and "int8" in err.value.hint


FAKE_SMI = """#!/bin/sh
case "$*" in
  *compute_cap*) printf '0, 8.6\n1, 9.0\n' ;;
  *) printf '0, NVIDIA RTX A6000, 49140, 48000\n1, NVIDIA H100, 81559, 80000\n' ;;
esac
"""


def test_fp8_is_allowed_only_on_gpus_of_compute_capability_8_9(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What nvidia-smi reports decides, torch-free: an A6000 (8.6) and an H100 (9.0), renumbered as
    CUDA_VISIBLE_DEVICES renumbers them (a stand-in nvidia-smi answers the two queries)."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    for visible, want in ((None, ("cuda:1",)), ("1", ("cuda:0",)), ("0", ())):
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        options.fp8_gpus.cache_clear()
        assert options.fp8_gpus() == want, visible
    options.fp8_gpus.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert options.validate_options({"precision": "fp8"})["precision"] == "fp8"
    options.fp8_gpus.cache_clear()


def test_the_int8_denoiser_is_cached_apart_and_renders_close_to_bf16(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    bf16, ctx = render(tiny_t2v_weights, tmp_path, cache)
    assert "quantized" not in ctx.runtime
    int8, ctx = render(tiny_t2v_weights, tmp_path, cache, quant="int8")
    info = ctx.runtime["quantized"]
    assert info["backend"] == "torchao" and info["layers"] > 50
    # two denoisers: the int8 one under its own key, never the bf16 one quantized in place
    dens = denoisers(cache)
    assert len(dens) == 2 and sum(k.endswith("|q=int8") for k in dens) == 1
    for key, unet in dens.items():
        quantized = [is_traceable_wrapper_subclass(m.weight) for m in unet.modules() if isinstance(m, torch.nn.Linear)]
        assert all(quantized) if key.endswith("|q=int8") else not any(quantized)
    # the int8 denoiser holds far fewer bytes, and the cache counts what it holds
    plain, q = (cache.sizes[k] for k in sorted(dens, key=lambda k: k.endswith("|q=int8")))
    assert q == info["weights_bytes"] < plain
    assert psnr(bf16.frames, int8.frames) > 25, "int8 frames drifted from bf16"
    assert not np.array_equal(bf16.frames, int8.frames)  # the weights really changed
    # later jobs of each precision hit their own entry, and a bf16 job after int8 is exact again
    misses = cache.misses
    again, ctx = render(tiny_t2v_weights, tmp_path, cache)
    assert np.array_equal(again.frames, bf16.frames) and "quantized" not in ctx.runtime
    again8, ctx = render(tiny_t2v_weights, tmp_path, cache, quant="int8")
    assert np.array_equal(again8.frames, int8.frames) and ctx.runtime["quantized"]["backend"] == "torchao"
    assert cache.misses == misses


def test_only_the_denoiser_is_quantized_whatever_way_it_is_cached(tmp_path: Path) -> None:
    def linear() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)).to(torch.bfloat16)

    def held(m: torch.nn.Module) -> bool:
        return all(is_traceable_wrapper_subclass(x.weight) for x in m)

    ctx = JobContext("j", lambda e: None, staging_dir=tmp_path, dtype="bfloat16", quantization="int8")
    den = ctx.models.get("den", linear, role="denoiser")
    vae, enc = ctx.models.get("vae", linear, role="vae"), ctx.models.get("enc", linear, role="encoder")
    mixed = ctx.models.get("mine", lambda: {"transformer": linear(), "text_encoder": linear()})
    plain = ctx.models.get("loose", linear)  # a lone module cached without a role is not taken for a denoiser
    ctx.finish()
    assert held(den) and held(mixed["transformer"])
    assert not any(is_traceable_wrapper_subclass(x.weight) for m in (vae, enc, mixed["text_encoder"], plain) for x in m)
    assert {"den|q=int8", "mine|q=int8", "vae", "enc"} <= set(ctx.models.keys)


@pytest.mark.slow
def test_int8_composes_with_every_memory_mode_on_the_cpu(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    # each mode against bf16 in the same mode: minimum's sliced attention rounds differently from SDPA in bf16
    # (~31 dB from mode none without any quantization), so the modes are not compared with each other
    cache = ModelCache()
    for mode in ("none", "balanced", "low", "minimum"):
        ref, _ = render(tiny_t2v_weights, tmp_path, cache, mode=mode)
        out, ctx = render(tiny_t2v_weights, tmp_path, cache, quant="int8", mode=mode)
        assert ctx.runtime["quantized"]["layers"] > 0 and ctx.runtime.get("encoders_freed", False) == (
            mode in ("low", "minimum"))
        assert psnr(ref.frames, out.frames) > 25, f"int8 in memory_mode={mode} drifted from bf16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("quant", ["int8", "fp8"])
def test_quantized_denoiser_on_cuda_in_every_memory_mode(tiny_t2v_weights: Path, tmp_path: Path, quant: str) -> None:
    """The GPU offload paths for real: model offload (balanced) and diffusers' group offload (low, minimum)."""
    if quant == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability 8.9")
    cache = ModelCache()
    for mode in ("none", "balanced", "low", "minimum"):
        ref, _ = render(tiny_t2v_weights, tmp_path, cache, mode=mode, device="cuda")
        out, ctx = render(tiny_t2v_weights, tmp_path, cache, quant=quant, mode=mode, device="cuda")
        assert ctx.runtime["quantized"]["layers"] > 0
        assert psnr(ref.frames, out.frames) > 25, f"{quant} in memory_mode={mode} drifted from bf16 on CUDA"


def _tiny_unet(folder: Path) -> torch.nn.Module:
    from diffusers import UNet3DConditionModel

    return UNet3DConditionModel.from_pretrained(folder / "unet").to(torch.bfloat16).eval()


def _unet_call(unet: torch.nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 2, 4, 4, generator=g).to(torch.bfloat16)
    text = torch.randn(1, 5, unet.config.cross_attention_dim, generator=g).to(torch.bfloat16)
    with torch.no_grad():
        return unet(x, torch.tensor([10]), encoder_hidden_states=text).sample.float()


def test_quantized_weights_survive_the_offload_hooks_of_the_memory_modes(tiny_t2v_weights: Path) -> None:
    """The code paths the GPU modes take, run with the CPU as both devices: diffusers' group offload (low/minimum),
    accelerate's cpu_offload (weights kept off the module, on the meta device, put back for each call)."""
    from accelerate import cpu_offload
    from accelerate.hooks import remove_hook_from_module

    unet = _tiny_unet(tiny_t2v_weights)
    quantize.quantize_module(unet, "int8", "cpu")
    want = _unet_call(unet)
    assert is_traceable_wrapper_subclass(unet.down_blocks[0].attentions[0].proj_in.weight)

    unet.enable_group_offload(onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                              offload_type="block_level", num_blocks_per_group=1)
    assert torch.equal(_unet_call(unet), want)

    other = _tiny_unet(tiny_t2v_weights)
    quantize.quantize_module(other, "int8", "cpu")
    cpu_offload(other, execution_device=torch.device("cpu"))
    assert torch.equal(_unet_call(other), want)
    remove_hook_from_module(other, recurse=True)


def test_preflight_counts_the_int8_bytes_the_denoiser_really_holds(tiny_t2v_weights: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    render(tiny_t2v_weights, tmp_path, cache, quant="int8")
    (key,) = [k for k in denoisers(cache) if k.endswith("|q=int8")]
    parts = {c.role: c for c in preflight.components(tiny_t2v_weights)}
    assert parts["denoiser"].bytes_at(2, "int8") == quantize.weight_bytes(cache.value(key))
    assert parts["vae"].bytes_at(2, "int8") == parts["vae"].bytes_at(2)  # only the denoiser is quantized


# -- a real-size CogVideoX-2B transformer, as its safetensors header says -----------------------------------------
def _header_only_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str = "BF16") -> None:
    """A safetensors file with the real header and a sparse (unwritten) data section of the right length."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        n = int(np.prod(shape)) * 2
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def test_auto_mode_uses_the_quantized_size_of_a_real_size_cogvideox_2b(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import CogVideoXTransformer3DModel

    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**COGVIDEOX_2B)
    folder = tmp_path / "cogvideox-2b"
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "transformer" / "config.json").write_text(json.dumps(COGVIDEOX_2B))
    _header_only_safetensors(folder / "transformer" / "diffusion_pytorch_model.safetensors",
                             {k: tuple(v.shape) for k, v in model.state_dict().items()})
    (den,) = preflight.components(folder)
    assert 1.6e9 < den.numel < 1.8e9  # CogVideoX-2B's 1.69 B parameters
    linear = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert den.linear_numel == sum(m.weight.numel() for m in linear.values())  # exactly what torchao quantizes
    assert den.linear_rows == sum(m.weight.shape[0] for m in linear.values())
    bf16, int8 = den.bytes_at(2), den.bytes_at(2, "int8")
    assert int8 == bf16 - den.linear_numel + 5 * den.linear_rows and int8 < 0.56 * bf16

    # a budget between the two: bf16 fits in no mode on the CPU, int8 runs with everything resident
    kw = dict(device=torch.device("cpu"), dtype=torch.bfloat16, frames=2, height=64, width=64, cfg=False,
              decode_chunk=1)
    monkeypatch.setenv("VGEN_MEMORY_BUDGET", str(preflight._rss() + int((bf16 + int8) / 2)))
    with pytest.raises(OutOfMemory):
        preflight.choose_mode("auto", [den], **kw)
    mode, est = preflight.choose_mode("auto", [den], quantization="int8", **kw)
    assert mode == "none" and est.weights_bytes == int8
