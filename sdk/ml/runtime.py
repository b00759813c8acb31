"""Per job, inside the worker: which dtype and memory mode to run in, decided before anything loads.

``precision`` (``auto|fp32|bf16|fp16|int8|fp8``) and ``memory_mode`` (``auto|none|balanced|low|minimum``) come with the job.
``auto`` precision is fp16 on CUDA (bf16 on CUDA devices that run it, when the spec asks for it), bf16 on an MPS
device and on CPUs that run bf16 natively (AMX-BF16; not AVX512-BF16 alone, where bf16 is slower than fp32), fp32 on other CPUs. fp16 on a CPU is refused: it is
emulated there, slower than fp32 and less exact than bf16. ``int8``/``fp8`` compute in bf16 (fp16 on CUDA GPUs
without bf16) with the denoiser's Linear weights quantized when it loads (:mod:`sdk.ml.quantize`). ``auto`` memory mode is the fastest mode the preflight
(:mod:`sdk.ml.preflight`) finds room for; nothing fitting fails the job before it loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sdk.errors import InvalidRequest
from sdk.ml import preflight
from sdk.ml.device import resolve_device
from sdk.options import PRECISIONS, QUANTIZED

__all__ = ["PRECISIONS", "RuntimePlan", "plan_runtime", "resolve_precision", "cached_bytes"]
_NAMES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The torch dtype ``precision`` means on ``device`` (:func:`sdk.ml.device.resolve_dtype`, the one place that
    decides); :class:`InvalidRequest` for fp16 on a CPU or a name that is not a precision."""
    from sdk.ml.device import resolve_dtype

    return resolve_dtype(precision or "auto", device)


@dataclass
class RuntimePlan:
    device: str
    precision: str
    dtype: str                 # torch dtype name the models run in: float32 | bfloat16 | float16
    memory_mode: str           # none | balanced | low | minimum (auto resolved)
    requested_memory_mode: str
    quantization: str = "none"  # none | int8 | fp8: the denoiser's weights (sdk.ml.quantize)
    estimate: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def record(self, info: dict[str, Any]) -> dict[str, Any]:
        """What ``meta.json`` keeps under ``runtime`` (the denoiser's dtype and attention are added as it runs)."""
        return {"device": self.device, "device_name": info.get("device_name", ""), "precision": self.precision,
                "dtype": self.dtype, "memory_mode": self.memory_mode,
                "requested_memory_mode": self.requested_memory_mode, "quantization": self.quantization,
                "compute_dtype": self.dtype, "preflight": self.estimate,
                "versions": info.get("versions", {})}


def plan_runtime(payload: Any, params: Any, weights: Path | None, device: str, cache: Any) -> RuntimePlan:
    """Resolve the job's precision and memory mode on ``device`` (see the module docstring). ``payload`` is the
    job's :class:`sdk.payload.WorkerPayload` (or a mapping with ``kind``, ``precision``, ``memory_mode``)."""
    get = payload.get if isinstance(payload, dict) else lambda k: getattr(payload, k, None)
    dev = resolve_device(device)
    precision = str(get("precision") or "auto")
    requested = str(get("memory_mode") or "auto")
    if get("kind") != "generate":
        # trainers keep fp32 weights (mixed_precision is their own param) and manage their own memory; extractors
        # and metrics run their (small) models as their plugin loads them
        return RuntimePlan(str(dev), precision, "float32", "none", requested)
    dtype = resolve_precision(precision, dev)
    quant = precision if precision in QUANTIZED else "none"
    plan = RuntimePlan(str(dev), precision, str(dtype).removeprefix("torch."), requested, requested, quant)
    frames, height, width = (getattr(params, k, None) for k in ("num_frames", "height", "width"))
    if weights is None or not all(isinstance(v, int) for v in (frames, height, width)):
        plan.memory_mode = "none" if requested == "auto" else requested
        return plan
    try:
        parts = preflight.components(weights)
    except (OSError, ValueError) as exc:  # the loader will name what is wrong with the files
        plan.log.append(f"preflight skipped: cannot read {weights} ({exc})")
        plan.memory_mode = "none" if requested == "auto" else requested
        return plan
    cached = cached_bytes(cache, Path(weights))
    mode, est = preflight.choose_mode(
        requested, parts, device=dev, dtype=dtype, frames=frames, height=height, width=width,
        cfg=preflight.cfg_batched(params), bytes_per_unit=preflight.denoiser_bytes_per_unit(params),
        decode_chunk=getattr(params, "decode_chunk_size", None), cached_bytes=cached, quantization=quant)
    plan.memory_mode, plan.estimate = mode, est.to_dict()
    verb = "chose" if requested == "auto" else "asked for"
    plan.log.append(f"preflight: about {preflight.gb(est.total_bytes)} needed ({preflight.gb(est.resident_weights_bytes)} "
                    f"weights + {preflight.gb(est.activations_bytes)} activations), {preflight.gb(est.available_bytes)} "
                    f"available on {dev}; {verb} memory_mode={mode}, {plan.dtype}"
                    + (f" with {quant} weights in the denoiser" if quant != "none" else ""))
    if requested != "auto" and not est.fits:
        plan.log.append(f"warning: memory_mode={mode} may not fit; an out-of-memory error retries the job one mode "
                        "lighter")
    return plan


def cached_bytes(cache: Any, weights: Path) -> int:
    """Bytes the worker's cache already holds for ``weights``: the components read from its files (whichever
    method loaded them, under whichever id: hard links count as the same file) plus entries a plugin cached under
    a key naming the folder."""
    from sdk.ml.components import file_identity

    root = weights.parent if weights.is_file() else weights
    ids: set[str] = set()
    for p in [*root.iterdir(), *(q for d in root.iterdir() if d.is_dir() for q in d.iterdir())]:
        if p.is_file() and not p.name.startswith("."):
            ids.add(file_identity(p))
    held = cache.held_bytes(ids) if hasattr(cache, "held_bytes") else 0
    name = str(root.resolve())
    return held + sum(size for key, size in getattr(cache, "sizes", {}).items() if name in key)
