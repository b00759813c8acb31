"""Run options: how a job runs, as opposed to its params (what it makes). Torch-free.

``precision`` (``auto|fp32|bf16|fp16``) and ``memory_mode`` (``auto|none|balanced|low|minimum``) apply to every
generator the same way (:mod:`sdk.ml.runtime`, :mod:`sdk.ml.memory`), so they live beside the params, not in each
plugin's params model. They are stored with the job (``jobs.options``), carried in every output's recipe, and may be
given as ``--precision``/``--memory-mode`` or as grid axes: ``--param precision=fp32,bf16``.
"""
from __future__ import annotations

from typing import Any

from sdk.errors import InvalidRequest

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
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
    return out
