"""Run options: how a job runs, as opposed to its params (what it makes). Torch-free.

``precision`` (``auto|fp32|bf16|fp16|int8|fp8``) and ``memory_mode`` (``auto|none|balanced|low|minimum``) apply to every
generator the same way (:mod:`sdk.ml.runtime`, :mod:`sdk.ml.memory`), so they live beside the params, not in each
plugin's params model. They are stored with the job (``jobs.options``), carried in every output's recipe, and may be
given as ``--precision``/``--memory-mode`` or as grid axes: ``--param precision=fp32,bf16``.

``int8`` and ``fp8`` run the denoiser with weight-only quantized Linear layers (:mod:`sdk.ml.quantize`: torchao,
else optimum-quanto) and everything else in the compute dtype (bf16). This module is the one source of
:data:`PRECISIONS`; :mod:`sdk.ml.device` and :mod:`sdk.ml.runtime` import it. What a quantized precision needs is
checked here, at queue time, without importing torch (:func:`quant_backends`, :func:`fp8_gpus`).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from typing import Any

from sdk.errors import InvalidRequest

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8", "fp8")
#: precisions whose denoiser is weight-only quantized (the rest of the model runs in bf16, or fp16 on old GPUs)
QUANTIZED = ("int8", "fp8")
#: the lowest CUDA compute capability with fp8 (Ada, Hopper and later)
FP8_MIN_CAPABILITY = (8, 9)
#: lightest last
MEMORY_MODES = ("auto", "none", "balanced", "low", "minimum")
OPTION_KEYS = ("precision", "memory_mode")
_ALLOWED = {"precision": PRECISIONS, "memory_mode": MEMORY_MODES}
DEFAULTS = {"precision": "auto", "memory_mode": "auto"}


def validate_options(values: dict[str, Any], *, kind: str = "generate") -> dict[str, str]:
    """``values`` checked and completed with the defaults.

    Raises :class:`InvalidRequest` naming the option, the value and the allowed values; fp16 when this machine has
    no GPU (CPUs emulate it: slow and inexact); a precision other than ``auto`` on a training job (trainers take
    ``mixed_precision`` as a param)."""
    out = dict(DEFAULTS)
    for key, value in values.items():
        if key not in _ALLOWED:
            raise InvalidRequest(f"Unknown run option {key!r}.", hint="Run options: " + ", ".join(OPTION_KEYS) + ".",
                                 field=key)
        text = str(value).strip().lower()
        if text not in _ALLOWED[key]:
            raise InvalidRequest(f"{key} {value!r} is not one of the values it takes.",
                                 hint=f"Use one of: {', '.join(_ALLOWED[key])}.", field=key)
        out[key] = text
    if kind == "train" and out["precision"] != "auto":
        raise InvalidRequest(f"precision {out['precision']!r} does not apply to training jobs.",
                             hint="Trainers keep fp32 weights; set --param mixed_precision=bf16 (or fp16 on a GPU).",
                             field="precision")
    if out["precision"] == "fp16":
        from sdk.devices import cuda_devices, mps_available

        if not cuda_devices() and not mps_available():
            raise InvalidRequest("precision fp16 needs a GPU, and this machine has none.",
                                 hint="On a CPU use bf16 (native on CPUs with AMX/AVX512-BF16), fp32, or auto.",
                                 field="precision")
    if out["precision"] in QUANTIZED:
        check_quantized(out["precision"])
    return out


def quant_backends() -> list[str]:
    """The weight-only quantization libraries installed here, preferred first: ``torchao``, ``quanto``
    (optimum-quanto). Found with ``importlib.util.find_spec``: nothing is imported (no torch at queue time)."""
    found = []
    if _has_module("torchao"):
        found.append("torchao")
    if _has_module("optimum") and _has_module("optimum.quanto"):
        found.append("quanto")
    return found


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent that is not a package, or a module blocked in sys.modules
        return False


@functools.lru_cache(maxsize=1)
def fp8_gpus() -> tuple[str, ...]:
    """CUDA devices (``cuda:N``) with compute capability ≥ 8.9, which fp8 weight-only quantization needs, as
    ``nvidia-smi`` reports them (respecting ``CUDA_VISIBLE_DEVICES``); () without a driver. Asked once per process:
    a grid of fp8 jobs does not run ``nvidia-smi`` per job."""
    from sdk.devices import cuda_devices

    visible = [d.id for d in cuda_devices()]
    smi = shutil.which("nvidia-smi")
    if not visible or not smi:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=index,compute_cap", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    caps: dict[str, tuple[int, ...]] = {}
    for line in out.stdout.strip().splitlines() if out.returncode == 0 else []:
        index, _, cap = (p.strip() for p in line.partition(","))
        try:
            caps[index] = tuple(int(x) for x in cap.split("."))
        except ValueError:
            continue
    order = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip().isdigit()]
    physical = order or sorted(caps, key=int)
    return tuple(f"cuda:{n}" for n, index in enumerate(physical) if caps.get(index, (0,)) >= FP8_MIN_CAPABILITY
                 and f"cuda:{n}" in visible)


def check_quantized(precision: str) -> None:
    """Refuse ``precision`` (int8 or fp8) when this machine cannot run it: no quantization library installed, or
    fp8 without a CUDA GPU of compute capability ≥ 8.9. Raises :class:`InvalidRequest` (field ``precision``)."""
    if not quant_backends():
        raise InvalidRequest(
            f"precision {precision!r} needs a weight quantization library, and neither torchao nor optimum-quanto "
            "can be imported here.",
            hint="Install torchao (pip install torchao), or optimum-quanto (pip install optimum-quanto); or use "
                 "precision bf16.", field="precision")
    if precision == "fp8" and not fp8_gpus():
        raise InvalidRequest(
            "precision 'fp8' needs a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper), and this machine has "
            "none: fp8 weights have no fast kernels on the CPU, MPS or older GPUs.",
            hint="Use precision int8 (weight-only, runs everywhere), or bf16.", field="precision")
