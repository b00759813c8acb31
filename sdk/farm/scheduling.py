"""What a job needs from the device that runs it, and which queued job an executor should take next. Torch-free,
Ray-free: the RenderService asks these through an executor's ``accepts(job)`` and ``affinity``."""
from __future__ import annotations

from typing import Any

#: run options whose values only a CUDA device can run (fp8 matmuls, fp16 kernels CPUs only emulate)
_CUDA_PRECISIONS = ("fp16", "fp8")


def device_requirement(job: Any) -> str | None:
    """``"cuda"`` when ``job`` can only run on a CUDA GPU (its ``device`` option, or a precision only GPUs run),
    else None (any device)."""
    options = getattr(job, "options", None) or {}
    wanted = str(options.get("device") or "").lower()
    if wanted.startswith("cuda") or wanted == "gpu":
        return "cuda"
    if str(options.get("precision") or "").lower() in _CUDA_PRECISIONS:
        return "cuda"
    return None


def requirement_reason(job: Any) -> str:
    """Which option makes ``job`` need a GPU, for messages."""
    options = getattr(job, "options", None) or {}
    if options.get("device"):
        return f"device={options['device']}"
    return f"precision={options.get('precision')}"


def affinity_key(job: Any) -> str | None:
    """The weights a job loads (its weights id or path), compared with an executor's ``affinity``."""
    return getattr(job, "weights", None) or None
