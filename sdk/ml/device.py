"""Device / dtype choice, placing a model (cast tensor by tensor, then the CPU fast path of :mod:`sdk.ml.accel`),
and the attention backend (SDPA by default; xformers only when importable on CUDA)."""
from __future__ import annotations

import torch

from sdk.errors import InvalidRequest
from sdk.options import FP8_MIN_CAPABILITY, PRECISIONS, QUANTIZED

__all__ = ["PRECISIONS", "QUANTIZED", "resolve_device", "resolve_dtype", "compute_dtype", "configure_attention",
           "place", "convert_"]
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The job's ``precision`` (``auto|fp32|bf16|fp16|int8|fp8``, or a torch name such as "float32") as the torch
    dtype the models compute in.

    "auto" (also None or ""): fp16 on CUDA; bf16 on MPS; on the CPU bf16 where the processor runs it natively
    (AMX-BF16, :func:`sdk.ml.accel.cpu_bf16_native`), else fp32. int8/fp8 (weight-only quantized denoiser): the
    compute dtype of :func:`compute_dtype`. Raises :class:`InvalidRequest` (field ``precision``) for an unknown name,
    for fp16 on the CPU, which the CPU cannot run fast or safely, and for fp8 where the device has no fp8."""
    if isinstance(dtype, str) and dtype.strip().lower() in QUANTIZED:
        return compute_dtype(dtype.strip().lower(), device)
    if isinstance(dtype, torch.dtype):
        out = dtype
    elif dtype in (None, "", "auto"):
        if device.type == "cuda":
            out = torch.float16
        elif device.type == "cpu":
            from sdk.ml.accel import cpu_bf16_native

            out = torch.bfloat16 if cpu_bf16_native() else torch.float32
        else:
            out = torch.bfloat16 if device.type == "mps" else torch.float32
    else:
        key = str(dtype).strip().lower().removeprefix("torch.")
        if key not in _DTYPES:
            raise InvalidRequest(f"Unknown precision {dtype!r}.", hint="Use one of: " + ", ".join(PRECISIONS) + ".",
                                 field="precision")
        out = _DTYPES[key]
    if device.type == "cpu" and out == torch.float16:
        raise InvalidRequest(
            f"precision {dtype!r} (float16) is not supported on the CPU.",
            hint="Use precision=auto (bf16 where the processor runs it natively, else fp32), bf16 or fp32 on the CPU; "
                 "fp16 needs a GPU.", field="precision")
    return out


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype a quantized (``int8``/``fp8``) job computes in: bf16 — on the CPU (torchao's int8 weight-only
    kernels dequantize to it) and on CUDA GPUs that run bf16 (Ampere and later); fp16 on older CUDA GPUs. fp8 needs a
    CUDA device of compute capability ≥ 8.9: :class:`InvalidRequest` elsewhere."""
    if precision == "fp8":
        cap = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        if cap is None or tuple(cap) < FP8_MIN_CAPABILITY:
            where = f"{device} (compute capability {cap[0]}.{cap[1]})" if cap else str(device)
            raise InvalidRequest(f"precision 'fp8' cannot run on {where}: fp8 weights need a CUDA GPU of compute "
                                 "capability 8.9 or newer.", hint="Use precision int8 or bf16 here.",
                                 field="precision")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def configure_attention(model: torch.nn.Module, device: torch.device) -> str:
    """Use xformers on CUDA when installed; otherwise keep diffusers' default (SDPA). Returns the backend name."""
    if device.type == "cuda":
        try:
            import xformers.ops  # noqa: F401
        except ImportError:
            return "sdpa"
        try:
            model.enable_xformers_memory_efficient_attention()
            return "xformers"
        except Exception:  # pragma: no cover - depends on the install
            return "sdpa"
    return "sdpa"


def place(model: torch.nn.Module, device: torch.device, dtype: torch.dtype, *,
          accel: bool | None = None) -> torch.nn.Module:
    """``model`` on ``device`` in ``dtype``, in eval mode, with the fast path of :func:`sdk.ml.accel.optimize`
    (big models on the CPU; ``accel`` overrides ``$VGEN_ACCEL``); ``requires_grad`` untouched.

    Tensors are moved/cast one at a time, and the pages of a memory-mapped source are given back after its copy
    (:mod:`sdk.ml.process_memory`): loading an fp32 checkpoint into a bf16 model never holds both."""
    from sdk.ml.accel import optimize

    convert_(model, device, dtype)
    return optimize(model.eval(), device, dtype, enable=accel)


def convert_(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """In place: every floating-point parameter and buffer to ``dtype`` and every tensor to ``device``, tensor by
    tensor (as ``model.to(device, dtype)``, which keeps Parameter objects), releasing memory-mapped sources."""
    from sdk.ml.process_memory import byte_range, file_mappings, release_ranges

    device = torch.device(device)
    todo = []
    for mod in model.modules():
        for name, p in mod._parameters.items():
            if p is not None:
                todo.append((mod, name, p, True))
        for name, b in mod._buffers.items():
            if b is not None:
                todo.append((mod, name, b, False))
    maps = file_mappings() if any(t.device.type == "cpu" for _, _, t, _ in todo) else []
    seen: set[int] = set()
    for mod, name, t, is_param in todo:
        if id(t) in seen:  # shared (tied) tensors are converted once
            continue
        seen.add(id(t))
        want = dtype if t.is_floating_point() else t.dtype
        if t.device == device and t.dtype == want:
            continue
        src = byte_range(t) if t.device.type == "cpu" and t.is_contiguous() else None
        new = t.detach().to(device=device, dtype=want)
        if is_param:
            t.data = new
        else:
            mod._buffers[name] = new
        if src is not None and maps:
            release_ranges([src], maps)
    return model
