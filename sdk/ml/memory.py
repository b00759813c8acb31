"""Memory modes, applied to every generator's components by the worker (DESIGN §7): never per plugin.

A generator loads its components through ``ctx.models.get(key, load)`` and returns them as a dict whose keys say
what each is — ``unet``/``transformer`` (the denoiser), ``vae``, ``text_encoder``/``image_encoder`` — the names
diffusers pipelines use. The job's context hands that dict to :func:`prepare`, which arranges it for the job's
memory mode, lightest last:

============ ===================================================== ==============================================
mode         on a GPU (CUDA, MPS)                                  on the CPU
============ ===================================================== ==============================================
``none``     everything resident on the device: fastest            everything resident: fastest
``balanced`` model CPU offload (accelerate): each component is on  the VAE decodes ≤ 4 frames at a time
             the device only while it runs; VAE decodes ≤ 4 frames
             at a time
``low``      sequential (group) offload of the denoiser, block by  + the encoders are freed once the denoiser
             block; + feed-forward chunking, VAE tiling, ≤ 2       starts (the next job reloads its models),
             frames a decode                                       feed-forward chunking, VAE tiling, ≤ 2 frames
``minimum``  + sliced attention, VAE decodes one frame at a time   + sliced attention, one frame a decode
============ ===================================================== ==============================================

The feed-forward and frame chunks compute the same function (to float rounding); VAE tiling blends tiles above
the VAE's tile size (512 px for the SD VAE), so frames differ slightly from an untiled decode there.

Training jobs are left alone: trainers manage their own memory (mixed precision, their own batch).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import torch

log = logging.getLogger("vgen.memory")

#: lightest last; ``auto`` is resolved by the preflight (:mod:`sdk.ml.preflight`)
MODES = ("none", "balanced", "low", "minimum")
DENOISER_KEYS = ("unet", "transformer")
ENCODER_KEYS = ("text_encoder", "image_encoder")
#: the most frames the VAE decodes at once, per mode (None: what the job asked for)
DECODE_CHUNK_CAP = {"none": None, "balanced": 4, "low": 2, "minimum": 1}

# what has been done to each cached component dict: id(dict) -> mode
_applied: dict[int, str] = {}


def lighter(mode: str) -> str | None:
    """The next lighter mode (``none`` → ``balanced`` → ``low`` → ``minimum``), or None after the lightest."""
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def roles(components: dict[str, Any]) -> dict[str, list[tuple[str, torch.nn.Module]]]:
    """The modules of ``components`` grouped by role: denoiser, vae, encoder, other (non-modules are skipped)."""
    out: dict[str, list[tuple[str, torch.nn.Module]]] = {"denoiser": [], "vae": [], "encoder": [], "other": []}
    for key, value in components.items():
        if not isinstance(value, torch.nn.Module):
            continue
        role = ("denoiser" if key in DENOISER_KEYS else "vae" if key == "vae"
                else "encoder" if key in ENCODER_KEYS else "other")
        out[role].append((key, value))
    return out


def prepare(components: Any, *, mode: str, device: torch.device | str) -> None:
    """Arrange a generator's cached ``components`` for ``mode`` on ``device`` (idempotent; a cached dict prepared
    for another mode is first put back as loaded)."""
    if mode not in MODES:
        raise ValueError(f"unknown memory mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(components, dict):
        return
    previous = _applied.get(id(components))
    if previous == mode:
        return
    device = torch.device(device)
    if previous is not None:
        _undo(components, device)
    _apply(components, mode, device)
    _applied[id(components)] = mode


def forget(components: Any) -> None:
    """The cache dropped ``components``: forget what was applied to it."""
    _applied.pop(id(components), None)
    _jobs.pop(id(components), None)


def _apply(components: dict[str, Any], mode: str, device: torch.device) -> None:
    groups = roles(components)
    accelerator = device.type != "cpu"
    for _, vae in groups["vae"]:
        vae._vgen_decode_chunk_cap = DECODE_CHUNK_CAP[mode]  # read by sdk.ml.vae.decode_video
        if mode in ("low", "minimum") and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
    for _, den in groups["denoiser"]:
        if mode in ("low", "minimum") and hasattr(den, "enable_forward_chunking"):
            den.enable_forward_chunking(chunk_size=1, dim=1)
        if mode == "minimum" and hasattr(den, "set_attention_slice"):
            try:
                den.set_attention_slice("auto")
            except (ValueError, AttributeError, TypeError):  # some attention processors cannot slice
                log.info("the denoiser cannot slice attention; minimum mode goes on without it")
    if not accelerator or mode == "none":
        return
    from accelerate import cpu_offload_with_hook

    if mode == "balanced":
        # model offload: encoders → denoiser → VAE, each moved in when called and the previous one moved out
        hook = None
        for _, module in groups["encoder"] + groups["denoiser"] + groups["vae"] + groups["other"]:
            module.to("cpu")
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
        return
    for _, module in groups["encoder"] + groups["vae"] + groups["other"]:
        module.to("cpu")
        cpu_offload_with_hook(module, device)
    for _, den in groups["denoiser"]:
        den.to("cpu")
        if hasattr(den, "enable_group_offload"):
            den.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                     offload_type="block_level", num_blocks_per_group=1)
        else:
            from accelerate import cpu_offload

            cpu_offload(den, execution_device=device)


def _undo(components: dict[str, Any], device: torch.device) -> None:
    from accelerate.hooks import remove_hook_from_module

    for role, items in roles(components).items():
        for _, module in items:
            remove_hook_from_module(module, recurse=True)
            if role == "vae":
                module._vgen_decode_chunk_cap = None
                if hasattr(module, "disable_tiling"):
                    module.disable_tiling()
            if role == "denoiser":
                if hasattr(module, "disable_forward_chunking"):
                    module.disable_forward_chunking()
                if hasattr(module, "set_default_attn_processor"):
                    try:
                        module.set_default_attn_processor()
                    except ValueError:
                        pass
            if any(p.device.type == "meta" for p in module.parameters()):
                continue  # released encoders are reloaded by the cache, not moved
            module.to(device)


# per cached component dict: the job it currently serves (hooks are registered once and read this)
_jobs: dict[int, dict[str, Any]] = {}


def attach(components: Any, *, mode: str, device: torch.device | str, runtime: dict[str, Any],
           release: Callable[[], None] | None = None) -> Callable[[], None]:
    """Make ``components`` serve one job: the denoiser records into ``runtime`` what it really ran in (the dtype
    of its weights and of its inputs) and, on the CPU in ``low``/``minimum``, the encoders are freed once the
    denoiser starts (``release()`` then tells the cache to reload them next job).

    The hook is registered once per component dict; later jobs only swap what it reports into. Returns the
    function that ends the job (further calls report nowhere)."""
    if not isinstance(components, dict):
        return lambda: None
    groups = roles(components)
    dev = torch.device(device)
    state = {"runtime": runtime, "release": release,
             "free_encoders": dev.type == "cpu" and mode in ("low", "minimum") and bool(groups["encoder"])}
    key = id(components)
    if key not in _jobs:
        def before_denoiser(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            job = _jobs.get(key) or {}
            rt = job.get("runtime")
            if rt is None:
                return
            if "unet_dtype" not in rt:
                param = next(module.parameters(), None)
                rt["unet_dtype"] = str(param.dtype).removeprefix("torch.") if param is not None else None
                x = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
                rt["activations_dtype"] = str(x.dtype).removeprefix("torch.") if x is not None else None
            if job.get("free_encoders") and not rt.get("encoders_freed"):
                for _, enc in roles(components)["encoder"]:
                    enc.to("meta")  # the weights' memory goes back now; the cache reloads them next job
                rt["encoders_freed"] = True
                if job.get("release") is not None:
                    job["release"]()

        for _, den in groups["denoiser"]:
            den.register_forward_pre_hook(before_denoiser, with_kwargs=True)
    _jobs[key] = state
    if isinstance(components.get("attention"), str):
        runtime.setdefault("attention", components["attention"])

    def end() -> None:
        if _jobs.get(key) is state:
            state["runtime"] = None
    return end
