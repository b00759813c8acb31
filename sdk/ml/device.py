"""Device / dtype choice and attention backend (SDPA by default; xformers only when importable on CUDA)."""
from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``/"auto" → fp16 on CUDA, fp32 elsewhere. fp16 on CPU is refused (slow, poorly supported) → fp32."""
    if isinstance(dtype, torch.dtype):
        out = dtype
    elif dtype in (None, "", "auto"):
        out = torch.float16 if device.type == "cuda" else torch.float32
    else:
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use float32, float16 or bfloat16")
        out = _DTYPES[dtype]
    if device.type == "cpu" and out == torch.float16:
        return torch.float32
    return out


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


def place(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """``model`` on ``device`` in ``dtype`` (moved only when needed) and in eval mode; ``requires_grad`` untouched."""
    first = next(model.parameters())
    if first.device != device:
        model = model.to(device)
    if first.dtype != dtype:
        model = model.to(dtype)
    return model.eval()
