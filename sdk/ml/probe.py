"""What a worker runs on, as torch sees it: for the worker's ready message, every output's ``meta.json`` and
``vgen doctor``. Plain data only (strings and numbers): nothing torch-typed leaves the worker."""
from __future__ import annotations

import importlib.metadata
from typing import Any

import torch

from sdk.ml.device import resolve_device


def versions() -> dict[str, str]:
    out = {"torch": str(torch.__version__)}
    for dist in ("diffusers", "transformers", "accelerate", "open_clip_torch", "xformers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    from sdk.devices import cpu_info

    return cpu_info().name


def supported_dtypes(device: torch.device) -> list[str]:
    """The precisions worth running on ``device``: fp32 always; bf16 where it runs natively; fp16 on GPUs; int8 where
    torchao or optimum-quanto is installed; fp8 with one of them on CUDA GPUs of compute capability ≥ 8.9."""
    out = ["fp32"]
    if device.type == "cuda":
        out.append("fp16")
        if torch.cuda.is_bf16_supported():
            out.append("bf16")
    elif device.type == "mps":
        out += ["fp16", "bf16"]
    else:
        from sdk.devices import cpu_info

        if cpu_info().native_bf16:
            out.append("bf16")
    from sdk.options import FP8_MIN_CAPABILITY, quant_backends

    if quant_backends():
        out.append("int8")
        if device.type == "cuda" and tuple(torch.cuda.get_device_capability(device)) >= FP8_MIN_CAPABILITY:
            out.append("fp8")
    return out


def attention_backends(device: torch.device) -> list[str]:
    out = ["sdpa"]
    if device.type == "cuda":
        try:
            import xformers.ops  # noqa: F401

            out.append("xformers")
        except ImportError:
            pass
    return out


def memory(device: torch.device) -> dict[str, int]:
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return {"total_bytes": int(total), "free_bytes": int(free)}
    from sdk.devices import cpu_info

    cpu = cpu_info()
    return {"total_bytes": int(cpu.total_bytes), "free_bytes": int(cpu.free_bytes)}


def describe(device: str | torch.device = "auto") -> dict[str, Any]:
    """``{"device", "device_name", "total_bytes", "free_bytes", "dtypes", "attention", "versions"}``."""
    dev = resolve_device(device)
    return {"device": str(dev), "device_name": device_name(dev), **memory(dev), "dtypes": supported_dtypes(dev),
            "attention": attention_backends(dev), "versions": versions()}


def all_devices() -> list[dict[str, Any]]:
    """:func:`describe` of every device torch can use here (each CUDA device, MPS, the CPU)."""
    devs = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    devs.append("cpu")
    return [describe(d) for d in devs]
