"""Weight-only quantization of the denoiser for ``precision=int8|fp8``, applied by the worker to every generator.

A generator loads its denoiser through ``ctx.models.get(key, load, role="denoiser")`` (the built-in plugins through
:mod:`sdk.ml.components`). In a job whose precision is ``int8`` or ``fp8`` the job's :class:`sdk.context.JobModels`
gives the cache a key ending in ``|q=int8`` (:func:`cache_key`) and a loader that quantizes what ``load()`` built
(:func:`quantize_component`), so a quantized denoiser never serves a bf16 job and a bf16 one never serves an int8
job. Plugins do nothing: they load in the dtype the context gives them (bf16, the compute dtype).

What is quantized: the weight of every ``nn.Linear`` of the denoiser (attention projections, feed-forward, time and
text embeddings), per output channel (one scale per row). Convolutions, norms and biases keep the compute dtype:
a video UNet's convolutions are a small share of its weights, a transformer has almost none. Activations stay in the
compute dtype: weight-only quantization halves the weights' memory against bf16 (a quarter against fp32); whether a
step gets faster depends on the device's kernels (see ``benchmarks/quant_speed.py``).

Backends, first that works: torchao (``quantize_`` with ``Int8WeightOnlyConfig`` / ``Float8WeightOnlyConfig``;
its tensor subclasses move with ``Module.to`` and diffusers' group offload swaps them explicitly), then
optimum-quanto (``quantize`` + ``freeze`` with ``qint8``/``qfloat8``) where torchao is missing or refuses the device.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from sdk.errors import InvalidRequest

log = logging.getLogger("vgen.quantize")

#: what each quantized precision stores per weight element
BYTES_PER_WEIGHT = {"int8": 1, "fp8": 1}
#: per output row: torchao's int8 keeps an fp32 scale and an int8 zero point, its fp8 an fp32 scale
ROW_BYTES = {"int8": 5, "fp8": 4}
DENOISER_KEYS = ("unet", "transformer")


def cache_key(key: str, quantization: str) -> str:
    """The cache key of a component quantized as ``quantization`` (``none`` leaves the key as it is)."""
    return key if quantization in ("", "none", None) else f"{key}|q={quantization}"


def is_linear_weight(key: str, shape: tuple[int, ...]) -> bool:
    """Whether the tensor ``key`` of a denoiser's state dict is an ``nn.Linear`` weight (what is quantized), read
    from its name and shape alone (for :mod:`sdk.ml.preflight`): two dimensions, named ``….weight``, and not an
    embedding table (``class_embedding.weight``, ``…_emb.weight``)."""
    if len(shape) != 2 or not key.endswith(".weight"):
        return False
    parent = key[: -len(".weight")].rsplit(".", 1)[-1].lower()
    return not parent.endswith(("embedding", "embeddings", "emb", "embed", "embedder"))


def _linear_filter(module: torch.nn.Module, _fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear) and module.weight.dim() == 2


def quantized_layers(module: torch.nn.Module) -> int:
    """How many Linear layers of ``module`` hold quantized weights (torchao's tensor subclasses, quanto's QLinear)."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    return sum(1 for m in module.modules() if isinstance(m, torch.nn.Linear) and (
        type(m).__module__.startswith("optimum.quanto")
        or is_traceable_wrapper_subclass(getattr(m, "weight", None))))


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes the parameters and buffers of ``module`` really hold: a quantized tensor counts its inner tensors (int8
    data, scales, zero points), not ``numel × element_size`` of the dtype it reports."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    def size(t: torch.Tensor) -> int:
        if is_traceable_wrapper_subclass(t):
            names, _ = t.__tensor_flatten__()
            return sum(size(getattr(t, n)) for n in names if isinstance(getattr(t, n, None), torch.Tensor))
        return t.numel() * t.element_size()

    seen: set[int] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += size(t)
    return total


def quantize_module(module: torch.nn.Module, quantization: str, device: torch.device | str) -> dict[str, Any]:
    """Quantize the Linear weights of ``module`` (on ``device``, in its compute dtype) in place: torchao, else
    optimum-quanto. Returns what was done (``backend``, ``method``, ``layers``, ``weights_bytes``) for the job's
    runtime record. Raises :class:`InvalidRequest` (field ``precision``) when neither library can do it here."""
    if quantization not in BYTES_PER_WEIGHT:
        raise InvalidRequest(f"precision {quantization!r} is not a quantized precision.",
                             hint="Use int8 or fp8.", field="precision")
    device = torch.device(device)
    _drop_compiled(module)  # the CPU fast path froze the bf16 weights into its graph; the quantized ones run eager
    errors: list[str] = []
    for backend in (_torchao, _quanto):
        try:
            method = backend(module, quantization)
        except ImportError as exc:
            errors.append(f"{backend.__name__.strip('_')}: not installed ({exc})")
            continue
        except (RuntimeError, NotImplementedError, ValueError, TypeError, AssertionError) as exc:
            # a backend that cannot quantize on this device (a kernel or dtype it lacks; torchao fails on the first
            # block it meets, before any weight changed): try the next one
            errors.append(f"{backend.__name__.strip('_')}: {exc}")
            log.info("%s could not quantize the denoiser: %s", backend.__name__, exc)
            continue
        layers = quantized_layers(module)
        return {"backend": backend.__name__.strip("_"), "method": method, "layers": layers,
                "weights_bytes": weight_bytes(module), "device": str(device)}
    raise InvalidRequest(
        f"precision {quantization!r}: the denoiser could not be quantized on {device} ({'; '.join(errors)}).",
        hint="Install torchao (pip install torchao) or optimum-quanto (pip install optimum-quanto), or use "
             "precision bf16.", field="precision")


def quantize_component(value: Any, quantization: str, device: torch.device | str,
                       runtime: dict[str, Any] | None = None, *, role: str | None = "denoiser") -> Any:
    """Quantize a freshly loaded denoiser in place and return it: ``value`` itself when its ``role`` is
    ``denoiser``, else (a plugin's dict of components, cached without a role) its ``unet``/``transformer`` member.
    What was done goes into ``runtime["quantized"]``."""
    if role == "denoiser" and isinstance(value, torch.nn.Module):
        modules = [value]
    elif isinstance(value, dict):
        modules = [v for k, v in value.items() if k in DENOISER_KEYS and isinstance(v, torch.nn.Module)]
    else:
        modules = []
    for module in modules:
        info = quantize_module(module, quantization, device)
        module._vgen_quantized = info
        if runtime is not None:
            runtime["quantized"] = info
    return value


def applied(module: Any) -> dict[str, Any]:
    """What :func:`quantize_component` did to ``module`` ({} when nothing)."""
    return dict(getattr(module, "_vgen_quantized", {}) or {})


def _drop_compiled(module: torch.nn.Module) -> None:
    from sdk.ml import accel

    if accel.applied(module):
        accel.release(module)


def _torchao(module: torch.nn.Module, quantization: str) -> str:
    from torchao.quantization import quantize_

    if quantization == "int8":
        from torchao.quantization import Int8WeightOnlyConfig as Config
        method = "int8 weight-only, per output channel"
    else:
        from torchao.quantization import Float8WeightOnlyConfig as Config
        method = "float8 (e4m3) weight-only, per output channel"
    # block by block, giving the freed bf16 pages back between blocks on the CPU (glibc keeps them in its heap,
    # between the new int8 tensors): quantizing the whole model at once held the bf16 and the int8 weights together
    # (CogVideoX-2B: peak RSS 5.6 GB and 5.3 GB after, against 4.5 and 2.6 GB block by block; bf16 weights 3.4 GB)
    for unit in _units(module):
        quantize_(unit, Config(), filter_fn=_linear_filter)
        if next(unit.parameters(), torch.empty(0)).device.type == "cpu":
            from sdk.ml.process_memory import trim

            trim()
    return method


def _units(module: torch.nn.Module) -> list[torch.nn.Module]:
    """``module`` cut into parts to quantize one after another: its children, a ModuleList (the transformer blocks,
    a UNet's down/up blocks) cut into its members."""
    if isinstance(module, torch.nn.Linear) or not any(True for _ in module.children()):
        return [module]
    units: list[torch.nn.Module] = []
    for child in module.children():
        units.extend(child if isinstance(child, torch.nn.ModuleList) else [child])
    return units


def _quanto(module: torch.nn.Module, quantization: str) -> str:
    from optimum.quanto import freeze, qfloat8, qint8, quantize

    # quanto swaps modules: only Linear layers, the same set as torchao's filter
    names = [name for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    quantize(module, weights=qint8 if quantization == "int8" else qfloat8, include=names or None)
    freeze(module)
    return f"{'int8' if quantization == 'int8' else 'float8'} weight-only (optimum-quanto)"
