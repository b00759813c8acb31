"""The CPU fast path, in one place for every plugin: :func:`optimize` is called by :func:`sdk.ml.device.place`,
which every plugin already calls, so no plugin has code of its own for it.

What it does to a big model on the CPU (``VGEN_ACCEL`` unset or "auto": models of at least :data:`MIN_PARAMS`
parameters, i.e. the UNets; tiny test twins stay eager):
- convolution weights in channels-last layout (oneDNN's fast layout on x86);
- ``torch.compile`` of the module's call (inductor, ``dynamic=False``) with weight freezing: weights become
  constants, pre-packed once for oneDNN, and norms/elementwise ops are fused. Compilation happens at the first call
  (minutes at real size), not here; later calls with the same shapes, in later jobs of the same worker too, reuse
  it. Compiled code goes to an on-disk cache (:func:`compile_cache_dir`), but graphs holding pre-packed weights
  can't be stored there, so a new worker process compiles again; ``VGEN_ACCEL_PREPACK=0`` trades the pre-packing
  speed-up for graphs the cache keeps (a second process then loads it in about a minute).
Nothing changes the arithmetic's precision: the dtype is the job's (``resolve_dtype``), weights are cast, never
autocast. Calls with grad enabled (training) run eagerly.

:func:`sdk.executor.worker_env` gives the environment the worker process starts with (glibc malloc tuning: it cuts
the page faults of the big activation buffers each step allocates and frees).

``VGEN_ACCEL=0`` (or "off") turns it off everywhere; ``VGEN_ACCEL=1`` (or "on") forces it on for any size.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

ENV = "VGEN_ACCEL"
CACHE_ENV = "VGEN_COMPILE_CACHE"
#: "0": don't pre-pack weights for oneDNN. Pre-packed weights are mkldnn tensors, which inductor's FX-graph cache
#: cannot store, so every new worker process compiles again (~3-5 min on 2 cores); without pre-packing a second
#: process loads the compiled graph from the cache (~1 min) but a step is no faster than eager (measured, fp32).
PREPACK_ENV = "VGEN_ACCEL_PREPACK"
MIN_PARAMS = 300_000_000  # the UNets (1.4 B); not the VAE (84 M) nor the tiny test twins
_ON, _OFF = ("1", "on", "true", "yes", "force"), ("0", "off", "false", "no")


# -- what the processor runs natively -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags (``/proc/cpuinfo``), empty where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def amx_bf16() -> bool:
    """True where the CPU has usable AMX-BF16 tiles (the kernel enabled them), the units that make bf16 matmuls
    and convolutions fast (measured 1.7-1.9 TFLOP/s on 2 cores, against 0.3 for fp32)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if probe is not None:
        try:
            if not probe():
                return False
        except RuntimeError:  # pragma: no cover - depends on the build
            pass
    return "amx_bf16" in cpu_flags() or (probe is not None and not cpu_flags())


def avx512_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe is not None else "avx512_bf16" in cpu_flags()


def cpu_bf16_native() -> bool:
    """Whether bf16 is the fast precision on this CPU: only with AMX-BF16. With AVX512-BF16 alone (e.g. a VM that
    hides AMX) a bf16 matmul runs at half the fp32 speed and a real-size UNet step took 1.5× longer in bf16 than in
    fp32 (docs/architecture.md), so fp32 is the fast choice there."""
    return amx_bf16()


def describe_cpu() -> dict[str, Any]:
    return {"amx_bf16": amx_bf16(), "avx512_bf16": avx512_bf16(), "bf16_native": cpu_bf16_native(),
            "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


# -- the switch -----------------------------------------------------------------------------------------------------
def mode(value: str | None = None) -> str:
    """"on", "off" or "auto", from ``value`` or ``$VGEN_ACCEL``."""
    v = (os.environ.get(ENV, "") if value is None else str(value)).strip().lower()
    return "on" if v in _ON else "off" if v in _OFF else "auto"


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def wanted(module: torch.nn.Module, device: torch.device, enable: bool | None = None,
           dtype: torch.dtype | None = None) -> bool:
    """Whether :func:`optimize` would change ``module``: ``enable`` (None: ``$VGEN_ACCEL``) on/off, or in auto mode
    a CPU model of at least :data:`MIN_PARAMS` parameters in a 16-bit ``dtype`` (None: the module's own).

    fp32 stays eager in auto mode: measured side by side on the real-size UNet (2 cores without AMX, one CFG step),
    compiled + frozen fp32 took 52.2 s against 41.3 s eager — fewer CPU-seconds (77.7 against 81.4) but its
    kernels keep both cores busy less of the time — after a 3-4 min compile per worker process. The fast path pays
    where bf16 runs on AMX (docs/architecture.md). (Training is not excluded here: calls with grad run eagerly.)"""
    if device.type != "cpu":
        return False
    m = mode() if enable is None else ("on" if enable else "off")
    if m == "auto":
        if dtype is None:
            first = next(module.parameters(), None)
            dtype = first.dtype if first is not None else torch.float32
        return dtype in (torch.bfloat16, torch.float16) and param_count(module) >= MIN_PARAMS
    return m == "on"


# -- the fast path ----------------------------------------------------------------------------------------------------
def compile_cache_dir() -> Path:
    """Where compiled kernels persist across worker processes: ``$VGEN_COMPILE_CACHE``, else an explicitly set
    ``$TORCHINDUCTOR_CACHE_DIR``, else ``<user cache dir>/vgen-studio/torchinductor`` (inductor's own default lives
    in /tmp, which a reboot empties)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().absolute()
    explicit = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if explicit:
        try:
            from torch._inductor.runtime.cache_dir_utils import default_cache_dir
        except ImportError:  # pragma: no cover - older torch
            default_cache_dir = None
        if default_cache_dir is None or os.path.abspath(explicit) != os.path.abspath(default_cache_dir()):
            return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vgen-studio")) / "torchinductor"


def configure_inductor() -> None:
    """Inductor settings of the fast path: freezing, the local FX-graph cache in :func:`compile_cache_dir`."""
    import torch._inductor.config as ic

    cache = compile_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)  # inductor reads it at each cache access
    ic.freezing = True
    ic.fx_graph_cache = True
    ic.cpp.weight_prepack = os.environ.get(PREPACK_ENV, "1").strip().lower() not in _OFF


def optimize(module: torch.nn.Module, device: torch.device, dtype: torch.dtype, *,
             enable: bool | None = None, compile: bool | None = None) -> torch.nn.Module:
    """Apply the CPU fast path to ``module`` in place when :func:`wanted` (see the module docstring) and return it.

    ``enable`` overrides ``$VGEN_ACCEL``; ``compile=False`` keeps the layout change only. What was applied is in
    :func:`applied` (empty when nothing was). Calls with grad enabled (training) run eagerly, and so does any call
    after the module changed since it was optimised (hooks added, e.g. adapters attached for one job, or a weight
    modified in place): frozen weights would not see such changes."""
    if applied(module) or not wanted(module, device, enable, dtype):
        return module
    channels_last_(module)
    info: dict[str, Any] = {"channels_last": True, "dtype": str(dtype).removeprefix("torch.")}
    if (compile is None or compile) and type(module).forward is not torch.nn.Module.forward:
        # (wrappers called through a method of their own, e.g. TextEncoder.encode, have no forward to compile)
        configure_inductor()
        module.forward = _CompiledForward(module)  # instance attribute: nn.Module.__call__ now goes through it
        info.update(compile="inductor", freezing=True, cache=str(compile_cache_dir()))
    object.__setattr__(module, "_vgen_accel", info)
    return module


def channels_last_(module: torch.nn.Module) -> torch.nn.Module:
    """4-D (Conv2d) weights in channels-last layout, in place (``Module.to(memory_format=...)`` refuses the 5-D
    temporal convolutions of the video UNets)."""
    from sdk.ml.process_memory import byte_range, file_mappings, release_ranges

    maps = None
    for p in module.parameters():
        if p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last):
            src = byte_range(p) if p.device.type == "cpu" and p.is_contiguous() else None
            p.data = p.data.contiguous(memory_format=torch.channels_last)
            if src is not None:  # a memory-mapped original (an fp32 model is the file): give its pages back
                maps = file_mappings() if maps is None else maps
                release_ranges([src], maps)
    return module


def release(module: torch.nn.Module) -> None:
    """Drop ``module``'s compiled graph before the module itself is dropped (e.g. evicted from the model cache).

    Dynamo keeps compiled graphs — with their frozen, pre-packed weight copies — in caches attached to the model
    class's code, not to the module: without this, they outlive the module (measured: 5.6 GB for the fp32 UNet).
    This resets all of dynamo's caches (``torch.compiler.reset``); other compiled modules compile again at their
    next call."""
    fwd = vars(module).get("forward")
    if isinstance(fwd, _CompiledForward):
        fwd.compiled = None
        torch.compiler.reset()
        del module.forward  # back to the class's eager forward
    object.__setattr__(module, "_vgen_accel", {})


def applied(module: torch.nn.Module) -> dict[str, Any]:
    """What :func:`optimize` did to ``module`` ({} when nothing)."""
    return dict(getattr(module, "_vgen_accel", {}) or {})


#: set on a hook function that leaves the compiled graph valid (it only looks at the call, e.g. the memory modes'
#: record of the dtypes a denoiser ran in): :func:`fingerprint` does not count it
NEUTRAL = "_vgen_accel_neutral"


def fingerprint(module: torch.nn.Module) -> int:
    """Changes when hooks are added or removed anywhere in ``module`` (other than :data:`NEUTRAL` ones) or a
    parameter is replaced or modified in place (its data pointer or version counter); ~2 ms for a real-size UNet,
    against seconds per call."""
    hooks = sum(1 for m in module.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
                if not getattr(h, NEUTRAL, False))
    return hash((hooks, tuple((p.data_ptr(), _version(p)) for p in module.parameters())))


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # an inference tensor has no version counter (and cannot be modified in place later)
        return 0


def _prepacks() -> bool:
    import torch._inductor.config as ic

    return bool(ic.freezing and ic.cpp.weight_prepack)


class _CompiledForward:
    """``module.forward`` through ``torch.compile`` (built at the first call), or the eager forward when grad is
    enabled or the module changed since :func:`optimize` (see :func:`fingerprint`)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.eager = type(module).forward
        self.compiled: Any = None
        self.fingerprint: int | None = fingerprint(module)
        self.calls = {"compiled": 0, "eager": 0}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        m = self.module
        if torch.is_grad_enabled() or self.fingerprint is None or fingerprint(m) != self.fingerprint:
            self.calls["eager"] += 1
            return self.eager(m, *args, **kwargs)
        if self.compiled is None:
            import types

            self.compiled = torch.compile(types.MethodType(self.eager, m), dynamic=False)
        self.calls["compiled"] += 1
        out = self.compiled(*args, **kwargs)
        if self.calls["compiled"] == 1 and _prepacks():
            # The frozen graph now holds its own pre-packed copies of the conv/linear weights: give back the pages
            # of memory-mapped originals (an fp32 model is the file itself), re-read only if eager runs again.
            from sdk.ml.process_memory import release_pages

            release_pages(*(p for p in m.parameters() if p.dim() >= 2))
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> "_CompiledForward":
        # A deep copy (e.g. an EMA/target network) forwards through its own module, eagerly: it has no frozen graph.
        import copy

        new = _CompiledForward.__new__(_CompiledForward)
        new.module = copy.deepcopy(self.module, memo)
        new.eager, new.compiled, new.fingerprint, new.calls = self.eager, None, None, {"compiled": 0, "eager": 0}
