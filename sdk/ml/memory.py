"""Memory modes, applied to every generator's components by the worker (DESIGN §7): never per plugin.

A generator loads each component through ``ctx.models.get(key, load, role=...)`` — the built-in plugins through
:mod:`sdk.ml.components` — and the role says what it is: ``denoiser``, ``vae``, ``encoder`` (text or image) or
``other``. The job's context hands each component to a :class:`JobMemory`, which arranges it for the job's memory
mode, lightest last:

============ ===================================================== ==============================================
mode         on a GPU (CUDA, MPS)                                  on the CPU
============ ===================================================== ==============================================
``none``     everything resident on the device: fastest            everything resident: fastest
``balanced`` model CPU offload: each component is on the device    the VAE decodes ≤ 4 frames at a time
             only while it runs (the one that ran before goes
             back to the CPU); VAE decodes ≤ 4 frames at a time
``low``      sequential (group) offload of the denoiser, block by  + the encoders are freed once the denoiser
             block, the other components as in ``balanced``;       starts (the next job reloads them, and only
             + feed-forward chunking, VAE tiling, ≤ 2 frames a     them), feed-forward chunking, VAE tiling, ≤ 2
             decode                                                frames a decode
``minimum``  + sliced attention, VAE decodes one frame at a time   + sliced attention, one frame a decode
============ ===================================================== ==============================================

The feed-forward and frame chunks compute the same function (to float rounding); VAE tiling blends tiles above
the VAE's tile size (512 px for the SD VAE), so frames differ slightly from an untiled decode there.

A plugin that caches its own dict of components (``ctx.models.get(key, load)`` returning ``{"unet": …, "vae": …}``
without a role) still works: the roles are read from the names diffusers uses (``unet``/``transformer``, ``vae``,
``text_encoder``/``image_encoder``), and freeing its encoders drops its whole entry.

Training jobs are left alone: trainers manage their own memory (mixed precision, their own batch).
"""
from __future__ import annotations

import functools
import logging
import weakref
from typing import Any, Callable

import torch

log = logging.getLogger("vgen.memory")

#: lightest last; ``auto`` is resolved by the preflight (:mod:`sdk.ml.preflight`)
MODES = ("none", "balanced", "low", "minimum")
ROLES = ("denoiser", "vae", "encoder", "other")
DENOISER_KEYS = ("unet", "transformer")
ENCODER_KEYS = ("text_encoder", "image_encoder")
#: the most frames the VAE decodes at once, per mode (None: what the job asked for)
DECODE_CHUNK_CAP = {"none": None, "balanced": 4, "low": 2, "minimum": 1}

# what has been done to each cached component: module -> mode
_applied: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()
# per denoiser: the job it currently serves (its hook is registered once and reads this)
_jobs: "weakref.WeakKeyDictionary[torch.nn.Module, JobMemory]" = weakref.WeakKeyDictionary()
# per accelerator: the offloaded component now on it (moved back to the CPU when another one runs)
_resident: dict[str, "weakref.ref[torch.nn.Module]"] = {}


def lighter(mode: str) -> str | None:
    """The next lighter mode (``none`` → ``balanced`` → ``low`` → ``minimum``), or None after the lightest."""
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def role_of(name: str) -> str:
    """The role of a component dict's key, by the names diffusers pipelines use."""
    return ("denoiser" if name in DENOISER_KEYS else "vae" if name == "vae"
            else "encoder" if name in ENCODER_KEYS else "other")


def roles(components: dict[str, Any]) -> dict[str, list[tuple[str, torch.nn.Module]]]:
    """The modules of ``components`` grouped by role: denoiser, vae, encoder, other (non-modules are skipped)."""
    out: dict[str, list[tuple[str, torch.nn.Module]]] = {r: [] for r in ROLES}
    for key, value in components.items():
        if isinstance(value, torch.nn.Module):
            out[role_of(key)].append((key, value))
    return out


def prepare(component: Any, *, mode: str, device: torch.device | str, role: str | None = None) -> None:
    """Arrange a cached component (a module of ``role``) for ``mode`` on ``device``; idempotent, and a module
    prepared for another mode is first put back as loaded. A dict of components is arranged member by member, each
    with the role its key names."""
    if mode not in MODES:
        raise ValueError(f"unknown memory mode {mode!r}; use one of {', '.join(MODES)}")
    if isinstance(component, dict):
        for key, module in component.items():
            if isinstance(module, torch.nn.Module):
                prepare(module, mode=mode, device=device, role=role_of(key))
        return
    if not isinstance(component, torch.nn.Module) or role not in ROLES:
        return
    previous = _applied.get(component)
    if previous == mode:
        return
    device = torch.device(device)
    if previous is not None:
        _undo(component, role, device)
    _apply(component, role, mode, device)
    _applied[component] = mode


def as_loaded(component: Any, *, role: str | None, device: torch.device | str) -> None:
    """Put a cached component an earlier generate job arranged (offload hooks, chunking, tiling) back as loaded:
    what a trainer, which manages its own memory, gets."""
    if isinstance(component, torch.nn.Module) and role in ROLES and _applied.get(component) not in (None, "none"):
        prepare(component, mode="none", device=device, role=role)


def forget(component: Any) -> None:
    """The cache dropped ``component`` (a module or a dict of them): forget what was applied to it."""
    for module in (component.values() if isinstance(component, dict) else [component]):
        if isinstance(module, torch.nn.Module):
            _applied.pop(module, None)
            _jobs.pop(module, None)


def _target(module: torch.nn.Module) -> torch.nn.Module:
    """What an offload hook goes on: the module, or for a wrapper without a ``forward`` of its own (TextEncoder,
    ImageEncoder: their ``encode`` calls the inner model) the inner ``model``."""
    inner = getattr(module, "model", None)
    if isinstance(inner, torch.nn.Module) and type(module).forward is torch.nn.Module.forward:
        return inner
    return module


def _apply(module: torch.nn.Module, role: str, mode: str, device: torch.device) -> None:
    if role == "vae":
        module._vgen_decode_chunk_cap = DECODE_CHUNK_CAP[mode]  # read by sdk.ml.vae.decode_video
        if mode in ("low", "minimum") and hasattr(module, "enable_tiling"):
            module.enable_tiling()
    if role == "denoiser":
        if mode in ("low", "minimum") and hasattr(module, "enable_forward_chunking"):
            module.enable_forward_chunking(chunk_size=1, dim=1)
        if mode == "minimum" and hasattr(module, "set_attention_slice"):
            try:
                # what runs now (SDPA), put back by _undo: diffusers' default processor is the slower classic one
                module._vgen_attn_processors = dict(module.attn_processors)
                module.set_attention_slice("auto")
            except (ValueError, AttributeError, TypeError):  # some attention processors cannot slice
                log.info("the denoiser cannot slice attention; minimum mode goes on without it")
    if device.type == "cpu" or mode == "none":
        return
    if role == "denoiser" and mode in ("low", "minimum"):
        module.to("cpu")
        if hasattr(module, "enable_group_offload"):
            module.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                        offload_type="block_level", num_blocks_per_group=1)
        else:
            from accelerate import cpu_offload

            cpu_offload(module, execution_device=device)
        return
    # model offload: on the device only while it runs. Which component ran before depends on the job (one VAE
    # serves several methods), so instead of a fixed chain each one sends the previous resident back.
    from accelerate.hooks import add_hook_to_module

    target = _target(module)
    target.to("cpu")
    add_hook_to_module(target, _one_resident()(device), append=True)


def _undo(module: torch.nn.Module, role: str, device: torch.device) -> None:
    from accelerate.hooks import remove_hook_from_module

    remove_hook_from_module(module, recurse=True)
    for dev, ref in list(_resident.items()):  # no longer offloaded: nothing may send it back to the CPU
        if ref() is module or ref() is _target(module):
            del _resident[dev]
    if role == "vae":
        module._vgen_decode_chunk_cap = None
        if hasattr(module, "disable_tiling"):
            module.disable_tiling()
    if role == "denoiser":
        if hasattr(module, "disable_forward_chunking"):
            module.disable_forward_chunking()
        saved = getattr(module, "_vgen_attn_processors", None)
        if saved is not None:
            module.set_attn_processor(saved)
            del module._vgen_attn_processors
    if any(p.device.type == "meta" for p in module.parameters()):
        return  # released encoders are reloaded by the cache, not moved
    module.to(device)


def _evict(device: torch.device, keep: torch.nn.Module | None = None) -> None:
    """Send the offloaded component resident on ``device`` (if any, and not ``keep``) back to the CPU."""
    ref = _resident.pop(str(device), None)
    other = ref() if ref is not None else None
    if other is None:
        return
    if other is keep:
        _resident[str(device)] = ref  # type: ignore[assignment]
        return
    first = next(other.parameters(), None)
    if first is not None and first.device.type not in ("cpu", "meta"):
        other.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()


@functools.cache
def _one_resident() -> type:
    """The accelerate hook class (built on first use: accelerate is only imported where a GPU mode needs it)."""
    from accelerate.hooks import ModelHook
    from accelerate.utils import send_to_device

    class OneResident(ModelHook):
        """Before the module runs, send the component that ran before back to the CPU, move this one in and its
        inputs with it (also fired by diffusers' ``encode``/``decode``, which call ``pre_forward``)."""

        def __init__(self, device: torch.device) -> None:
            self.execution_device = device

        def init_hook(self, module: torch.nn.Module) -> torch.nn.Module:
            return module.to("cpu")

        def pre_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            _evict(self.execution_device, keep=module)
            _resident[str(self.execution_device)] = weakref.ref(module)
            first = next(module.parameters(), None)
            if first is not None and first.device != self.execution_device:
                module.to(self.execution_device)
            return send_to_device(args, self.execution_device), send_to_device(kwargs, self.execution_device)

    return OneResident


class JobMemory:
    """One generate job's memory mode over the components it gets: :meth:`add` prepares each for the mode; the
    denoiser records into ``runtime`` what it really ran in (the dtype of its weights and of its inputs, the
    attention backend) and, on the CPU in ``low``/``minimum``, frees the job's encoders once it starts, calling
    ``release(key)`` for each so that the cache reloads them (and nothing else) for the next job.

    The denoiser's hook is registered once per module; later jobs only swap which ``JobMemory`` it reports to."""

    def __init__(self, *, mode: str, device: torch.device | str, runtime: dict[str, Any],
                 release: Callable[[str], None] | None = None) -> None:
        self.mode = mode
        self.device = torch.device(device)
        self.runtime: dict[str, Any] | None = runtime
        self.release = release
        self.free_encoders = self.device.type == "cpu" and mode in ("low", "minimum")
        self.encoders: list[tuple[str | None, torch.nn.Module]] = []
        self.denoisers: list[torch.nn.Module] = []

    def add(self, component: Any, *, role: str | None = None, key: str | None = None) -> None:
        """Arrange ``component`` (a module of ``role``, cached under ``key``; or a dict of components) for the job."""
        if isinstance(component, dict):
            for name, module in component.items():
                if isinstance(module, torch.nn.Module):
                    self.add(module, role=role_of(name), key=key)
            if isinstance(component.get("attention"), str) and self.runtime is not None:
                self.runtime.setdefault("attention", component["attention"])
            return
        if not isinstance(component, torch.nn.Module) or role not in ROLES:
            return
        prepare(component, mode=self.mode, device=self.device, role=role)
        if role == "encoder" and all(m is not component for _, m in self.encoders):
            self.encoders.append((key, component))
        elif role == "denoiser":
            _hook_denoiser(component)
            _jobs[component] = self
            self.denoisers.append(component)
            if self.runtime is not None and hasattr(component, "_vgen_attention"):
                self.runtime.setdefault("attention", component._vgen_attention)

    def before_denoiser(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        rt = self.runtime
        if rt is None:
            return
        if "unet_dtype" not in rt:
            param = next(module.parameters(), None)
            rt["unet_dtype"] = str(param.dtype).removeprefix("torch.") if param is not None else None
            x = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
            rt["activations_dtype"] = str(x.dtype).removeprefix("torch.") if x is not None else None
        if self.device.type != "cpu" and self.mode in ("low", "minimum"):
            _evict(self.device)  # the block-offloaded denoiser needs the room the last encoder holds
        if self.free_encoders and not rt.get("encoders_freed") and self.encoders:
            released: set[str] = set()
            for key, enc in self.encoders:
                enc.to("meta")  # the weights' memory goes back now; the cache reloads them next job
                if key is not None and key not in released and self.release is not None:
                    released.add(key)
                    self.release(key)
            self.encoders.clear()
            rt["encoders_freed"] = True

    def end(self) -> None:
        """The job is over: its denoisers report nowhere until the next job adds them."""
        self.runtime = None
        for den in self.denoisers:
            if _jobs.get(den) is self:
                del _jobs[den]


def _hook_denoiser(module: torch.nn.Module) -> None:
    if getattr(module, "_vgen_memory_hook", False):
        return

    def before(mod: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        job = _jobs.get(mod)
        if job is not None:
            job.before_denoiser(mod, args, kwargs)

    from sdk.ml.accel import NEUTRAL

    # it only reads the call's dtypes, outside forward(): the CPU fast path's compiled graph stays valid
    setattr(before, NEUTRAL, True)
    module.register_forward_pre_hook(before, with_kwargs=True)
    module._vgen_memory_hook = True


def attach(components: Any, *, mode: str, device: torch.device | str, runtime: dict[str, Any],
           release: Callable[[], None] | None = None) -> Callable[[], None]:
    """Make a dict of ``components`` serve one job (see :class:`JobMemory`): the denoiser records into ``runtime``
    what it ran in and, on the CPU in ``low``/``minimum``, frees the encoders once it starts, calling ``release()``
    so that the cache reloads the dict next job. Returns the function that ends the job."""
    if not isinstance(components, dict):
        return lambda: None
    job = JobMemory(mode=mode, device=device, runtime=runtime,
                    release=(lambda _key: release()) if release is not None else None)
    job.add(components, key="components")
    return job.end
